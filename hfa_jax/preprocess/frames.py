"""List a clip's frames in numeric frame order and read them as grayscale.

The three databases name frames differently; the frame number is always the last run of
digits in the file name (without extension):

    CASME II   img46.jpg, reg_img46.jpg   -> 46    (not zero-padded: sort numerically)
    SAMM       006_05562.jpg              -> 5562  (padding varies)
    SMIC       image012345.bmp            -> 12345 (6 digits)

Non-image files (Thumbs.db, .DS_Store, desktop.ini, notes) and hidden files (names starting
with '.', e.g. macOS '._img46.jpg') are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from hfa_jax.preprocess.errors import PreprocessError

IMAGE_SUFFIXES = frozenset({'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff'})
_LAST_NUMBER = re.compile(r'(\d+)\D*$')


class Frame(NamedTuple):
  """One frame of a clip: its absolute frame number and its file."""

  number: int
  path: Path


def frame_number(path: str | Path) -> int | None:
  """The frame number in a file name (last run of digits of the stem), or None."""
  match = _LAST_NUMBER.search(Path(path).stem)
  return int(match.group(1)) if match else None


def is_frame_file(path: Path) -> bool:
  """True for a visible image file whose name holds a frame number."""
  return (
    path.is_file()
    and not path.name.startswith('.')
    and path.suffix.lower() in IMAGE_SUFFIXES
    and frame_number(path) is not None
  )


def list_frames(clip_dir: str | Path) -> list[Frame]:
  """The image frames of a clip folder, sorted by frame number.

  Raises PreprocessError when the folder is missing, holds no frames, or two files
  carry the same frame number (e.g. img46.jpg and img46.png).
  """
  clip_dir = Path(clip_dir)
  if not clip_dir.is_dir():
    problem = 'is a file, not a folder' if clip_dir.exists() else 'does not exist'
    raise PreprocessError(
      f'clip folder {clip_dir} {problem}; check --manual_dir and the database layout'
    )
  frames = sorted(
    (Frame(frame_number(p), p) for p in clip_dir.iterdir() if is_frame_file(p)),
    key=lambda f: f.number,
  )
  if not frames:
    raise PreprocessError(
      f'clip folder {clip_dir} holds no image frames '
      f'(looked for {", ".join(sorted(IMAGE_SUFFIXES))})'
    )
  for prev, cur in zip(frames, frames[1:]):
    if prev.number == cur.number:
      raise PreprocessError(
        f'clip folder {clip_dir}: {prev.path.name} and {cur.path.name} '
        f'both hold frame {cur.number}; remove one of them'
      )
  return frames


def find_frame(frames: list[Frame], number: int, clip: str | Path = '') -> Path:
  """The file of frame `number`, or PreprocessError naming the clip and its frame range."""
  for frame in frames:
    if frame.number == number:
      return frame.path
  where = f' in {clip}' if clip else ''
  span = f'{frames[0].number}..{frames[-1].number}' if frames else 'none'
  raise PreprocessError(
    f'frame {number} is missing{where} (frames on disk: {span}); '
    'check the annotation or the copy of the database'
  )


def read_gray(path: str | Path) -> np.ndarray:
  """Read an image file as grayscale uint8 (H, W); PreprocessError naming the file if bad."""
  path = Path(path)
  if not path.is_file():
    raise PreprocessError(f'image {path} does not exist')
  data = np.fromfile(path, dtype=np.uint8)
  image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
  if image is None:
    raise PreprocessError(
      f'cannot read image {path}: empty, truncated or not an image file OpenCV decodes '
      '(a frame of a database: extract it from its archive again)'
    )
  return image


def to_gray(image: np.ndarray, name: str = 'image') -> np.ndarray:
  """uint8 grayscale (H, W) from uint8 grayscale (H, W), (H, W, 1), BGR (H, W, 3) or BGRA."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise PreprocessError(
      f'{name}: expected uint8 pixels, got {image.dtype}; read frames with read_gray or cv2.imread'
    )
  if image.ndim == 3 and image.shape[2] == 1:
    image = image[..., 0]
  elif image.ndim == 3 and image.shape[2] in (3, 4):
    code = cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
    image = cv2.cvtColor(image, code)
  if image.ndim != 2 or min(image.shape) < 8:
    raise PreprocessError(
      f'{name}: expected a (H, W) or (H, W, 3) image of at least 8x8 '
      f'pixels, got shape {image.shape}'
    )
  return image
