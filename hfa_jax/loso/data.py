"""The arrays a LOSO run trains and tests on, checked once (NumPy only)."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np


def digest(x) -> str:
  """A short fingerprint of an array's bytes and dtype."""
  x = np.ascontiguousarray(x)
  return hashlib.sha1(x.tobytes() + str(x.dtype).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class LosoData:
  """images (N, S, S, 3) float32 flow images (u, v, strain); labels (N,) int32 in
  [0, num_classes); subjects (N,) str; strata (N,) str database of each sample or None."""

  images: np.ndarray
  labels: np.ndarray
  subjects: np.ndarray
  strata: np.ndarray | None
  num_classes: int

  @classmethod
  def of(cls, images, labels, subjects, strata=None, num_classes=None) -> LosoData:
    """Checked arrays; ValueError saying what does not fit."""
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels).astype(np.int32)
    subjects = np.asarray(subjects).astype(str)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'images must be (N, S, S, 3), got {images.shape}')
    if not len(images) == len(labels) == len(subjects):
      raise ValueError(f'{len(images)} images, {len(labels)} labels, {len(subjects)} subjects')
    if strata is not None:
      strata = np.asarray(strata).astype(str)
      if len(strata) != len(labels):
        raise ValueError(f'{len(strata)} strata for {len(labels)} samples')
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.min() < 0 or labels.max() >= num_classes:
      raise ValueError(f'labels must lie in 0..{num_classes - 1}')
    return cls(images, labels, subjects, strata, num_classes)

  @property
  def side(self) -> int:
    return self.images.shape[1]

  def fingerprint(self) -> dict:
    """What identifies these data in a run folder (a rebuilt dataset differs)."""
    out = dict(
      n=len(self.labels),
      shape=list(self.images.shape),
      labels=digest(self.labels),
      subjects=digest(self.subjects),
      images=digest(self.images),
    )
    if self.strata is not None:
      out['strata'] = digest(self.strata)
    return out
