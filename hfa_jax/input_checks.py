"""What a model can judge: each input's flow measured as the model's training data was.

    stats = statistics(images)                 # (N, S, S, 3) model inputs -> {name: (N,)}
    card['input_statistics'] = ranges(train)   # {name: [low, high]} of the training images
    why = unlike(one(stats, i), card['input_statistics'])   # [] or what lies outside

`images` are flows as the model is given them (u, v, strain; after the dataset's value mapping
and the resize to the model's side, before a recipe's own per-image normalisation).

- motion: the largest |(u, v) - median (u, v)|, the motion apart from the whole image's. A
  clip without motion (onset and apex the same frame, or the same picture) has none, nor has
  one whose frame moves as a whole (a flow image encodes such a flow as no motion: a constant
  channel); predict refuses an input below MOTION_FLOOR.
- the value statistics (VALUES): where the strain sits and how far u, v and strain spread, how
  smooth the channels are and how they go together. A flow image's are those of a TV-L1 flow:
  smooth channels, a low strain median; noise is not smooth, a photograph's channels move
  together and its third channel spreads more than strain does. A model's card records the
  range of each over its training images; an input outside the range widened by MARGIN of its
  width on each side is not like anything the model was trained on.

Measured on the 309 public MEGC2019 flow images of CASME II and SMIC (28 px PNGs read as the
flow-image dataset reads them, at 32 px): the quietest sample's motion is 0.955 (the floor is
half of it); with the ranges of 308 images and MARGIN 0.1, 3 of the 309 left out fall outside
(1 %), while 28 px noise (smoothness) and a photograph resized to 28 px (strain spread, v
smoothness) fall outside.
"""

from __future__ import annotations

import numpy as np

MOTION_FLOOR = 0.48  # half the quietest real sample's motion (0.955)
MARGIN = 0.1  # of a range's width, added on each side
VALUES = dict(
  strain_median='median of the strain channel',
  u_spread='standard deviation of u',
  v_spread='standard deviation of v',
  strain_spread='standard deviation of strain',
  u_smoothness='correlation of horizontally adjacent u values',
  v_smoothness='correlation of horizontally adjacent v values',
  strain_smoothness='correlation of horizontally adjacent strain values',
  uv_correlation='correlation of u and v',
  u_strain_correlation='correlation of u and strain',
  v_strain_correlation='correlation of v and strain',
)


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Per image, the correlation of a and b (N, P); 1 where either is constant."""
  a = a - a.mean(1, keepdims=True)
  b = b - b.mean(1, keepdims=True)
  norm = np.sqrt((a * a).sum(1) * (b * b).sum(1))
  return np.where(norm > 1e-12, (a * b).sum(1) / np.maximum(norm, 1e-12), 1.0)


def statistics(images: np.ndarray) -> dict[str, np.ndarray]:
  """{'motion': (N,), and each of VALUES: (N,)} of flows (N, S, S, 3), float64."""
  x = np.asarray(images, np.float64)
  n = len(x)
  if n == 0:
    return {k: np.zeros(0) for k in ('motion', *VALUES)}
  uv = x[..., :2].reshape(n, -1, 2)
  motion = np.sqrt(((uv - np.median(uv, 1, keepdims=True)) ** 2).sum(-1)).max(1)
  flat = [x[..., c].reshape(n, -1) for c in range(3)]
  left = [x[:, :, :-1, c].reshape(n, -1) for c in range(3)]
  right = [x[:, :, 1:, c].reshape(n, -1) for c in range(3)]
  out = dict(
    motion=motion,
    strain_median=np.median(flat[2], 1),
    u_spread=flat[0].std(1),
    v_spread=flat[1].std(1),
    strain_spread=flat[2].std(1),
    u_smoothness=_correlation(left[0], right[0]),
    v_smoothness=_correlation(left[1], right[1]),
    strain_smoothness=_correlation(left[2], right[2]),
    uv_correlation=_correlation(flat[0], flat[1]),
    u_strain_correlation=_correlation(flat[0], flat[2]),
    v_strain_correlation=_correlation(flat[1], flat[2]),
  )
  return {k: np.asarray(v, np.float64) for k, v in out.items()}


def ranges(images: np.ndarray) -> dict[str, list[float]]:
  """{name: [low, high]} of VALUES over training images (N, S, S, 3): a card's record."""
  stats = statistics(images)
  return {k: [round(float(stats[k].min()), 4), round(float(stats[k].max()), 4)] for k in VALUES}


def one(stats: dict[str, np.ndarray], i: int) -> dict[str, float]:
  """Input i's statistics."""
  return {k: float(v[i]) for k, v in stats.items()}


def no_motion(stats: dict[str, float]) -> str | None:
  """Why an input's flow is no motion to judge, or None."""
  if stats['motion'] >= MOTION_FLOOR:
    return None
  return (
    f'no motion: the flow between onset and apex is none, or the same everywhere (largest '
    f"motion apart from the whole image's {stats['motion']:.3f}, below the floor {MOTION_FLOOR}; "
    'the quietest real sample has 0.955): give an onset and an apex between which the face moves'
  )


def unlike(stats: dict[str, float], trained: dict | None) -> list[str]:
  """What lies outside the model's training range (`trained`: card['input_statistics'],
  widened by MARGIN): ['strain_spread 0.49 (training 0.07..0.33)', ...]."""
  out = []
  for name, (low, high) in (trained or {}).items():
    if name not in stats:
      continue
    width = high - low
    if not low - MARGIN * width <= stats[name] <= high + MARGIN * width:
      out.append(f'{name} {stats[name]:.3f} (training {low:.3f}..{high:.3f})')
  return out
