"""RMT, the retentive vision transformer branch of HFA-Net."""

from hfa_jax.models.rmt.branch import RMT

__all__ = ['RMT']
