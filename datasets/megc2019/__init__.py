"""The MEGC2019 composite (CDE) as a TFDS dataset of optical-flow images (see README.md)."""
