"""Apex strategies for clips without an apex label (SMIC).

SMIC gives onset = first frame and offset = last frame, and no apex. Two strategies:

- 'middle': the middle frame, index (n - 1) // 2, as most peers do.
- 'max_motion': the frame that differs most from the onset. Each frame is shrunk to
  `work_side` pixels on its longer side and blurred (Gaussian, sigma 1) to suppress sensor
  noise; its score is the mean absolute difference to the onset frame; the apex is the
  highest-scoring frame after the onset. Cheap (no optical flow): about a millisecond a frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

from hfa_jax.preprocess.errors import PreprocessError
from hfa_jax.preprocess.frames import Frame, read_gray, to_gray

APEX_STRATEGIES = ('middle', 'max_motion')
FrameLike = Union[str, Path, Frame, np.ndarray]


def _load_small(item: FrameLike, work_side: int) -> np.ndarray:
  if isinstance(item, Frame):
    item = item.path
  image = read_gray(item) if isinstance(item, (str, Path)) else to_gray(item)
  scale = work_side / max(image.shape)
  if scale < 1:
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
  return cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.0)


def motion_scores(frames: Sequence[FrameLike], work_side: int = 64) -> np.ndarray:
  """Mean absolute difference of each frame to frames[0] (float32 (n,); score[0] == 0)."""
  onset = _load_small(frames[0], work_side)
  scores = [0.0]
  for item in frames[1:]:
    image = _load_small(item, work_side)
    if image.shape != onset.shape:
      raise PreprocessError(
        f'frame {getattr(item, "path", "")} has size {image.shape}, '
        f'the onset frame {onset.shape}; frames of a clip must match'
      )
    scores.append(float(np.mean(np.abs(image - onset))))
  return np.asarray(scores, np.float32)


def pick_apex(frames: Sequence[FrameLike], strategy: str = 'middle', work_side: int = 64) -> int:
  """Index into `frames` (onset first, in frame order) of the apex frame.

  frames: Frame tuples, paths or uint8 images. Only 'max_motion' reads the images.
  """
  if strategy not in APEX_STRATEGIES:
    raise ValueError(f'unknown apex strategy {strategy!r}; use one of {APEX_STRATEGIES}')
  if len(frames) < 2:
    raise PreprocessError(f'a clip needs at least 2 frames to pick an apex, got {len(frames)}')
  if strategy == 'middle':
    return (len(frames) - 1) // 2
  return 1 + int(np.argmax(motion_scores(frames, work_side)[1:]))  # never the onset itself
