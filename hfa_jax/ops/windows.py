"""Padding and window slicing shared by the convolution and pooling forms (NHWC)."""

import jax
import jax.numpy as jnp


def pad(x: jax.Array, p: int, value: float = 0.0) -> jax.Array:
  """Pads H and W of (B, H, W, C) by p on each side with `value`."""
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=value)


def taps(x: jax.Array, k: int, s: int, p: int, fill: float = 0.0) -> list[jax.Array]:
  """The k*k windows' entries as strided slices of x padded with `fill`: k*k x (B, Ho, Wo, C),
  in row-major tap order."""
  b, h, w, c = x.shape
  ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
  xp = pad(x, p, fill)
  return [
    jax.lax.slice(
      xp, (0, i, j, 0), (b, i + s * (ho - 1) + 1, j + s * (wo - 1) + 1, c), (1, s, s, 1)
    )
    for i in range(k)
    for j in range(k)
  ]


def patches(x: jax.Array, k: int) -> jax.Array:
  """(B, H, W, C) -> (B, H/k, W/k, k*k*C), each k x k patch flattened in (row, column, C) order.

  A remainder row or column that makes no whole patch is dropped, as the convolution does.
  """
  b, h, w, c = x.shape
  x = x[:, : h // k * k, : w // k * k]
  x = x.reshape(b, h // k, k, w // k, k, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // k, w // k, k * k * c)
