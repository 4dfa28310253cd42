"""SMIC-HS as a TFDS dataset of optical-flow images (see README.md)."""
