"""HFA-Net (Zhang et al., Complex & Intelligent Systems 2025): the whole network."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.aaff import AAFF
from hfa_jax.models.layers import dense, scaled
from hfa_jax.models.mlfa import MLFA
from hfa_jax.models.msa import MSA
from hfa_jax.models.rmt import RMT


def check_width(width: float) -> None:
  """ValueError unless `width` gives the first level a multiple of 32 channels (EMA splits it
  into 32 channel groups)."""
  if width <= 0 or scaled(64, width) % 32:
    raise ValueError(
      f'width {width}: 64 x width must be a positive multiple of 32 (EMA splits HFA-Net\'s '
      'first level into 32 channel groups): 0.5, 1, 1.5, 2, ...'
    )


class HFANet(nn.Module):
  """Hierarchical feature aggregation network for micro-expression recognition.

  A local CNN branch (MSA) and a global retention branch (RMT) each give four
  levels; MLFA aggregates the concatenated levels, AAFF fuses the result with the
  last level, and a linear head classifies the global average.

  x: (B, S, S, 3) float NHWC flow image (u, v, strain), S a multiple of 32.
  Returns logits (B, num_classes); with `return_features=True`, also a dict of
  `msa_1..4`, `rmt_1..4` (NHWC, strides 4..32) and `mlfa` (B, S/32, S/32, 512).

  Regularisers for training, both off in the paper's configuration: `drop_path`, the
  RMT branch's stochastic depth (its last block's rate), and `head_dropout`, dropout on
  the pooled features before the head.

  `width` multiplies every layer's channels (1: the paper's configuration; 0.5 has about a
  quarter of the parameters); 64 x width must be a multiple of 32 (EMA's channel groups).
  `rmt_depth` is the blocks of each of the RMT branch's stages 3 and 4 (2: the paper's
  configuration; 1: a shallower branch, 1.02 M parameters fewer).

  `dtype` is the compute dtype (e.g. jnp.bfloat16); parameters, BatchNorm
  statistics and the logits stay float32.
  """

  num_classes: int = 3
  drop_path: float = 0.0
  head_dropout: float = 0.0
  width: float = 1.0
  rmt_depth: int = 2
  dtype: jnp.dtype | None = None
  side_multiple = 32  # the total stride: input sides must be multiples of it

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] % 32 or x.shape[2] % 32:
      raise ValueError(
        f'HFANet expects NHWC input (B, S, S, 3) with S a multiple of 32, got shape {x.shape}'
      )
    check_width(self.width)
    if self.dtype is not None:
      x = x.astype(self.dtype)
    m = MSA(self.width, name='msa', dtype=self.dtype)(x, train)
    t = RMT(self.drop_path, self.width, self.rmt_depth, name='rmt', dtype=self.dtype)(x, train)
    mt = [jnp.concatenate([a, b.astype(a.dtype)], axis=-1) for a, b in zip(m, t)]
    inter, out_dim = scaled(1024, self.width), scaled(512, self.width)
    fused = MLFA(inter, out_dim, name='mlfa', dtype=self.dtype)(*mt, train)
    out = AAFF(inter, out_dim, name='aaff', dtype=self.dtype)(mt[3], fused)
    pooled = out.astype(jnp.float32).mean(axis=(1, 2))
    pooled = nn.Dropout(self.head_dropout, deterministic=not train)(pooled)
    logits = dense(self.num_classes, name='head')(pooled)
    if not return_features:
      return logits
    features = {f'msa_{i + 1}': f for i, f in enumerate(m)}
    features.update({f'rmt_{i + 1}': f for i, f in enumerate(t)})
    features['mlfa'] = fused
    return logits, features
