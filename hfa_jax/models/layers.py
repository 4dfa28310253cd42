"""Building blocks shared by the HFA-Net modules, with PyTorch's numerics.

All tensors are NHWC. Convolutions take PyTorch-style symmetric padding (Flax's
'SAME' pads a stride-2 convolution asymmetrically, PyTorch does not). The array
operations, with their fast forms, are `hfa_jax.ops`.
"""

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax import ops

# Initialisers. MSA convolutions follow the original (Kaiming normal, fan-out); other
# convolutions PyTorch's default; Linear layers the original's truncated normal (std .02).
kaiming_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
torch_conv_default = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')
linear_default = nn.initializers.truncated_normal(0.02)


def gelu(x):
  """Exact (erf) GELU, as torch.nn.GELU / F.gelu."""
  return nn.gelu(x, approximate=False)


def scaled(channels: int | None, width: float) -> int | None:
  """A layer's channels at a width multiplier (HFA-Net's `width`); None stays None."""
  return None if channels is None else int(round(channels * width))


def conv(
  features: int,
  kernel: int,
  stride: int = 1,
  padding: int = 0,
  *,
  groups: int = 1,
  bias: bool = True,
  name: str | None = None,
  kernel_init: Callable = torch_conv_default,
  dtype=None,
) -> 'Conv2d':
  """A Conv2d with PyTorch's argument order and symmetric padding."""
  return Conv2d(features, kernel, stride, padding, groups, bias, kernel_init, dtype, name=name)


class Conv2d(nn.Module):
  """PyTorch's Conv2d in NHWC, with nn.Conv's parameters: `kernel` (k, k, in/groups, out), `bias`.

  x (B, H, W, in) -> (B, Ho, Wo, out), by the form of `hfa_jax.ops` that fits:
  depthwise (groups == in == out channels, stride 1) `ops.depthwise_conv`; non-overlapping
  patches (kernel == stride, no padding) `ops.conv.patch_conv`; other dense ones
  `ops.conv.conv`; grouped ones XLA's convolution (`ops.conv.conv_reference`).
  """

  features: int
  kernel: int
  stride: int = 1
  padding: int = 0
  groups: int = 1
  bias: bool = True
  kernel_init: Callable = torch_conv_default
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, s, p, c = self.kernel, self.stride, self.padding, x.shape[-1]
    w = self.param('kernel', self.kernel_init, (k, k, c // self.groups, self.features), jnp.float32)
    b = (
      self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32)
      if self.bias
      else None
    )
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    if self.groups == c == self.features and s == 1:
      y = ops.depthwise_conv.depthwise_conv(x, w, p)
    elif k == s and p == 0 and self.groups == 1:
      y = ops.conv.patch_conv(x, w)
    elif self.groups == 1:
      y = ops.conv.conv(x, w, s, p)
    else:
      y = ops.conv.conv_reference(x, w, s, p, self.groups)
    return y if b is None else y + b


def dense(features: int, *, name: str | None = None, dtype=None) -> 'Dense':
  """A Linear layer initialised like the original (trunc. normal .02, zero bias)."""
  return Dense(features, name=name, dtype=dtype)


class Dense(nn.Module):
  """nn.Dense's parameters and numbers (`kernel` (in, out), `bias`), x (..., in) -> (..., out).

  The matmul is `ops.dense.dense` (a native weight gradient on CPU).
  """

  features: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.param('kernel', linear_default, (x.shape[-1], self.features), jnp.float32)
    b = self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32)
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    return ops.dense.dense(x, w) + b


def layer_norm(name: str | None = None, dtype=None) -> nn.LayerNorm:
  """nn.LayerNorm(eps=1e-6) over the channel axis (two-pass variance)."""
  return nn.LayerNorm(epsilon=1e-6, use_fast_variance=False, name=name, dtype=dtype)


def batch_norm_variables(module: nn.Module, channels: int):
  """Declares a BatchNorm's variables in `module` (inside its compact call): returns params
  `scale`, `bias` (C,) and batch_stats `mean`, `var` (C,) flax Variables, all float32."""
  scale = module.param('scale', nn.initializers.ones, (channels,), jnp.float32)
  bias = module.param('bias', nn.initializers.zeros, (channels,), jnp.float32)
  mean = module.variable('batch_stats', 'mean', jnp.zeros, (channels,), jnp.float32)
  var = module.variable('batch_stats', 'var', jnp.ones, (channels,), jnp.float32)
  return scale, bias, mean, var


class BatchNormVariables(nn.Module):
  """A BatchNorm's variables without its computation: () -> batch_norm_variables' tuple.

  For one `batch_norm` over several modules' channels at once (STSTNet's three streams
  keep their own names and variables).
  """

  channels: int

  @nn.compact
  def __call__(self):
    return batch_norm_variables(self, self.channels)


def batch_norm(x, scale, bias, running_mean, running_var, train: bool, momentum=0.1, epsilon=1e-5):
  """BatchNorm2d with PyTorch's semantics over x's last (channel) axis.

  x (..., C); scale, bias, running_mean, running_var (C,) -> (y (..., C), the running mean
  and variance after this call (C,)). Training normalises with the biased batch variance
  and moves the running variance towards the unbiased one (as PyTorch does; Flax's
  BatchNorm uses the biased one); `momentum` is PyTorch's: new = (1 - m) * old + m * batch.
  Evaluation normalises with the running statistics and returns them unchanged. Statistics
  are float32 whatever x's dtype.
  """
  c = x.shape[-1]
  x32 = x.astype(jnp.float32)
  if train:
    axes = tuple(range(x.ndim - 1))
    mean = x32.mean(axes)
    var = jnp.square(x32 - mean).mean(axes)
    running_mean, running_var = running_statistics(
      mean, var, x.size // c, running_mean, running_var, momentum
    )
  else:
    mean, var = running_mean, running_var
  y = (x32 - mean) * (jax.lax.rsqrt(var + epsilon) * scale) + bias
  return y.astype(x.dtype), running_mean, running_var


def running_statistics(mean, var, n: int, running_mean, running_var, momentum=0.1):
  """BatchNorm2d's running mean and variance after a batch of `n` values per channel with
  mean `mean` and biased variance `var`: moved by `momentum` (PyTorch's) towards the mean and
  the unbiased variance."""
  running_mean = (1 - momentum) * running_mean + momentum * mean
  running_var = (1 - momentum) * running_var + momentum * var * (n / max(n - 1, 1))
  return running_mean, running_var


class BatchNorm(nn.Module):
  """BatchNorm2d with PyTorch's semantics over the last (channel) axis (`batch_norm`).

  Variables: params `scale`, `bias`; batch_stats `mean`, `var`, all (C,).
  """

  momentum: float = 0.1
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    scale, bias, mean, var = batch_norm_variables(self, x.shape[-1])
    y, new_mean, new_var = batch_norm(
      x, scale, bias, mean.value, var.value, train, self.momentum, self.epsilon
    )
    if train and not self.is_initializing():
      mean.value, var.value = new_mean, new_var
    return y


class DWConv(nn.Module):
  """Depthwise k x k convolution with bias, 'same' size (RMT's DWConv2d).

  x: (B, H, W, C) -> (B, H, W, C). The parameters sit under `conv`, as in the original.
  """

  kernel: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    return conv(c, self.kernel, 1, self.kernel // 2, groups=c, name='conv', dtype=self.dtype)(x)


class DropPath(nn.Module):
  """Stochastic depth (Huang et al., ECCV 2016), as timm's DropPath: in training, each
  sample's residual branch is dropped with probability `rate` and kept ones are scaled
  by 1 / (1 - rate); identity otherwise. x: (B, ...) -> same. Draws from 'dropout'."""

  rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    keep = 1.0 - self.rate
    mask = jax.random.bernoulli(self.make_rng('dropout'), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


def keep_mask(key: jax.Array, rate: float, shape: tuple[int, ...]) -> jax.Array:
  """Dropout's mask: a bool array of `shape`, each entry True with probability 1 - rate,
  independently. Where rate is a multiple of 2^-b for b in (1, 2, 4, 8), each entry reads b
  random bits (32 // b entries per generated 32-bit word) and is True where they, as an
  integer, are at least rate * 2^b: the same distribution as jax.random.bernoulli(key,
  1 - rate, shape), which spends a whole word per entry, from up to 32 times fewer words (the
  random-bit generator was ~10 % of RCN-A's training step). Other rates: bernoulli."""
  for bits in (1, 2, 4, 8):
    threshold = rate * 2**bits
    if threshold == int(threshold):
      break
  else:
    return jax.random.bernoulli(key, 1.0 - rate, shape)
  per_word, n = 32 // bits, math.prod(shape)
  words = jax.random.bits(key, (-(-n // per_word), 1), jnp.uint32)
  shifts = jnp.arange(per_word, dtype=jnp.uint32) * bits
  fields = (words >> shifts) & jnp.uint32(2**bits - 1)  # (words, per_word): each word's fields
  return (fields.reshape(-1)[:n] >= int(threshold)).reshape(shape)


class Dropout(nn.Module):
  """Dropout (Srivastava et al., JMLR 2014) as torch.nn.Dropout and nn.Dropout: in training
  each entry is zeroed with probability `rate` and kept ones are scaled by 1 / (1 - rate);
  identity otherwise. x: any shape -> same. Draws from 'dropout', its mask from `keep_mask`
  (a distribution equal to nn.Dropout's, not its stream of numbers)."""

  rate: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if not train or self.rate == 0.0:
      return x
    if self.rate == 1.0:
      return jnp.zeros_like(x)
    keep = keep_mask(self.make_rng('dropout'), self.rate, x.shape)
    return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x))
