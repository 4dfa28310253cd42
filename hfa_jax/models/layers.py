"""Building blocks shared by the HFA-Net modules, with PyTorch's numerics.

All tensors are NHWC. Convolutions take PyTorch-style symmetric padding (Flax's
'SAME' pads a stride-2 convolution asymmetrically, PyTorch does not).
"""
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

# Initialisers. MSA convolutions follow the original (Kaiming normal, fan-out); other
# convolutions PyTorch's default; Linear layers the original's truncated normal (std .02).
kaiming_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
torch_conv_default = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')
linear_default = nn.initializers.truncated_normal(0.02)


def gelu(x):
  """Exact (erf) GELU, as torch.nn.GELU / F.gelu."""
  return nn.gelu(x, approximate=False)


def conv(features: int, kernel: int, stride: int = 1, padding: int = 0, *,
         groups: int = 1, bias: bool = True, name: str | None = None,
         kernel_init: Callable = torch_conv_default, dtype=None) -> 'Conv2d':
  """A Conv2d with PyTorch's argument order and symmetric padding."""
  return Conv2d(features, kernel, stride, padding, groups, bias, kernel_init, dtype, name=name)


class Conv2d(nn.Module):
  """PyTorch's Conv2d in NHWC, with nn.Conv's parameters: `kernel` (k, k, in/groups, out), `bias`.

  Two forms that XLA:CPU runs slowly as convolutions (their gradients especially) are
  computed as the same sums written out, 4-7x faster on CPU and plain fusions elsewhere:
  - depthwise (groups == in == out channels): k*k shifted copies, each scaled per channel
    (with a hand-written gradient);
  - non-overlapping patches (kernel == stride, no padding): patches @ kernel matrix.
  Every other case is lax.conv_general_dilated.
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
    w = self.param('kernel', self.kernel_init, (k, k, c // self.groups, self.features),
                   jnp.float32)
    b = self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32) \
        if self.bias else None
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    if self.groups == c == self.features and s == 1:
      y = _depthwise(x, w, p)
    elif k == s and p == 0 and self.groups == 1:
      y = _patches(x, k) @ w.reshape(k * k * c, self.features)
    else:
      y = jax.lax.conv_general_dilated(x, w, (s, s), ((p, p), (p, p)),
                                       dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                       feature_group_count=self.groups)
    return y if b is None else y + b


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _depthwise(x: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """Depthwise cross-correlation, stride 1: x (B, H, W, C), w (k, k, 1, C).

  A sum of k*k shifted, per-channel scaled copies of the padded input. The gradient is
  written out too (autodiff's keeps k*k shifted copies alive; this one is ~3x faster):
  d/dx is the same sum over the output gradient with the kernel flipped, d/dw the k*k
  per-channel sums of (shifted input * output gradient).
  """
  k = w.shape[0]
  h, wd = x.shape[1] + 2 * padding - k + 1, x.shape[2] + 2 * padding - k + 1
  x = _pad(x, padding)
  return sum(x[:, i:i + h, j:j + wd, :] * w[i, j, 0] for i in range(k) for j in range(k))


def _depthwise_fwd(x, w, padding):
  return _depthwise(x, w, padding), (x, w)


def _depthwise_bwd(padding, residuals, g):
  x, w = residuals
  k = w.shape[0]
  dx = _depthwise(g, w[::-1, ::-1], k - 1 - padding)
  x = _pad(x, padding)
  h, wd = g.shape[1:3]
  dw = jnp.stack([jnp.stack([(x[:, i:i + h, j:j + wd, :] * g).sum((0, 1, 2)) for j in range(k)])
                  for i in range(k)])
  return dx, dw[:, :, None, :].astype(w.dtype)


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


def _pad(x: jax.Array, p: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def _patches(x: jax.Array, k: int) -> jax.Array:
  """(B, H, W, C) -> (B, H/k, W/k, k*k*C), each k x k patch flattened in (row, column, C) order.

  A remainder row or column that makes no whole patch is dropped, as the convolution does.
  """
  b, h, w, c = x.shape
  x = x[:, :h // k * k, :w // k * k]
  x = x.reshape(b, h // k, k, w // k, k, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // k, w // k, k * k * c)


def dense(features: int, *, name: str | None = None, dtype=None) -> nn.Dense:
  """A Linear layer initialised like the original (trunc. normal .02, zero bias)."""
  return nn.Dense(features, kernel_init=linear_default, name=name, dtype=dtype)


def layer_norm(name: str | None = None, dtype=None) -> nn.LayerNorm:
  """nn.LayerNorm(eps=1e-6) over the channel axis (two-pass variance)."""
  return nn.LayerNorm(epsilon=1e-6, use_fast_variance=False, name=name, dtype=dtype)


class BatchNorm(nn.Module):
  """BatchNorm2d with PyTorch's semantics over the last (channel) axis.

  Training normalises with the biased batch variance and updates the running
  variance with the unbiased one (as PyTorch does; Flax's BatchNorm uses the
  biased one). `momentum` is PyTorch's: new = (1 - m) * old + m * batch.
  Statistics are computed in float32 whatever the input dtype.

  Variables: params `scale`, `bias`; batch_stats `mean`, `var`, all (C,).
  """
  momentum: float = 0.1
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    c = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros, (c,), jnp.float32)
    running_var = self.variable('batch_stats', 'var', jnp.ones, (c,), jnp.float32)
    x32 = x.astype(jnp.float32)
    if train:
      axes = tuple(range(x.ndim - 1))
      mean = x32.mean(axes)
      var = jnp.square(x32 - mean).mean(axes)
      if not self.is_initializing():
        n = x.size // c
        m = self.momentum
        running_mean.value = (1 - m) * running_mean.value + m * mean
        running_var.value = (1 - m) * running_var.value + m * var * (n / max(n - 1, 1))
    else:
      mean, var = running_mean.value, running_var.value
    y = (x32 - mean) * (jax.lax.rsqrt(var + self.epsilon) * scale) + bias
    return y.astype(x.dtype)


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
