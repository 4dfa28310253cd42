"""Precomputed MEGC2019 flow images (STSTNet/HTNet format) as a TFDS dataset (see README.md)."""

# Imported by `tfds build datasets/megc2019_flow_images`: see datasets/tfds_cli.py
if __name__ == 'megc2019_flow_images':
  import tfds_cli

  tfds_cli.lend_project_datasets()
