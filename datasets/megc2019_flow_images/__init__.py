"""Precomputed MEGC2019 flow images (STSTNet/HTNet format) as a TFDS dataset (see README.md)."""
