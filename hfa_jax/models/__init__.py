"""HFA-Net and its blocks as Flax linen modules (NHWC)."""

from hfa_jax.models.aaff import AAFF
from hfa_jax.models.ema import EMA
from hfa_jax.models.hfanet import HFANet
from hfa_jax.models.mlfa import MLFA
from hfa_jax.models.msa import MSA, MulScaleBlock
from hfa_jax.models.rmt import RMT

__all__ = ['AAFF', 'EMA', 'HFANet', 'MLFA', 'MSA', 'MulScaleBlock', 'RMT']
