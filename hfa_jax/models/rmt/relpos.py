"""Relative position for retention: rotary tables and Manhattan-distance decay masks.

These depend only on the stage's sizes, never on the data: they are computed once
per (feature side, width, heads) with numpy in float32, as the original does in
PyTorch, and enter the compiled step as constants.
"""

import functools

import numpy as np


def angles(embed_dim: int, num_heads: int) -> np.ndarray:
  """Rotary frequencies, each repeated for its pair of channels: (embed_dim // num_heads,)."""
  n = embed_dim // num_heads // 2
  exponent = _torch_linspace01(n)
  theta = np.float32(1.0) / np.power(np.float32(10000.0), exponent, dtype=np.float32)
  return np.repeat(theta, 2).astype(np.float32)


def decays(num_heads: int, initial_value: float, heads_range: float) -> np.ndarray:
  """Per-head log decay rate log(1 - 2^(-init - range * h / heads)): (num_heads,)."""
  h = np.arange(num_heads, dtype=np.float32)
  exponent = np.float32(-initial_value) - np.float32(heads_range) * h / np.float32(num_heads)
  return np.log(
    np.float32(1.0) - np.power(np.float32(2.0), exponent, dtype=np.float32), dtype=np.float32
  ).astype(np.float32)


@functools.lru_cache(maxsize=None)
def rotary(height: int, width: int, embed_dim: int, num_heads: int):
  """sin, cos tables (H, W, D) of the FLATTENED position index arange(H*W), as the original."""
  index = np.arange(height * width, dtype=np.float32)
  phase = index[:, None] * angles(embed_dim, num_heads)[None, :]  # float32 product
  shape = (height, width, -1)
  return np.sin(phase).reshape(shape), np.cos(phase).reshape(shape)


@functools.lru_cache(maxsize=None)
def decay_1d(length: int, num_heads: int, initial_value: float, heads_range: float):
  """|i - j| * decay_h added to the logits of one axis: (heads, L, L)."""
  index = np.arange(length, dtype=np.float32)
  dist = np.abs(index[:, None] - index[None, :])
  return (dist[None] * decays(num_heads, initial_value, heads_range)[:, None, None]).astype(
    np.float32
  )


@functools.lru_cache(maxsize=None)
def decay_2d(height: int, width: int, num_heads: int, initial_value: float, heads_range: float):
  """Manhattan distance * decay_h between all pairs of positions: (heads, H*W, H*W)."""
  grid = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing='ij'), -1)
  grid = grid.reshape(height * width, 2).astype(np.float32)
  dist = np.abs(grid[:, None, :] - grid[None, :, :]).sum(-1)
  return (dist[None] * decays(num_heads, initial_value, heads_range)[:, None, None]).astype(
    np.float32
  )


def _torch_linspace01(steps: int) -> np.ndarray:
  """torch.linspace(0, 1, steps) in float32, including its symmetric evaluation order."""
  if steps == 1:
    return np.zeros(1, np.float32)
  step = np.float32(1.0) / np.float32(steps - 1)
  i = np.arange(steps)
  half = steps // 2
  out = np.where(
    i < half,
    i.astype(np.float32) * step,
    np.float32(1.0) - (steps - 1 - i).astype(np.float32) * step,
  )
  return out.astype(np.float32)
