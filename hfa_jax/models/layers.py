"""Building blocks shared by the HFA-Net modules, with PyTorch's numerics.

All tensors are NHWC. Convolutions take PyTorch-style symmetric padding (Flax's
'SAME' pads a stride-2 convolution asymmetrically, PyTorch does not).
"""

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hfa_jax import kernels

# Initialisers. MSA convolutions follow the original (Kaiming normal, fan-out); other
# convolutions PyTorch's default; Linear layers the original's truncated normal (std .02).
kaiming_fan_out = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
torch_conv_default = nn.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')
linear_default = nn.initializers.truncated_normal(0.02)


def gelu(x):
  """Exact (erf) GELU, as torch.nn.GELU / F.gelu."""
  return nn.gelu(x, approximate=False)


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

  Two forms that XLA:CPU runs slowly as convolutions (their gradients especially) are
  computed as the same sums written out, 4-7x faster on CPU and plain fusions elsewhere:
  - depthwise (groups == in == out channels): a native kernel on CPU (`hfa_jax.kernels`),
    elsewhere k*k shifted copies, each scaled per channel; both with a hand-written gradient;
  - non-overlapping patches (kernel == stride, no padding): patches @ kernel matrix.
  Other dense convolutions (`_dense_conv`) are lax.conv_general_dilated with three CPU
  speed-ups: the weight gradient from a native kernel (3-7x faster than XLA's at HFA-Net's
  shapes), own forms at 1x1-2x2 outputs, and one convolution per fold under a fold vmap.
  Grouped ones are plain lax.conv_general_dilated.
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
      y = _depthwise(x, w, p)
    elif k == s and p == 0 and self.groups == 1:
      y = _patches(x, k) @ w.reshape(k * k * c, self.features)
    elif self.groups == 1:
      y = _dense_conv(x, w, s, p)
    else:
      y = _lax_conv(x, w, s, p, self.groups)
    return y if b is None else y + b


def _lax_conv(x, w, stride: int, padding: int, groups: int = 1):
  return jax.lax.conv_general_dilated(
    x,
    w,
    (stride, stride),
    ((padding, padding),) * 2,
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    feature_group_count=groups,
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _dense_conv(x: jax.Array, w: jax.Array, stride: int, padding: int) -> jax.Array:
  """Dense cross-correlation: x (B, H, W, Cin), w (k, k, Cin, Cout) -> (B, Ho, Wo, Cout).

  XLA's convolution and input gradient; the weight gradient from the native kernel on CPU
  (float32, Cout a multiple of 16, where it is vectorised), else XLA's. At outputs of at
  most 2x2 the forward is a matmul of the input's patches and a strided convolution's input
  gradient is `_strided_input_grad`.
  """
  return _dense_conv_forward(x, w, stride, padding)


def _dense_conv_forward(x, w, stride, padding):
  """XLA's convolution, or for outputs of at most 2x2 (XLA:CPU's slow case: 2x2 -> 1x1,
  256 -> 512 channels took 12 ms) the k*k strided slices concatenated and one matmul."""
  k = w.shape[0]
  ho, wo = ((n + 2 * padding - k) // stride + 1 for n in x.shape[1:3])
  if ho * wo > 4:
    return _per_model(functools.partial(_lax_conv, stride=stride, padding=padding))(x, w)
  patches = jnp.concatenate(_taps(x, k, stride, padding), axis=-1)  # (B, Ho, Wo, k*k*Cin)
  return patches @ w.reshape(-1, w.shape[-1])


def _dense_conv_fwd(x, w, stride, padding):
  return _dense_conv_forward(x, w, stride, padding), (x, w)


def _dense_conv_bwd(stride, padding, residuals, g):
  x, w = residuals
  if stride > 1 and g.shape[1] * g.shape[2] <= 4:
    dx = _strided_input_grad(g, w, stride, padding, x.shape[1:3])
  else:
    dx = _per_model(
      functools.partial(_conv_input_grad, stride=stride, padding=padding, shape=x.shape[1:])
    )(g, w)
  static = dict(stride=stride, padding=padding, k=w.shape[0])
  xla = _per_model(functools.partial(_conv_weight_grad_xla, **static))
  if _native_weight_grad_pays(g.shape[-1]):
    dw = _on_cpu(functools.partial(_conv_weight_grad_native, **static), xla, x, g)
  else:
    dw = xla(x, g)
  return dx, dw.astype(w.dtype)


_dense_conv.defvjp(_dense_conv_fwd, _dense_conv_bwd)


def _conv_input_grad(g, w, stride, padding, shape):
  x = jnp.zeros(g.shape[:1] + shape, g.dtype)
  return jax.vjp(lambda x: _lax_conv(x, w, stride, padding), x)[1](g)[0]


def _per_model(fn: Callable) -> Callable:
  """fn(a, b) with a vmap rule that, in CPU programs, calls fn once per model and stacks.

  Under jax.vmap over stacked models (the folds) XLA merges the models' convolutions into
  one grouped convolution, which XLA:CPU runs far more slowly than separate ones. GPU and
  TPU programs keep the plain vmap (the folds may be sharded over devices there).
  """
  wrapped = jax.custom_batching.custom_vmap(fn)

  @wrapped.def_vmap
  def rule(axis_size, in_batched, a, b):
    pick = lambda t, batched, i: t[i] if batched else t
    unrolled = lambda a, b: jnp.stack(
      [fn(pick(a, in_batched[0], i), pick(b, in_batched[1], i)) for i in range(axis_size)]
    )
    vmapped = jax.vmap(fn, in_axes=tuple(0 if batched else None for batched in in_batched))
    return jax.lax.platform_dependent(a, b, cpu=unrolled, default=vmapped), True

  return wrapped


def _strided_input_grad(g, w, stride: int, padding: int, size: tuple[int, int]):
  """d/dx of a strided convolution: g (B, Ho, Wo, Cout), w (k, k, Cin, Cout) -> (B, H, W, Cin).

  The stride-1 correlation of g spread out with stride - 1 zeros between entries with the
  kernel flipped and transposed. XLA:CPU's own form (a base-dilated convolution) is ~10x slower
  at HFA-Net's last stages at sides 32-64 (e.g. 4x4 -> 2x2, 256 -> 512 channels: 36 vs 3 ms);
  the barrier keeps XLA from folding the spreading back into such a convolution.
  """
  k = w.shape[0]
  lo = k - 1 - padding
  spread = (
    [(0, 0, 0)]
    + [(lo, n - (stride * (m - 1) + 1) + padding, stride - 1) for n, m in zip(size, g.shape[1:3])]
    + [(0, 0, 0)]
  )
  g = jax.lax.optimization_barrier(jax.lax.pad(g, jnp.zeros((), g.dtype), spread))
  return _per_model(functools.partial(_lax_conv, stride=1, padding=0))(
    g, jnp.swapaxes(w[::-1, ::-1], 2, 3)
  )


def _conv_weight_grad_xla(x, g, stride, padding, k):
  w = jnp.zeros((k, k, x.shape[-1], g.shape[-1]), x.dtype)
  return jax.vjp(lambda w: _lax_conv(x, w, stride, padding), w)[1](g)[0]


def _native_weight_grad_pays(out_channels: int) -> bool:
  """The native weight gradient is vectorised over output channels in blocks of 16; other
  counts fall to its scalar code, slower than XLA (EMA's 2 -> 2 channels: 28 vs 13 ms)."""
  return out_channels % 16 == 0


def _conv_weight_grad_native(x, g, stride, padding, k):
  out = jax.ShapeDtypeStruct((k, k, x.shape[-1], g.shape[-1]), x.dtype)
  return jax.ffi.ffi_call('hfa_conv_weight_grad', out, vmap_method='broadcast_all')(
    x, g, stride=np.int64(stride), pad=np.int64(padding)
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _depthwise(x: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """Depthwise cross-correlation, stride 1: x (B, H, W, C), w (k, k, 1, C).

  On CPU (float32) a native kernel (`hfa_jax.kernels`) when it compiled; elsewhere a sum of
  k*k shifted, per-channel scaled copies of the padded input. The gradient is written out:
  d/dx is the same convolution of the output gradient with the kernel flipped, d/dw the k*k
  per-channel sums of (shifted input * output gradient).
  """
  return _depthwise_forward(x, w, padding)


def _depthwise_fwd(x, w, padding):
  return _depthwise_forward(x, w, padding), (x, w)


def _depthwise_bwd(padding, residuals, g):
  # The barrier keeps XLA from sharing the backward's shifted copies of x with the
  # forward's (it would then materialise them all and keep them alive in between).
  x, w = jax.lax.optimization_barrier(residuals)
  k = w.shape[0]
  dx = _depthwise_forward(g, w[::-1, ::-1], k - 1 - padding)
  dw = _on_cpu(_weight_grad_native, _weight_grad_sum, x, g, padding=padding)
  return dx, dw.reshape(w.shape).astype(w.dtype)


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


def _on_cpu(native: Callable, fallback: Callable, x: jax.Array, y: jax.Array, **static):
  """native(x, y, **static) in CPU programs when the native kernels are available (float32),
  else fallback(x, y, **static)."""
  if x.dtype != jnp.float32 or y.dtype != jnp.float32 or not kernels.native_available():
    return fallback(x, y, **static)
  return jax.lax.platform_dependent(
    x, y, cpu=functools.partial(native, **static), default=functools.partial(fallback, **static)
  )


def _depthwise_forward(x: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  return _on_cpu(_depthwise_native, _depthwise_sum, x, w, padding=padding)


def _depthwise_sum(x, w, padding):
  k = w.shape[0]
  h, wd = x.shape[1] + 2 * padding - k + 1, x.shape[2] + 2 * padding - k + 1
  x = _pad(x, padding)
  return sum(x[:, i : i + h, j : j + wd, :] * w[i, j, 0] for i in range(k) for j in range(k))


def _weight_grad_sum(x, g, padding):
  k = x.shape[1] + 2 * padding - g.shape[1] + 1
  x = _pad(x, padding)
  h, wd = g.shape[1:3]
  return jnp.stack(
    [
      jnp.stack([(x[:, i : i + h, j : j + wd, :] * g).sum((0, 1, 2)) for j in range(k)])
      for i in range(k)
    ]
  )


def _depthwise_native(x, w, padding):
  k, c = w.shape[0], x.shape[-1]
  h, wd = x.shape[1] + 2 * padding - k + 1, x.shape[2] + 2 * padding - k + 1
  out = jax.ShapeDtypeStruct((x.shape[0], h, wd, c), x.dtype)
  return jax.ffi.ffi_call('hfa_depthwise_forward', out, vmap_method='broadcast_all')(
    x, w.reshape(k, k, c), pad=np.int64(padding)
  )


def _weight_grad_native(x, g, padding):
  k, c = x.shape[1] + 2 * padding - g.shape[1] + 1, x.shape[-1]
  out = jax.ShapeDtypeStruct((k, k, c), x.dtype)
  return jax.ffi.ffi_call('hfa_depthwise_weight_grad', out, vmap_method='broadcast_all')(
    x, g, pad=np.int64(padding)
  )


def _pad(x: jax.Array, p: int, value: float = 0.0) -> jax.Array:
  """Pads H and W of (B, H, W, C) by p on each side with `value`."""
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=value)


def _patches(x: jax.Array, k: int) -> jax.Array:
  """(B, H, W, C) -> (B, H/k, W/k, k*k*C), each k x k patch flattened in (row, column, C) order.

  A remainder row or column that makes no whole patch is dropped, as the convolution does.
  """
  b, h, w, c = x.shape
  x = x[:, : h // k * k, : w // k * k]
  x = x.reshape(b, h // k, k, w // k, k, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // k, w // k, k * k * c)


def max_pool(x: jax.Array, kernel: int, stride: int, padding: int) -> jax.Array:
  """PyTorch's max_pool2d (NHWC, -inf padding): (B, H, W, C) -> (B, Ho, Wo, C).

  The maximum of k*k strided slices; the gradient goes to the first maximum of each window
  in row-major order, as PyTorch's does. XLA:CPU's reduce-window gradient (select-and-scatter)
  is ~10x slower than this at HFA-Net's stem.
  """
  return _max_pool(x, kernel, stride, padding)


def _taps(x, k, s, p, fill=0.0):
  """The k*k windows' entries as strided slices of x padded with `fill`: k*k x (B, Ho, Wo, C),
  in row-major tap order."""
  b, h, w, c = x.shape
  ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
  xp = _pad(x, p, fill)
  return [
    jax.lax.slice(
      xp, (0, i, j, 0), (b, i + s * (ho - 1) + 1, j + s * (wo - 1) + 1, c), (1, s, s, 1)
    )
    for i in range(k)
    for j in range(k)
  ]


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, k, s, p):
  return functools.reduce(jnp.maximum, _taps(x, k, s, p, -jnp.inf))


def _max_pool_fwd(x, k, s, p):
  y = _max_pool(x, k, s, p)
  return y, (x, y)


def _max_pool_bwd(k, s, p, residuals, g):
  x, y = residuals
  h, w = x.shape[1:3]
  ho, wo = y.shape[1:3]
  taken = jnp.zeros(y.shape, bool)
  dx = jnp.zeros_like(x)
  for t, tap in enumerate(_taps(x, k, s, p, -jnp.inf)):
    i, j = divmod(t, k)
    first = (tap == y) & ~taken
    taken = taken | first
    # Output (oy, ox) of tap (i, j) read x[s*oy + i - p, s*ox + j - p]: spread g back there.
    spread = (
      (0, 0, 0),
      (i - p, h - s * (ho - 1) - 1 - (i - p), s - 1),
      (j - p, w - s * (wo - 1) - 1 - (j - p), s - 1),
      (0, 0, 0),
    )
    dx = dx + jax.lax.pad(jnp.where(first, g, 0), jnp.zeros((), g.dtype), spread)
  return (dx,)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def dense(features: int, *, name: str | None = None, dtype=None) -> 'Dense':
  """A Linear layer initialised like the original (trunc. normal .02, zero bias)."""
  return Dense(features, name=name, dtype=dtype)


class Dense(nn.Module):
  """nn.Dense's parameters and numbers (`kernel` (in, out), `bias`), x (..., in) -> (..., out).

  On CPU (float32) the kernel's gradient, sum over all rows of x^T g, comes from the native
  dense-conv weight-gradient kernel: XLA transposes the rows x channels activations first.
  """

  features: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.param('kernel', linear_default, (x.shape[-1], self.features), jnp.float32)
    b = self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32)
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    return _matmul(x, w) + b


@jax.custom_vjp
def _matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  return x @ w


def _matmul_fwd(x, w):
  return x @ w, (x, w)


def _matmul_bwd(residuals, g):
  x, w = residuals
  dx = g @ w.T
  rows = x.reshape(-1, x.shape[-1])
  grads = g.reshape(-1, g.shape[-1])
  xla = lambda a, b: a.T @ b
  if _native_weight_grad_pays(g.shape[-1]):
    dw = _on_cpu(_rows_weight_grad_native, xla, rows, grads)
  else:
    dw = xla(rows, grads)
  return dx, dw.astype(w.dtype)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _rows_weight_grad_native(rows, grads):
  """rows^T grads for (M, in), (M, out), as a 1x1 convolution's weight gradient."""
  m = rows.shape[0]
  width = max(d for d in range(1, 129) if m % d == 0)  # positions per image row
  as_map = lambda t: t.reshape(m // width, 1, width, t.shape[-1])
  return _conv_weight_grad_native(as_map(rows), as_map(grads), stride=1, padding=0, k=1)[0, 0]


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
