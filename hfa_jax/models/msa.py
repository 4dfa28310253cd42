"""MSA: HFA-Net's local branch, a ResNet-like stem and four MulScaleBlocks."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.ema import EMA
from hfa_jax.models.layers import BatchNorm, conv, kaiming_fan_out, scaled
from hfa_jax.ops.max_pool import max_pool


class MulScaleBlock(nn.Module):
  """3x3 conv, a Res2Net-style 4-way split with a chain of 3x3 convs, EMA, residual.

  x: (B, H, W, C_in) -> (B, H/stride, W/stride, planes).
  """

  planes: int
  stride: int = 1
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    p, dt = self.planes, self.dtype
    width = p // 4

    def conv3x3(features, stride, name):
      return conv(
        features, 3, stride, 1, bias=False, kernel_init=kaiming_fan_out, name=name, dtype=dt
      )

    out = nn.relu(BatchNorm(name='bn1')(conv3x3(p, self.stride, 'conv1')(x), train))
    splits = [out[..., i * width : (i + 1) * width] for i in range(4)]
    parts = []
    prev = None
    for i in range(4):
      inp = splits[0] if i == 0 else nn.relu(prev) + splits[i]
      prev = BatchNorm(name=f'bn1_2_{i + 1}')(conv3x3(width, 1, f'conv1_2_{i + 1}')(inp), train)
      parts.append(prev)
    out = EMA(groups=32, name='att', dtype=dt)(jnp.concatenate(parts, axis=-1))

    identity = x
    if self.stride != 1 or x.shape[-1] != p:
      identity = conv(
        p, 1, self.stride, bias=False, kernel_init=kaiming_fan_out, name='downsample_0', dtype=dt
      )(x)
      identity = BatchNorm(name='downsample_1')(identity, train)
    return nn.relu(out + identity)


class MSA(nn.Module):
  """Local branch: stem (3x3/2 conv, BN, ReLU, 3x3/2 max-pool) and four MulScaleBlocks.

  x: (B, S, S, 3) -> four maps at strides 4, 8, 16, 32 with 64, 128, 256, 512 channels,
  each times `width` (1: the paper's).
  """

  width: float = 1.0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, ...]:
    widths = [scaled(c, self.width) for c in (64, 128, 256, 512)]  # the stem's is the first's
    x = conv(
      widths[0], 3, 2, 1, bias=False, kernel_init=kaiming_fan_out, name='conv1', dtype=self.dtype
    )(x)
    x = nn.relu(BatchNorm(name='bn1')(x, train))
    x = max_pool(x, 3, 2, 1)
    features = []
    for i, (planes, stride) in enumerate(zip(widths, (1, 2, 2, 2))):
      x = MulScaleBlock(planes, stride, name=f'layer{i + 1}_0', dtype=self.dtype)(x, train)
      features.append(x)
    return tuple(features)
