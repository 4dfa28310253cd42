"""RMT's patch embedding (stride 4) and patch merging (stride 2)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import BatchNorm, conv, gelu


class PatchEmbed(nn.Module):
  """Four 3x3 convs (strides 2, 1, 2, 1), each with BatchNorm, GELU between.

  x: (B, S, S, 3) -> (B, S/4, S/4, embed_dim). Names follow the original
  nn.Sequential indices (proj_0 conv, proj_1 BN, proj_2 GELU, ...).
  """

  embed_dim: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    half = self.embed_dim // 2
    plan = [(half, 2), (half, 1), (self.embed_dim, 2), (self.embed_dim, 1)]
    for i, (features, stride) in enumerate(plan):
      x = conv(features, 3, stride, 1, name=f'proj_{3 * i}', dtype=self.dtype)(x)
      x = BatchNorm(name=f'proj_{3 * i + 1}')(x, train)
      if i < len(plan) - 1:
        x = gelu(x)
    return x


class PatchMerging(nn.Module):
  """3x3 stride-2 conv + BatchNorm: (B, H, W, C) -> (B, H/2, W/2, out_dim)."""

  out_dim: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = conv(self.out_dim, 3, 2, 1, name='reduction', dtype=self.dtype)(x)
    return BatchNorm(name='norm')(x, train)
