"""One RMT stage: retention blocks at the stage's width, then optional patch merging."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.rmt.block import RetBlock
from hfa_jax.models.rmt.patch import PatchMerging


class Stage(nn.Module):
  """x: (B, H, W, C) -> (B, H, W, C), or (B, H/2, W/2, out_dim) with `out_dim` set.
  `drop_paths`: each block's stochastic depth (empty: none)."""

  depth: int
  num_heads: int
  ffn_dim: int
  initial_value: float
  heads_range: float
  decomposed: bool
  out_dim: int | None = None
  drop_paths: tuple = ()
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    for i in range(self.depth):
      x = RetBlock(
        self.num_heads,
        self.ffn_dim,
        self.initial_value,
        self.heads_range,
        self.decomposed,
        self.drop_paths[i] if self.drop_paths else 0.0,
        name=f'blocks_{i}',
        dtype=self.dtype,
      )(x, train)
    if self.out_dim is not None:
      x = PatchMerging(self.out_dim, name='downsample', dtype=self.dtype)(x, train)
    return x
