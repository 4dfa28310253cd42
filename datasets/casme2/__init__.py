"""CASME II as a TFDS dataset of optical-flow images (see README.md)."""
