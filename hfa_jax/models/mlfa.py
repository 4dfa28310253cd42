"""MLFA: multi-level feature aggregation of the two branches' four levels."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import BatchNorm, conv


class ConvBNSiLU(nn.Module):
  """k x k conv (stride k here), BatchNorm, SiLU. Parameters `conv`, `bn`."""

  features: int
  kernel: int
  stride: int = 1
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = conv(self.features, self.kernel, self.stride, bias=False, name='conv', dtype=self.dtype)(x)
    return nn.silu(BatchNorm(name='bn')(x, train))


class Downsample(nn.Module):
  """Brings a level to the coarsest grid: ConvBNSiLU with kernel = stride = `factor`."""

  features: int
  factor: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    return ConvBNSiLU(
      self.features, self.factor, self.factor, name='downsample_0', dtype=self.dtype
    )(x, train)


class DepthwiseSeparable(nn.Module):
  """1x1 depthwise conv + BN + LeakyReLU(0.1), then 1x1 pointwise conv + BN + LeakyReLU(0.1)."""

  features: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    c = x.shape[-1]
    x = conv(c, 1, groups=c, bias=False, name='depthwise_0', dtype=self.dtype)(x)
    x = nn.leaky_relu(BatchNorm(name='depthwise_1')(x, train), 0.1)
    x = conv(self.features, 1, bias=False, name='pointwise_0', dtype=self.dtype)(x)
    return nn.leaky_relu(BatchNorm(name='pointwise_1')(x, train), 0.1)


class MLFA(nn.Module):
  """Adaptive weighting of four levels on the coarsest grid.

  Inputs: the concatenated branch features of levels 1-4, (B, S/4, S/4, 128),
  (B, S/8, S/8, 256), (B, S/16, S/16, 512), (B, S/32, S/32, 1024).
  Levels 1-3 are brought to level 4's grid and width by strided convs (k = s = 8, 4, 2);
  an 8-channel compression of each level gives softmax weights over the four levels;
  the weighted sum goes through a depthwise-separable conv to `out_dim`.
  Output: (B, S/32, S/32, out_dim).
  """

  inter_dim: int = 1024
  out_dim: int = 512
  compress: int = 8
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x1, x2, x3, x4, train: bool) -> jax.Array:
    dt = self.dtype
    levels = [
      Downsample(self.inter_dim, 8, name='downsample8x', dtype=dt)(x1, train),
      Downsample(self.inter_dim, 4, name='downsample4x', dtype=dt)(x2, train),
      Downsample(self.inter_dim, 2, name='downsample2x', dtype=dt)(x3, train),
      x4,
    ]
    compressed = [
      ConvBNSiLU(self.compress, 1, name=f'weight_level_{i + 1}', dtype=dt)(lv, train)
      for i, lv in enumerate(levels)
    ]
    logits = conv(4, 1, name='weight_levels', dtype=dt)(jnp.concatenate(compressed, axis=-1))
    weights = jax.nn.softmax(logits, axis=-1)  # (B, h, w, 4)
    fused = sum(lv * weights[..., i : i + 1] for i, lv in enumerate(levels))
    return DepthwiseSeparable(self.out_dim, name='dsconv', dtype=dt)(fused, train)
