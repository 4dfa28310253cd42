"""PyTorch's max_pool2d (NHWC, -inf padding): XLA's reduce-window form and the model's.

`max_pool` is the maximum of k*k strided slices, with a gradient that goes to the first
maximum of each window in row-major order, as PyTorch's does; XLA:CPU's reduce-window
gradient (select-and-scatter) is much slower at HFA-Net's stem.
"""

import functools

import jax
import jax.numpy as jnp

from hfa_jax.ops import windows


def max_pool_reference(x: jax.Array, kernel: int, stride: int, padding: int) -> jax.Array:
  """XLA's reduce-window maximum: (B, H, W, C) -> (B, Ho, Wo, C)."""
  return jax.lax.reduce_window(
    x,
    -jnp.inf,
    jax.lax.max,
    (1, kernel, kernel, 1),
    (1, stride, stride, 1),
    ((0, 0), (padding, padding), (padding, padding), (0, 0)),
  )


def max_pool(x: jax.Array, kernel: int, stride: int, padding: int) -> jax.Array:
  """PyTorch's max_pool2d: (B, H, W, C) -> (B, Ho, Wo, C)."""
  return _max_pool(x, kernel, stride, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, k, s, p):
  return functools.reduce(jnp.maximum, windows.taps(x, k, s, p, -jnp.inf))


def _max_pool_fwd(x, k, s, p):
  y = _max_pool(x, k, s, p)
  return y, (x, y)


def _max_pool_bwd(k, s, p, residuals, g):
  x, y = residuals
  h, w = x.shape[1:3]
  ho, wo = y.shape[1:3]
  taken = jnp.zeros(y.shape, bool)
  dx = jnp.zeros_like(x)
  for t, tap in enumerate(windows.taps(x, k, s, p, -jnp.inf)):
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
