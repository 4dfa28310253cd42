"""PyTorch's max_pool2d (NHWC, -inf padding): XLA's reduce-window form and two fast forms.

`max_pool` is the maximum of k*k strided slices, with a gradient that goes to the first
maximum of each window in row-major order, as PyTorch's does; XLA:CPU's reduce-window
gradient (select-and-scatter) is much slower at HFA-Net's stem. `max_pool_disjoint` is the
form for windows that do not overlap (stride = kernel, STSTNet's 3x3/3): a reshape and a
max over each window, with a one-mask gradient.
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


def max_pool_disjoint(x: jax.Array, kernel: int, padding: int) -> jax.Array:
  """PyTorch's max_pool2d with stride = kernel: (B, H, W, C) -> (B, Ho, Wo, C),
  Ho = (H + 2 padding - kernel) // kernel + 1 (and Wo alike).

  The windows do not overlap, so this is a reshape and a max over each window, with a
  one-mask gradient (XLA's general max-pool gradient took ~4x longer at STSTNet's 3x3/3).
  Ties share the gradient where PyTorch gives it to the first maximum (`max_pool`).
  """
  b, h, w, c = x.shape
  k, p = kernel, padding
  oh, ow = (h + 2 * p - k) // k + 1, (w + 2 * p - k) // k + 1
  x = jnp.pad(
    x,
    ((0, 0), (p, max(k * oh - h - p, 0)), (p, max(k * ow - w - p, 0)), (0, 0)),
    constant_values=-jnp.inf,
  )[:, : k * oh, : k * ow]
  return _window_max(x.reshape(b, oh, k, ow, k, c))


@jax.custom_vjp
def _window_max(x: jax.Array) -> jax.Array:
  """(B, Ho, k, Wo, k, C) -> (B, Ho, Wo, C): the max of each k x k window."""
  return x.max((2, 4))


def _window_max_fwd(x):
  y = x.max((2, 4))
  return y, x == y[:, :, None, :, None, :]


def _window_max_bwd(is_max, g):
  share = g / is_max.sum((2, 4))  # ties share, as jnp.max's gradient
  return (is_max * share[:, :, None, :, None, :],)


_window_max.defvjp(_window_max_fwd, _window_max_bwd)
