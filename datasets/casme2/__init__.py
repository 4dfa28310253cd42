"""CASME II as a TFDS dataset of optical-flow images (see README.md)."""

if __name__ == 'casme2':  # imported by `tfds build datasets/casme2`: see datasets/tfds_cli.py
  import tfds_cli

  tfds_cli.lend_project_datasets()
