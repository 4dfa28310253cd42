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


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool_disjoint(x: jax.Array, kernel: int, padding: int) -> jax.Array:
  """PyTorch's max_pool2d with stride = kernel: (B, H, W, C) -> (B, Ho, Wo, C),
  Ho = (H + 2 padding - kernel) // kernel + 1 (and Wo alike).

  The windows do not overlap: the forward is the maximum of the k*k strided slices (one
  elementwise pass, no padded copy of x), the gradient each window's output gradient on the
  window's maxima (`_disjoint_bwd`; XLA's general max-pool gradient took ~4x longer at
  STSTNet's 3x3/3). Ties share the gradient where PyTorch gives it to the first maximum
  (`max_pool`).
  """
  return functools.reduce(jnp.maximum, windows.taps(x, kernel, kernel, padding, -jnp.inf))


def _disjoint_fwd(x, k, p):
  taps = windows.taps(x, k, k, p, -jnp.inf)
  y = functools.reduce(jnp.maximum, taps)
  count = sum((tap == y).astype(x.dtype) for tap in taps)  # each window's maxima
  return y, (x, y, count)


def _disjoint_bwd(k, p, residuals, g):
  """g (B, Ho, Wo, C) -> dx (B, H, W, C): g / (the window's number of maxima) where x is its
  window's maximum, 0 elsewhere and outside every window. One elementwise pass over x's
  grid: the windows' (Ho, Wo) values reach their k x k entries by a broadcast and a crop."""
  x, y, count = residuals
  b, h, w, c = x.shape
  ho, wo = y.shape[1:3]
  # Padded row r is x's row r - p; x's rows past the last window are outside every window.
  crop = [(0, 0, 0), (-p, h + p - ho * k, 0), (-p, w + p - wo * k, 0), (0, 0, 0)]

  def on_x(t):  # (B, Ho, Wo, C) -> (B, H, W, C): each entry of x gets its window's value
    t = jnp.broadcast_to(t[:, :, None, :, None], (b, ho, k, wo, k, c))
    return jax.lax.pad(t.reshape(b, ho * k, wo * k, c), jnp.zeros((), t.dtype), crop)

  share = (g / count).astype(x.dtype)
  return (jnp.where(x == on_x(y), on_x(share), 0),)


max_pool_disjoint.defvjp(_disjoint_fwd, _disjoint_bwd)
