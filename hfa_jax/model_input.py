"""From stored flows to what a model sees: value range and side.

The LOSO input pipeline (datasets.load) and `hfa_jax.predict` both call these, so that a model
at prediction time gets exactly the inputs it was trained on:

    flows = flow_images_signed(stored)   # flow-image datasets only: 0..1 -> -1..1
    images = resize(flows, side)         # (N, S, S, 3) -> (N, side, side, 3)
"""

from __future__ import annotations

import numpy as np


def flow_images_signed(flows: np.ndarray) -> np.ndarray:
  """Flow images stored min-max scaled to 0..1 per channel -> float32 -1..1, so that u and v
  are signed (a horizontal mirror maps u to -u exactly). (..., 3) -> (..., 3)."""
  return 2 * flows.astype(np.float32) - 1


def resize(images: np.ndarray, size: int) -> np.ndarray:
  """(N, H, W, 3) -> (N, size, size, 3), bilinear (antialiased when shrinking)."""
  if images.shape[1:3] == (size, size):
    return images
  import jax

  return np.asarray(
    jax.image.resize(images, (len(images), size, size, images.shape[-1]), 'bilinear')
  )
