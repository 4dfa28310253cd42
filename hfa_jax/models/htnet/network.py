"""The HTNet module: the input stage (regions.py), the patch embedding, the hierarchy of
transformer layers and aggregation blocks (transformer.py), the head."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.htnet.regions import REGIONS, cut_regions, to_pixels
from hfa_jax.models.htnet.transformer import Aggregate, Linear, Transformer, layer_norm
from hfa_jax.models.layers import conv, torch_conv_default


def to_blocks(x: jax.Array, blocks: int) -> jax.Array:
  """(B, H, W, C) -> (B * blocks**2, H / blocks, W / blocks, C), the blocks of a
  blocks x blocks grid in row-major order (einops 'b c (b1 h) (b2 w) -> (b b1 b2) c h w')."""
  b, h, w, c = x.shape
  x = x.reshape(b, blocks, h // blocks, blocks, w // blocks, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b * blocks * blocks, h // blocks, w // blocks, c)


def from_blocks(x: jax.Array, blocks: int) -> jax.Array:
  """The inverse of to_blocks."""
  n, h, w, c = x.shape
  x = x.reshape(n // blocks**2, blocks, blocks, h, w, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n // blocks**2, blocks * h, blocks * w, c)


class HTNet(nn.Module):
  """x (B, S, S, 3) flow image (u, v, strain in [-1, 1]; S = 28 natively, a multiple of 28)
  -> logits (B, num_classes). See the package docstring (hfa_jax.models.htnet).

  `__call__` = `classify(original_input(x))`: `original_input` cuts and tiles the four
  regions and, with `pixel_input`, makes the original's pixels (BGR, 0..255); `classify` is
  the original network on its own input (NHWC). Dropout (the original's `dropout`, 0 in the
  published configuration) acts in training only and draws from the 'dropout' rng. `dtype`
  is the compute dtype; parameters, LayerNorm statistics and the logits stay float32.
  """

  num_classes: int = 3
  dim: int = 256
  heads: int = 3
  depths: tuple[int, ...] = (2, 2, 10)
  patch_size: int = 7
  mlp_mult: int = 4
  dropout: float = 0.0
  regions: tuple[tuple[int, int], ...] = REGIONS
  pixel_input: bool = True
  dtype: jnp.dtype | None = None
  side_multiple = 28  # the regions' native side; also patch_size * 2**(levels - 1) = 28

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.classify(self.original_input(x), train)

  def original_input(self, x: jax.Array) -> jax.Array:
    """(B, S, S, 3) flow image -> the original network's input (B, S, S, 3)."""
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f'HTNet expects (B, S, S, 3) flow images, got shape {x.shape}')
    x = cut_regions(x, self.regions)
    return to_pixels(x) if self.pixel_input else x

  @nn.compact
  def classify(self, img: jax.Array, train: bool = False) -> jax.Array:
    """The original HTNet.forward on its input img (B, S, S, C) (NHWC) -> logits."""
    levels = len(self.depths)
    total = self.patch_size * 2 ** (levels - 1)
    if img.ndim != 4 or img.shape[1] % total or img.shape[2] % total:
      raise ValueError(
        f'HTNet: input sides must be multiples of {total} (patch {self.patch_size}, '
        f'{levels} levels), got shape {img.shape}'
      )
    if self.dtype is not None:
      img = img.astype(self.dtype)
    p = self.patch_size
    x = conv(self.dim, p, p, 0, name='to_patch_embedding', dtype=self.dtype)(img)
    for i, depth in enumerate(self.depths):
      blocks = 2 ** (levels - 1 - i)  # level levels-1-i of the original
      y = to_blocks(x, blocks)
      y = Transformer(
        depth,
        self.heads * 2**i,
        self.mlp_mult,
        self.dropout,
        name=f'transformer_{i}',
        dtype=self.dtype,
      )(y, train)
      x = from_blocks(y, blocks)
      if blocks > 1:
        x = Aggregate(self.dim * 2 ** (i + 1), name=f'aggregate_{i}', dtype=self.dtype)(x)
    x = layer_norm('head_norm', self.dtype)(x)
    pooled = x.astype(jnp.float32).mean(axis=(1, 2))
    return nn.Dense(self.num_classes, kernel_init=torch_conv_default, name='head')(pooled)


__all__ = ['HTNet', 'Linear']
