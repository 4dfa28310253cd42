"""STSTNet-format flow images: RGB PNGs of (u, v, optical strain), each channel 0..255.

Many micro-expression researchers already have such images (STSTNet, HTNet: 28x28, each
channel min-max scaled per image). The flow-image builder reads them with `read_flow_png` and
`png_flow`; `predict` reads them the same way, and `encode_png` writes the format from a flow.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from hfa_jax.preprocess.errors import PreprocessError

PNG_SIDE = 28  # the side of the published STSTNet/HTNet flow images


def read_flow_png(path: str | Path) -> np.ndarray:
  """The flow image in `path` as uint8 RGB (H, W, 3) = u, v, strain; PreprocessError naming
  the file when it is missing, unreadable, grayscale or not 8-bit."""
  data = np.fromfile(path, dtype=np.uint8) if os.path.isfile(path) else None
  image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
  if image is None:
    raise PreprocessError(f'cannot read image {path}: missing, empty or not a PNG')
  if (
    image.ndim == 2
    or image.shape[2] < 3
    or (
      np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    )
  ):
    raise PreprocessError(
      f'{path} is a grayscale image: a flow image has three '
      'different channels (u, v, optical strain)'
    )
  if image.dtype != np.uint8:
    raise PreprocessError(f'{path} has {image.dtype} pixels; flow images are 8-bit')
  return image[..., 2::-1]  # BGR(A) -> RGB = u, v, strain


def png_flow(rgb: np.ndarray, size: int) -> np.ndarray:
  """uint8 RGB (H, W, 3) -> float32 (size, size, 3) in 0..1: /255, resized (INTER_AREA when
  shrinking, else INTER_LINEAR), clipped. What the flow-image datasets store."""
  flow = rgb.astype(np.float32) / 255.0
  if flow.shape[:2] != (size, size):
    shrink = flow.shape[0] > size
    flow = cv2.resize(
      flow, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )
  return np.clip(flow, 0.0, 1.0).astype(np.float32)


def encode_png(flow: np.ndarray) -> np.ndarray:
  """(H, W, 3) float -> uint8 RGB, each channel min-max scaled to 0..255 (the STSTNet format;
  a constant channel is 0)."""
  out = np.empty(flow.shape, np.uint8)
  for c in range(3):
    channel = flow[..., c]
    lo, hi = float(channel.min()), float(channel.max())
    out[..., c] = np.round((channel - lo) / (hi - lo) * 255) if hi > lo else 0
  return out
