"""SAMM as a TFDS dataset of optical-flow images (see README.md)."""

if __name__ == 'samm':  # imported by `tfds build datasets/samm`: see datasets/tfds_cli.py
  import tfds_cli

  tfds_cli.lend_project_datasets()
