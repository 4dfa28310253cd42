"""hfa_jax.input_checks: what a model can judge. The statistics on made-up flows, and the
floor and margin as measured on the real flow images of ../shared/real (skipped, saying so,
where that folder is absent; nothing read there is written anywhere)."""

import os
import pathlib

import numpy as np
import pytest

from hfa_jax import input_checks as checks

ROOT = pathlib.Path(__file__).resolve().parents[1]
REAL = (
  pathlib.Path(os.environ.get('HFA_JAX_REAL', ROOT.parent / 'shared' / 'real'))
  / 'megc2019_flow_images_casme2_smic'
)


def _smooth(rng, side=32):
  """A smooth flow-like image (u, v, strain) in -1..1."""
  import cv2

  x = rng.normal(size=(side, side, 3)).astype(np.float32)
  x = cv2.GaussianBlur(x, (0, 0), 3)
  return x / np.abs(x).max()


def test_no_motion_and_uniform_motion_are_below_the_floor():
  rng = np.random.default_rng(0)
  still = np.zeros((1, 32, 32, 3), np.float32)
  uniform = np.concatenate([np.ones((1, 32, 32, 2)), np.zeros((1, 32, 32, 1))], -1)
  moving = _smooth(rng)[None]
  stats = checks.statistics(np.concatenate([still, uniform, moving]))
  assert stats['motion'][0] == 0 and stats['motion'][1] == 0 and stats['motion'][2] > 0.5
  assert checks.no_motion(checks.one(stats, 0)).startswith('no motion')
  assert checks.no_motion(checks.one(stats, 2)) is None


def test_unlike_uses_the_training_range_widened_by_the_margin():
  rng = np.random.default_rng(1)
  train = np.stack([_smooth(rng) for _ in range(20)])
  trained = checks.ranges(train)
  assert set(trained) == set(checks.VALUES)
  assert all(
    checks.unlike(checks.one(checks.statistics(train), i), trained) == [] for i in range(20)
  )
  noise = rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
  outside = checks.unlike(checks.one(checks.statistics(noise), 0), trained)
  assert any(o.startswith('u_smoothness ') for o in outside)
  low, high = trained['strain_spread']
  just = checks.one(checks.statistics(train), 0) | dict(strain_spread=high + 0.09 * (high - low))
  assert checks.unlike(just, trained) == []  # inside the margin
  just['strain_spread'] = high + 0.11 * (high - low)
  assert checks.unlike(just, trained)[0].startswith('strain_spread ')
  assert checks.unlike(just, None) == []  # a card without statistics checks nothing


@pytest.mark.skipif(not REAL.is_dir(), reason=f'the real flow images are not here ({REAL})')
def test_the_floor_and_margin_as_measured_on_the_real_flow_images():
  """The quietest real sample's motion is 0.955 (the floor is half of it); with the ranges of
  the others, at most 3 of the 309 fall outside them; noise and a photograph do."""
  import cv2
  import matplotlib

  from hfa_jax import preprocess
  from hfa_jax.model_input import flow_images_signed, resize

  def model_input(rgb):
    return resize(flow_images_signed(preprocess.png_flow(rgb, 28))[None], 32)[0]

  pngs = sorted(REAL.rglob('*.png'))
  assert len(pngs) == 309
  images = np.stack([model_input(preprocess.read_flow_png(p)) for p in pngs])
  stats = checks.statistics(images)
  assert round(float(stats['motion'].min()), 3) == 0.955
  assert checks.MOTION_FLOOR == pytest.approx(stats['motion'].min() / 2, abs=0.005)
  table = np.stack([stats[k] for k in checks.VALUES], 1)
  outside = 0
  for i in range(len(table)):
    others = np.delete(table, i, 0)
    low, high = others.min(0), others.max(0)
    margin = checks.MARGIN * (high - low)
    outside += bool(((table[i] < low - margin) | (table[i] > high + margin)).any())
  assert outside == 3
  trained = checks.ranges(images)
  noise = np.random.default_rng(0).integers(0, 256, (28, 28, 3)).astype(np.uint8)
  photo = cv2.imread(
    str(pathlib.Path(matplotlib.get_data_path()) / 'sample_data' / 'grace_hopper.jpg')
  )
  side = min(photo.shape[:2])
  photo = np.ascontiguousarray(photo[:side, :side, ::-1])
  for name, rgb in (('noise', noise), ('photograph', photo)):
    seen = checks.statistics(model_input(rgb)[None])
    assert checks.unlike(checks.one(seen, 0), trained), name
