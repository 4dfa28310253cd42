"""Manhattan self-attention (retention) of RMT, decomposed and whole.

Both take x: (B, H, W, C) and return (B, H, W, C). Logits q.k get the decay mask
ADDED before the softmax; keys are scaled by head_dim ** -0.5; q and k are rotated
by the rotary tables; `lepe`, a 5x5 depthwise conv of V, is added before `out_proj`.
The mixing itself is `hfa_jax.ops.attention`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import DWConv, dense
from hfa_jax.models.rmt import relpos
from hfa_jax.ops.attention import attention


def rotate(x: jax.Array, sin: jax.Array, cos: jax.Array) -> jax.Array:
  """Rotary shift: each channel pair (a, b) -> (a cos - b sin, b cos + a sin). x: (..., D)."""
  pairs = x.reshape(*x.shape[:-1], -1, 2)
  rotated = jnp.stack([-pairs[..., 1], pairs[..., 0]], axis=-1).reshape(x.shape)
  return x * cos + rotated * sin


class _RetentionBase(nn.Module):
  """Projections shared by both forms; subclasses mix the values with `_mix`."""

  num_heads: int
  initial_value: float
  heads_range: float
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    n, d = self.num_heads, c // self.num_heads
    q = dense(c, name='q_proj', dtype=self.dtype)(x)
    k = dense(c, name='k_proj', dtype=self.dtype)(x) * (d**-0.5)
    v = dense(c, name='v_proj', dtype=self.dtype)(x)
    lepe = DWConv(5, name='lepe', dtype=self.dtype)(v)

    sin, cos = relpos.rotary(h, w, c, n)  # (H, W, D) constants
    sin, cos = jnp.asarray(sin, q.dtype), jnp.asarray(cos, q.dtype)
    heads = lambda t: t.reshape(b, h, w, n, d).transpose(0, 3, 1, 2, 4)  # (B, N, H, W, D)
    q, k, v = rotate(heads(q), sin, cos), rotate(heads(k), sin, cos), heads(v)

    out = self._mix(q, k, v)  # (B, N, H, W, D)
    out = out.transpose(0, 2, 3, 1, 4).reshape(b, h, w, c)
    return dense(c, name='out_proj', dtype=self.dtype)(out + lepe)


class DecomposedRetention(_RetentionBase):
  """Retention along the width axis, then along the height axis (RMT stages 1-2)."""

  def _mix(self, q, k, v):
    _, n, h, w, _ = q.shape
    args = (n, self.initial_value, self.heads_range)
    mask_w = jnp.asarray(relpos.decay_1d(w, *args), q.dtype)[:, None]  # (N, 1, W, W)
    mask_h = jnp.asarray(relpos.decay_1d(h, *args), q.dtype)[:, None]  # (N, 1, H, H)
    v = attention(q, k, v, mask_w)  # along W, per row
    by_column = lambda t: jnp.swapaxes(t, 2, 3)  # (B, N, W, H, D)
    return by_column(attention(by_column(q), by_column(k), by_column(v), mask_h))


class WholeRetention(_RetentionBase):
  """Retention over all H*W positions with the 2-D Manhattan decay (RMT stages 3-4)."""

  def _mix(self, q, k, v):
    b, n, h, w, d = q.shape
    mask = jnp.asarray(relpos.decay_2d(h, w, n, self.initial_value, self.heads_range), q.dtype)
    flat = lambda t: t.reshape(b, n, h * w, d)
    return attention(flat(q), flat(k), flat(v), mask).reshape(b, n, h, w, d)
