"""AAFF: attention-based fusion of the last level with the MLFA output."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import conv


class AAFF(nn.Module):
  """Channel attention over [cov2(mt4), mlfa], then cov2 again.

  `cov2` (1x1, 1024 -> 512, no bias) is used twice, as in the original: to reduce
  mt4 and as the output projection. `fc1`, `fc2` (1x1 convs with bias) are shared
  by the average- and max-pooled paths: out = cov2(sig(avg) * x + sig(max) * x).

  mt4: (B, h, w, 1024), mlfa: (B, h, w, 512) -> (B, h, w, 512).
  """

  channels: int = 1024
  out_dim: int = 512
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, mt4: jax.Array, mlfa: jax.Array) -> jax.Array:
    cov2 = conv(self.out_dim, 1, bias=False, name='cov2', dtype=self.dtype)
    fc1 = conv(self.channels, 1, name='fc1', dtype=self.dtype)
    fc2 = conv(self.channels, 1, name='fc2', dtype=self.dtype)
    x = jnp.concatenate([cov2(mt4), mlfa], axis=-1)  # (B, h, w, 1024)
    gate = lambda pooled: jax.nn.sigmoid(fc2(nn.relu(fc1(pooled))))
    avg = gate(x.mean(axis=(1, 2), keepdims=True))
    mx = gate(x.max(axis=(1, 2), keepdims=True))
    return cov2(avg * x + mx * x)
