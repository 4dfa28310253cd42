"""Depthwise 2-D cross-correlation, stride 1 (NHWC, w (k, k, 1, C)): XLA's form and the model's.

`depthwise_conv_reference` is XLA's grouped convolution, which XLA:CPU runs slowly (its
gradients especially). `depthwise_conv` computes the same sums written out, with a
hand-written gradient: on CPU (float32) the native kernels (`kernels.depthwise_forward`,
`kernels.depthwise_weight_grad`) when they compiled; elsewhere k*k shifted, per-channel scaled
copies of the padded input (`depthwise_conv_sum`, `depthwise_weight_grad_sum`).
"""

import functools

import jax
import jax.numpy as jnp

from hfa_jax import kernels
from hfa_jax.ops import windows
from hfa_jax.ops.dispatch import on_cpu


def depthwise_conv_reference(x: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """XLA's grouped convolution: x (B, H, W, C), w (k, k, 1, C) -> (B, Ho, Wo, C)."""
  return jax.lax.conv_general_dilated(
    x,
    w,
    (1, 1),
    ((padding, padding),) * 2,
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    feature_group_count=x.shape[-1],
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def depthwise_conv(x: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """Depthwise cross-correlation: x (B, H, W, C), w (k, k, 1, C) -> (B, Ho, Wo, C).

  d/dx is the same convolution of the output gradient with the kernel flipped, d/dw the k*k
  per-channel sums of (shifted input * output gradient).
  """
  return _forward(x, w, padding)


def _forward(x, w, padding):
  return on_cpu(_native_forward, depthwise_conv_sum, x, w, padding=padding)


def _native_forward(x, w, padding):
  k, c = w.shape[0], x.shape[-1]
  return kernels.depthwise_forward(x, w.reshape(k, k, c), padding)


def _depthwise_conv_fwd(x, w, padding):
  return _forward(x, w, padding), (x, w)


def _depthwise_conv_bwd(padding, residuals, g):
  # The barrier keeps XLA from sharing the backward's shifted copies of x with the
  # forward's (it would then materialise them all and keep them alive in between).
  x, w = jax.lax.optimization_barrier(residuals)
  k = w.shape[0]
  dx = _forward(g, w[::-1, ::-1], k - 1 - padding)
  dw = on_cpu(kernels.depthwise_weight_grad, depthwise_weight_grad_sum, x, g, padding=padding)
  return dx, dw.reshape(w.shape).astype(w.dtype)


depthwise_conv.defvjp(_depthwise_conv_fwd, _depthwise_conv_bwd)


def depthwise_conv_sum(x: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """The pure-JAX form: the sum of k*k shifted copies of the padded x, each scaled per channel;
  x (B, H, W, C), w (k, k, 1, C) -> (B, Ho, Wo, C)."""
  k = w.shape[0]
  h, wd = x.shape[1] + 2 * padding - k + 1, x.shape[2] + 2 * padding - k + 1
  x = windows.pad(x, padding)
  return sum(x[:, i : i + h, j : j + wd, :] * w[i, j, 0] for i in range(k) for j in range(k))


def depthwise_weight_grad_sum(x: jax.Array, g: jax.Array, padding: int) -> jax.Array:
  """The pure-JAX d/dw: x (B, H, W, C), output gradient g (B, Ho, Wo, C) -> (k, k, C)."""
  k = x.shape[1] + 2 * padding - g.shape[1] + 1
  x = windows.pad(x, padding)
  h, wd = g.shape[1:3]
  return jnp.stack(
    [
      jnp.stack([(x[:, i : i + h, j : j + wd, :] * g).sum((0, 1, 2)) for j in range(k)])
      for i in range(k)
    ]
  )
