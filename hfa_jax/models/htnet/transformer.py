"""HTNet's transformer layer (the original's `Transformer`, `PreNorm`, `Attention`,
`FeedForward`; Model.py), its aggregation block (`Aggregate`) and the layers they share.

The original works on NCHW maps with 1x1 convolutions; here maps are NHWC and a 1x1
convolution is a Linear layer over the channel axis (the same numbers).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax import ops
from hfa_jax.models.layers import conv, gelu, torch_conv_default


def layer_norm(name: str, dtype=None) -> nn.LayerNorm:
  """The original's channel LayerNorm: biased variance, eps 1e-5, scale `g`, shift `b`."""
  return nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, name=name, dtype=dtype)


class Linear(nn.Module):
  """A 1x1 Conv2d (or nn.Linear) as PyTorch initialises its weight (U(+-1/sqrt(fan_in))),
  bias zero: x (..., in) -> (..., features). Parameters `kernel` (in, features), `bias`."""

  features: int
  bias: bool = True
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    w = self.param('kernel', torch_conv_default, (x.shape[-1], self.features), jnp.float32)
    b = (
      self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32)
      if self.bias
      else None
    )
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    y = ops.dense.dense(x, w)
    return y if b is None else y + b


class Attention(nn.Module):
  """Multi-head self-attention among the positions of each map: (B, H, W, C) -> same.

  Heads of width C // heads (the inner width heads * (C // heads) may be below C, as in the
  original: 255 of 256 at 3 heads); q, k, v from one bias-free projection `to_qkv`, logits
  scaled by head_width ** -0.5, softmax in float32, dropout on the probabilities and after
  `to_out` in training."""

  heads: int
  dropout: float = 0.0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    b, h, w, c = x.shape
    d = c // self.heads
    inner = d * self.heads
    qkv = Linear(3 * inner, bias=False, name='to_qkv', dtype=self.dtype)(x)
    split = lambda t: t.reshape(b, h * w, self.heads, d).transpose(0, 2, 1, 3)  # (B, N, T, D)
    q, k, v = (split(t) for t in jnp.split(qkv, 3, axis=-1))
    logits = jnp.einsum('bnid,bnjd->bnij', q, k) * (d**-0.5)
    p = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
    p = nn.Dropout(self.dropout, deterministic=not train)(p)
    out = jnp.einsum('bnij,bnjd->bnid', p, v).transpose(0, 2, 1, 3).reshape(b, h, w, inner)
    out = Linear(c, name='to_out', dtype=self.dtype)(out)
    return nn.Dropout(self.dropout, deterministic=not train)(out)


class FeedForward(nn.Module):
  """Linear to C * mult, exact GELU, dropout, Linear back to C, dropout: (..., C) -> same."""

  mult: int = 4
  dropout: float = 0.0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    c = x.shape[-1]
    y = gelu(Linear(c * self.mult, name='fc1', dtype=self.dtype)(x))
    y = nn.Dropout(self.dropout, deterministic=not train)(y)
    y = Linear(c, name='fc2', dtype=self.dtype)(y)
    return nn.Dropout(self.dropout, deterministic=not train)(y)


class Block(nn.Module):
  """x + attn(norm(x)), then x + ff(norm(x)) (pre-norm residuals): (B, H, W, C) -> same."""

  heads: int
  mlp_mult: int = 4
  dropout: float = 0.0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = layer_norm('attn_norm', self.dtype)(x)
    x = x + Attention(self.heads, self.dropout, name='attn', dtype=self.dtype)(y, train)
    y = layer_norm('ff_norm', self.dtype)(x)
    return x + FeedForward(self.mlp_mult, self.dropout, name='ff', dtype=self.dtype)(y, train)


class Transformer(nn.Module):
  """A learned position embedding (one value per position, N(0, 1) at init, added to every
  channel), then `depth` blocks: (B', H, W, C) -> same, B' the batch times the blocks."""

  depth: int
  heads: int
  mlp_mult: int = 4
  dropout: float = 0.0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    _, h, w, _ = x.shape
    pos = self.param('pos_emb', nn.initializers.normal(1.0), (h * w,), jnp.float32)
    x = x + pos.reshape(1, h, w, 1).astype(x.dtype)
    for i in range(self.depth):
      block = Block(self.heads, self.mlp_mult, self.dropout, name=f'block_{i}', dtype=self.dtype)
      x = block(x, train)
    return x


class Aggregate(nn.Module):
  """3x3 conv (padding 1) to `features`, channel LayerNorm, max-pool 3x3 stride 2 padding 1:
  (B, H, W, C) -> (B, ceil(H / 2), ceil(W / 2), features)."""

  features: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = conv(self.features, 3, 1, 1, name='conv', dtype=self.dtype)(x)
    x = layer_norm('norm', self.dtype)(x)
    return ops.max_pool.max_pool(x, 3, 2, 1)
