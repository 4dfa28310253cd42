"""RMT's feed-forward network: Linear, GELU, a residual 3x3 depthwise conv, Linear."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import DWConv, dense, gelu


class FeedForward(nn.Module):
  """x: (B, H, W, C) -> (B, H, W, C), hidden width `hidden`."""

  hidden: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    x = gelu(dense(self.hidden, name='fc1', dtype=self.dtype)(x))
    x = x + DWConv(3, name='dwconv', dtype=self.dtype)(x)
    return dense(c, name='fc2', dtype=self.dtype)(x)
