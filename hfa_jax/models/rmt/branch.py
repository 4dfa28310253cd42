"""RMT: HFA-Net's global branch, a small retentive vision transformer (Fan et al., CVPR 2024)."""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import scaled
from hfa_jax.models.rmt.patch import PatchEmbed
from hfa_jax.models.rmt.stage import Stage

# HFA-Net's RMT configuration: (depth, heads, init value, heads range, ffn dim,
# decomposed retention, patch-merging width). Stages 2-4 run their blocks at the
# previous stage's width and end by merging patches to the next one.
STAGES = (
  (1, 1, 1.0, 1.0, 192, True, None),
  (1, 1, 1.0, 1.0, 384, True, 128),
  (2, 2, 1.0, 2.0, 512, False, 256),
  (2, 4, 1.0, 2.0, 1024, False, 512),
)


class RMT(nn.Module):
  """x: (B, S, S, 3) -> four maps at strides 4, 8, 16, 32 with 64, 128, 256, 512 channels,
  each times `width` (1: the paper's; the feed-forward widths scale with them, heads do not).

  `late_depth`: the blocks of stages 3 and 4 (2: the paper's; 1: a shallower branch, 1.02 M
  of HFA-Net's 24.19 M parameters fewer); stages 1 and 2 keep their one block.

  `drop_path`: the stochastic depth of the last block, rising linearly from 0 at the
  first (RMT's drop_path_rate; HFA-Net's configuration uses 0)."""

  drop_path: float = 0.0
  width: float = 1.0
  late_depth: int = 2
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, ...]:
    if self.late_depth < 1:
      raise ValueError(f'late_depth {self.late_depth}: RMT stages need at least one block')
    x = PatchEmbed(scaled(64, self.width), name='patch_embed', dtype=self.dtype)(x, train)
    depths = [stage[0] if i < 2 else self.late_depth for i, stage in enumerate(STAGES)]
    blocks = sum(depths)
    rates = [self.drop_path * i / max(blocks - 1, 1) for i in range(blocks)]
    features = []
    for i, (_, heads, init, rng, ffn, decomposed, out_dim) in enumerate(STAGES):
      depth, first = depths[i], sum(depths[:i])
      x = Stage(
        depth,
        heads,
        scaled(ffn, self.width),
        init,
        rng,
        decomposed,
        scaled(out_dim, self.width),
        tuple(rates[first : first + depth]) if self.drop_path else (),
        name=f'layer{i + 1}',
        dtype=self.dtype,
      )(x, train)
      features.append(x)
    return tuple(features)
