"""PyTorch's max_pool2d (NHWC, -inf padding): XLA's reduce-window form and two fast forms.

`max_pool` is the maximum of k*k strided slices, with a gradient that goes to the first
maximum of each window in row-major order, as PyTorch's does; XLA:CPU's reduce-window
gradient (select-and-scatter) is much slower at HFA-Net's stem. `max_pool_disjoint` is the
form for windows that do not overlap (stride = kernel, STSTNet's 3x3/3), its gradient one
pass over x's grid.

Both keep, from the forward, which tap of each window holds its first maximum (`_first_max`),
and the gradient goes there. Comparing x with the pooled maximum again in the backward
(`x == y`) is not safe under jit: XLA may fuse x's producer (BatchNorm's affine map) into
the maximum's fusion and into the comparison's and round the two copies differently (an FMA
contracted in one); then no entry of a window equals its maximum and the window's gradient
is lost (STSTNet's stem at 28 px: ~9 % of the windows, a BatchNorm shift's gradient 0.55
where finite differences give 0.66). One index per window is computed in one chain of
comparisons, and it always receives the window's whole gradient.
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


def _first_max(taps: list[jax.Array]) -> tuple[jax.Array, jax.Array]:
  """(the elementwise maximum of taps, the index of the first tap that holds it, int32)."""
  y, index = taps[0], jnp.zeros(taps[0].shape, jnp.int32)
  for t, tap in enumerate(taps[1:], start=1):
    later = tap > y
    y, index = jnp.where(later, tap, y), jnp.where(later, t, index)
  return y, index


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, k, s, p):
  return functools.reduce(jnp.maximum, windows.taps(x, k, s, p, -jnp.inf))


def _max_pool_fwd(x, k, s, p):
  y, index = _first_max(windows.taps(x, k, s, p, -jnp.inf))
  return y, (x.shape, index)


def _max_pool_bwd(k, s, p, residuals, g):
  shape, index = residuals
  h, w = shape[1:3]
  ho, wo = index.shape[1:3]
  dx = jnp.zeros(shape, g.dtype)
  for t in range(k * k):
    i, j = divmod(t, k)
    # Output (oy, ox) of tap (i, j) read x[s*oy + i - p, s*ox + j - p]: spread g back there.
    spread = (
      (0, 0, 0),
      (i - p, h - s * (ho - 1) - 1 - (i - p), s - 1),
      (j - p, w - s * (wo - 1) - 1 - (j - p), s - 1),
      (0, 0, 0),
    )
    dx = dx + jax.lax.pad(jnp.where(index == t, g, 0), jnp.zeros((), g.dtype), spread)
  return (dx,)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def max_pool_disjoint(x: jax.Array, kernel: int, padding: int) -> jax.Array:
  """PyTorch's max_pool2d with stride = kernel: (B, H, W, C) -> (B, Ho, Wo, C),
  Ho = (H + 2 padding - kernel) // kernel + 1 (and Wo alike).

  The windows do not overlap: the forward is the maximum of the k*k strided slices (one
  elementwise pass, no padded copy of x), the gradient each window's output gradient at the
  window's first maximum in row-major order, as PyTorch's (`_disjoint_bwd`; XLA's general
  max-pool gradient took ~4x longer at STSTNet's 3x3/3).
  """
  return functools.reduce(jnp.maximum, windows.taps(x, kernel, kernel, padding, -jnp.inf))


def _disjoint_fwd(x, k, p):
  y, index = _first_max(windows.taps(x, k, k, p, -jnp.inf))
  return y, (x.shape, index)


def _disjoint_bwd(k, p, residuals, g):
  """g (B, Ho, Wo, C) -> dx (B, H, W, C): g at each window's first maximum, 0 elsewhere and
  outside every window. One pass over x's grid: the k*k taps' gradients interleaved into
  (B, Ho, k, Wo, k, C) and cropped."""
  (b, h, w, c), index = residuals
  ho, wo = g.shape[1:3]
  taps = [jnp.where(index == t, g, 0) for t in range(k * k)]
  dx = jnp.stack(taps, axis=3).reshape(b, ho, wo, k, k, c).transpose(0, 1, 3, 2, 4, 5)
  # Padded row r is x's row r - p; x's rows past the last window are outside every window.
  crop = [(0, 0, 0), (-p, h + p - ho * k, 0), (-p, w + p - wo * k, 0), (0, 0, 0)]
  return (jax.lax.pad(dx.reshape(b, ho * k, wo * k, c), jnp.zeros((), g.dtype), crop),)


max_pool_disjoint.defvjp(_disjoint_fwd, _disjoint_bwd)
