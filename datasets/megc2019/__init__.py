"""The MEGC2019 composite (CDE) as a TFDS dataset of optical-flow images (see README.md)."""

if __name__ == 'megc2019':  # imported by `tfds build datasets/megc2019`: see datasets/tfds_cli.py
  import tfds_cli

  tfds_cli.lend_project_datasets()
