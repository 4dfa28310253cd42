"""EMA: efficient multi-scale attention (Ouyang et al., ICASSP 2023), as used in HFA-Net."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import conv


class EMA(nn.Module):
  """Efficient multi-scale attention over `groups` channel groups.

  The channels are split into `groups` groups that are folded into the batch
  axis; inside a group a 1x1 branch (directional pooling along H and W) and a
  3x3 branch re-weight each other's spatial maps (cross-spatial learning).

  x: (B, H, W, C) with C divisible by `groups` -> (B, H, W, C).
  Parameters: `gn` (GroupNorm with one group per channel), `conv1x1`, `conv3x3`.
  """

  groups: int = 32
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    g = self.groups
    cg = c // g
    if cg * g != c or cg == 0:
      raise ValueError(f'EMA: {c} channels cannot be split into {g} groups')
    # (B, H, W, C) -> (B*G, H, W, C/G); channel index = group * C/G + j, as in the original.
    gx = x.reshape(b, h, w, g, cg).transpose(0, 3, 1, 2, 4).reshape(b * g, h, w, cg)

    x_h = gx.mean(axis=2)  # (BG, H, C/G): pooled over W
    x_w = gx.mean(axis=1)  # (BG, W, C/G): pooled over H
    hw = conv(cg, 1, name='conv1x1', dtype=self.dtype)(
      jnp.concatenate([x_h, x_w], axis=1)[:, :, None, :]
    )  # (BG, H+W, 1, C/G)
    a_h = jax.nn.sigmoid(hw[:, :h])  # (BG, H, 1, C/G)
    a_w = jax.nn.sigmoid(hw[:, h:]).transpose(0, 2, 1, 3)  # (BG, 1, W, C/G)
    x1 = nn.GroupNorm(
      num_groups=cg, epsilon=1e-5, use_fast_variance=False, name='gn', dtype=self.dtype
    )(gx * a_h * a_w)
    x2 = conv(cg, 3, 1, 1, name='conv3x3', dtype=self.dtype)(gx)

    # Each branch's channel descriptor (softmax over channels) weights the other's map.
    d1 = jax.nn.softmax(x1.mean(axis=(1, 2)), axis=-1)  # (BG, C/G)
    d2 = jax.nn.softmax(x2.mean(axis=(1, 2)), axis=-1)
    weights = jnp.einsum('bc,bhwc->bhw', d1, x2) + jnp.einsum('bc,bhwc->bhw', d2, x1)
    out = gx * jax.nn.sigmoid(weights)[..., None]  # (BG, H, W, C/G)
    return out.reshape(b, g, h, w, cg).transpose(0, 2, 3, 1, 4).reshape(b, h, w, c)
