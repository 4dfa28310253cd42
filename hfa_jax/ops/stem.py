"""A network's first stage: convolution with bias of the input, ReLU and BatchNorm (either
order, or none), max-pool of disjoint windows. XLA's composition and a fused form.

    p, mean, var = conv_bn_pool(x, kernel, bias, scale, shift, padding=2, pool=3,
                                pool_padding=1, relu_first=True)   # STSTNet's streams
    p, mean, var = conv_bn_pool(..., padding=0, pool=2, pool_padding=0, relu_first=False)  # RCN-A
    p = conv_relu_pool(x, kernel, bias, padding=0, pool=3, pool_padding=0)  # SSSNet (no BN)
    p = conv_relu_pool(x, kernel, bias, padding=1, pool=2, pool_padding=0)  # OFF-ApexNet

The first two return the pooled output and the batch's mean and (biased) variance of the
normalised activation (for the running statistics). `conv_bn_pool_reference` is the model's own
composition (ops.conv.conv, models.layers.batch_norm's training branch,
ops.max_pool.max_pool_disjoint). In CPU programs with the native kernels (float32, channels a
multiple of 16; `conv_relu_pool` pads other counts with zero channels), `conv_bn_pool` runs
kernels.stem_forward / stem_backward instead: the activation before the pool ((models, B, Hc,
Wc, C): 590 MB for 40 STSTNets at batch 256) is never written; the forward keeps each window's
maximum and minimum and the statistics, the backward recomputes the convolution (stem_cpu.cc
says why that is the same function). The input gets no gradient (it is the data). Same numbers
to float32 rounding: the statistics are summed in double, and ties of the pool are found before
BatchNorm's rounding. One exception: a channel whose BatchNorm scale is exactly 0 (BatchNorm
then maps each window to one value, and the pool takes its first entry) gets its scale's
gradient from the window's maximum instead.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from hfa_jax import kernels
from hfa_jax.ops.conv import conv
from hfa_jax.ops.max_pool import max_pool_disjoint


def _normalise(v, scale, shift, epsilon):
  """BatchNorm's training branch (models.layers.batch_norm, statistics in float32): (y in v's
  dtype, mean, biased variance)."""
  v32 = v.astype(jnp.float32)
  axes = tuple(range(v.ndim - 1))
  mean = v32.mean(axes)
  var = jnp.square(v32 - mean).mean(axes)
  y = (v32 - mean) * (jax.lax.rsqrt(var + epsilon) * scale) + shift
  return y.astype(v.dtype), mean, var


def conv_bn_pool_reference(
  x, kernel, bias, scale, shift, *, padding, pool, pool_padding, relu_first, epsilon=1e-5
):
  """x (B, H, W, Cin), kernel (k, k, Cin, C), bias, scale, shift (C,) -> (pooled (B, Po, Qo,
  C), mean, var (C,) float32): XLA's composition."""
  u = conv(x, kernel, 1, padding) + bias
  if relu_first:
    y, mean, var = _normalise(jax.nn.relu(u), scale, shift, epsilon)
  else:
    y, mean, var = _normalise(u, scale, shift, epsilon)
    y = jax.nn.relu(y)
  return max_pool_disjoint(y, pool, pool_padding), mean, var


def conv_bn_pool(
  x, kernel, bias, scale, shift, *, padding, pool, pool_padding, relu_first, epsilon=1e-5
):
  """conv_bn_pool_reference, fused in CPU programs where the native kernels run."""
  static = dict(
    padding=padding, pool=pool, pool_padding=pool_padding, relu_first=relu_first, epsilon=epsilon
  )
  return _native_or_reference(
    _fused, conv_bn_pool_reference, static, (x, kernel, bias, scale, shift)
  )


def _native_or_reference(fused, reference, static: dict, operands: tuple, pad_channels=False):
  """`fused(static items, *operands)` in CPU programs where the native kernels run (float32,
  the kernel's (operands[1]) output channels a multiple of 16, or with `pad_channels` (x,
  kernel, bias only) padded with zero channels to one and the output's sliced back), else
  `reference(*operands, **static)`: XLA's composition, which GPU and TPU programs always run."""
  reference = functools.partial(reference, **static)
  channels = operands[1].shape[-1]
  if (
    any(t.dtype != jnp.float32 for t in operands)
    or (channels % 16 and not pad_channels)
    or not kernels.native_available()
  ):
    return reference(*operands)
  fused = functools.partial(fused, tuple(sorted(static.items())))
  if channels % 16:
    fused = functools.partial(_padded_channels, fused, -channels % 16)
  return jax.lax.platform_dependent(*operands, cpu=fused, default=reference)


def _padded_channels(fused, extra: int, x, kernel, bias):
  """fused(x, kernel, bias) with `extra` zero output channels, sliced off its output."""
  kernel = jnp.pad(kernel, [(0, 0)] * (kernel.ndim - 1) + [(0, extra)])
  bias = jnp.pad(bias, [(0, 0)] * (bias.ndim - 1) + [(0, extra)])
  return fused(x, kernel, bias)[..., : kernel.shape[-1] - extra]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused(static, x, kernel, bias, scale, shift):
  return _fused_fwd(static, x, kernel, bias, scale, shift)[0]


def _fused_fwd(static, x, kernel, bias, scale, shift):
  s = dict(static)
  native = dict(padding=s['padding'], pool=s['pool'], pool_padding=s['pool_padding'])
  vmax, vmin, mean, var = kernels.stem_forward(
    x, kernel, bias, **native, relu_first=s['relu_first']
  )
  a = jax.lax.rsqrt(var + s['epsilon']) * scale
  # The window's extreme that BatchNorm maps to its maximum (a = 0: every entry, shift).
  selected = jnp.where(a >= 0, vmax, vmin)
  z = (selected - mean) * a + shift
  pooled = z if s['relu_first'] else jax.nn.relu(z)
  return (pooled, mean, var), (x, kernel, bias, scale, shift, selected, mean, var)


def _fused_bwd(static, residuals, cotangents):
  s = dict(static)
  x, kernel, bias, scale, shift, selected, mean, var = residuals
  g, g_mean, g_var = cotangents
  rstd = jax.lax.rsqrt(var + s['epsilon'])
  a = rstd * scale
  z = (selected - mean) * a + shift
  g_z = g if s['relu_first'] else jnp.where(z > 0, g, 0)  # relu after the pool
  axes = tuple(range(g.ndim - 1))
  d_shift = g_z.sum(axes)
  d_scale = (g_z * ((selected - mean) * rstd)).sum(axes)
  n = positions(x.shape, kernel.shape[0], s['padding'])
  # BatchNorm's gradient through its batch statistics, per channel alpha + beta v at every
  # position (v the normalised activation; plus the statistics' own cotangents).
  mean_g, mean_gv = scale * d_shift / n, scale * d_scale / n
  alpha = -rstd * mean_g + rstd * rstd * mean_gv * mean + g_mean / n - 2 * g_var * mean / n
  beta = -rstd * rstd * mean_gv + 2 * g_var / n
  coeffs = jnp.stack([a, mean, shift, alpha, beta])
  native = dict(padding=s['padding'], pool=s['pool'], pool_padding=s['pool_padding'])
  d_kernel, d_bias = kernels.stem_backward(
    x, kernel, bias, g, coeffs, **native, relu_first=s['relu_first']
  )
  return jnp.zeros_like(x), d_kernel, d_bias, d_scale, d_shift


_fused.defvjp(_fused_fwd, _fused_bwd)


def positions(x_shape, kernel_size: int, padding: int) -> int:
  """The values per channel that the statistics average: B * Hc * Wc of the convolution's
  output (stride 1)."""
  b, h, w = x_shape[:3]
  return b * (h + 2 * padding - kernel_size + 1) * (w + 2 * padding - kernel_size + 1)


def conv_relu_pool_reference(x, kernel, bias, *, padding, pool, pool_padding):
  """x (B, H, W, Cin), kernel (k, k, Cin, C), bias (C,) -> max_pool_disjoint(relu(conv(x) +
  bias)) (B, Po, Qo, C): XLA's composition (SSSNet's first stage before its BatchNorm)."""
  return max_pool_disjoint(jax.nn.relu(conv(x, kernel, 1, padding) + bias), pool, pool_padding)


def conv_relu_pool(x, kernel, bias, *, padding, pool, pool_padding):
  """conv_relu_pool_reference, fused in CPU programs where the native kernels run: the stem
  kernels with BatchNorm's map the identity (a = 1, mean = shift = 0) and no gradient through
  statistics (alpha = beta = 0), any number of channels (zero channels pad them to a multiple
  of 16 there: OFF-ApexNet's 6), so the pooled output is each window's maximum of relu(u) and
  its gradient reaches the window's first maximum where u > 0, as max_pool_disjoint's does."""
  static = dict(padding=padding, pool=pool, pool_padding=pool_padding)
  return _native_or_reference(
    _relu_pool_fused, conv_relu_pool_reference, static, (x, kernel, bias), pad_channels=True
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _relu_pool_fused(static, x, kernel, bias):
  return _relu_pool_fwd(static, x, kernel, bias)[0]


def _relu_pool_fwd(static, x, kernel, bias):
  vmax, _, _, _ = kernels.stem_forward(x, kernel, bias, **dict(static), relu_first=True)
  return vmax, (x, kernel, bias)


def _relu_pool_bwd(static, residuals, g):
  x, kernel, bias = residuals
  c = kernel.shape[-1]
  one, zero = jnp.ones((c,), g.dtype), jnp.zeros((c,), g.dtype)
  coeffs = jnp.stack([one, zero, zero, zero, zero])  # a, mean, shift, alpha, beta
  d_kernel, d_bias = kernels.stem_backward(
    x, kernel, bias, g, coeffs, **dict(static), relu_first=True
  )
  return jnp.zeros_like(x), d_kernel, d_bias


_relu_pool_fused.defvjp(_relu_pool_fwd, _relu_pool_bwd)
