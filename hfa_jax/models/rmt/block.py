"""One RMT retention block."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import DropPath, DWConv, layer_norm
from hfa_jax.models.rmt.feedforward import FeedForward
from hfa_jax.models.rmt.retention import DecomposedRetention, WholeRetention


class RetBlock(nn.Module):
  """x + dwconv3x3(x), then pre-norm retention and pre-norm feed-forward, each residual.

  x: (B, H, W, C) -> (B, H, W, C). `decomposed` picks the retention form; `drop_path`
  is the stochastic depth of the two residual branches in training (RMT's; HFA-Net's 0).
  """

  num_heads: int
  ffn_dim: int
  initial_value: float
  heads_range: float
  decomposed: bool
  drop_path: float = 0.0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    retention = DecomposedRetention if self.decomposed else WholeRetention
    x = x + DWConv(3, name='pos', dtype=self.dtype)(x)
    y = layer_norm('retention_layer_norm', self.dtype)(x)
    drop = DropPath(self.drop_path)
    y = retention(
      self.num_heads, self.initial_value, self.heads_range, name='retention', dtype=self.dtype
    )(y)
    x = x + drop(y, train)
    y = layer_norm('final_layer_norm', self.dtype)(x)
    return x + drop(FeedForward(self.ffn_dim, name='ffn', dtype=self.dtype)(y), train)
