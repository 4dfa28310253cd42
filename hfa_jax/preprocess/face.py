"""Optional face crop with OpenCV's frontal-face Haar cascade (ships with opencv, offline).

The box is detected on ONE frame (the onset) and the same box crops both onset and apex,
so head position stays consistent and the flow is not polluted by a moving crop.
When no face is found, `detect_face_box` returns None and callers fall back to the whole
frame (flow_for_clip reports it in its result; it never guesses a box).
"""

from __future__ import annotations

import cv2
import numpy as np

from hfa_jax.preprocess.errors import PreprocessError
from hfa_jax.preprocess.frames import to_gray

CASCADE_FILE = 'haarcascade_frontalface_default.xml'
Box = tuple[int, int, int, int]  # x, y, width, height in pixels
_cascade = None  # loaded lazily, once per process (cv2 objects do not pickle)


def _get_cascade() -> cv2.CascadeClassifier:
  global _cascade
  if _cascade is None:
    path = cv2.data.haarcascades + CASCADE_FILE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
      raise PreprocessError(
        f'cannot load the Haar cascade {path}; install '
        'opencv-contrib-python-headless>=4.10,<5 (OpenCV 5 has none)'
      )
    _cascade = cascade
  return _cascade


def detect_face_box(image: np.ndarray, margin: float = 0.1, min_size: float = 0.2) -> Box | None:
  """The largest frontal face in `image` as (x, y, w, h), or None when none is found.

  image: uint8 (H, W) or BGR (H, W, 3). margin: fraction of the face size added on every
  side (clipped to the image). min_size: smallest face side as a fraction of min(H, W).
  """
  gray = to_gray(image, 'face detection input')
  side = int(min(gray.shape) * min_size)
  faces = _get_cascade().detectMultiScale(
    gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side)
  )
  if len(faces) == 0:
    return None
  x, y, w, h = max((tuple(int(v) for v in f) for f in faces), key=lambda f: f[2] * f[3])
  dx, dy = int(round(w * margin)), int(round(h * margin))
  x0, y0 = max(x - dx, 0), max(y - dy, 0)
  x1, y1 = min(x + w + dx, gray.shape[1]), min(y + h + dy, gray.shape[0])
  return x0, y0, x1 - x0, y1 - y0


def crop(image: np.ndarray, box: Box | None) -> np.ndarray:
  """image[y:y+h, x:x+w]; the whole image when box is None."""
  if box is None:
    return image
  x, y, w, h = box
  if w < 8 or h < 8 or x < 0 or y < 0 or y + h > image.shape[0] or x + w > image.shape[1]:
    raise PreprocessError(f'face box {box} does not fit in an image of shape {image.shape}')
  return image[y : y + h, x : x + w]
