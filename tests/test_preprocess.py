"""Tests of hfa_jax.preprocess: frame listing, reading, apex, face crop, TV-L1 flow, strain."""

import pickle

import cv2
import numpy as np
import pytest

from hfa_jax import preprocess as P


def textured(height=128, width=128, seed=0, margin=16):
  """A smooth random texture (uint8) and the larger float canvas it was cut from."""
  rng = np.random.default_rng(seed)
  canvas = cv2.GaussianBlur(
    rng.random((height + 2 * margin, width + 2 * margin), np.float32), (0, 0), 2.0
  )
  canvas = cv2.normalize(canvas, None, 0, 255, cv2.NORM_MINMAX)
  return canvas


def shifted_pair(dx, dy, side=128, margin=16):
  """Onset and apex (uint8 side x side) where the content moves by (dx, dy) pixels."""
  canvas = textured(side, side, margin=margin)
  matrix = np.float32([[1, 0, dx], [0, 1, dy]])
  moved = cv2.warpAffine(
    canvas, matrix, canvas.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
  )
  cut = (slice(margin, margin + side),) * 2
  return canvas[cut].astype(np.uint8), np.clip(moved[cut], 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ frames
@pytest.mark.parametrize(
  'name, number',
  [
    ('img46.jpg', 46),
    ('reg_img46.jpg', 46),
    ('006_05562.jpg', 5562),
    ('image012345.bmp', 12345),
    ('img100.JPG', 100),
    ('Thumbs.db', None),
  ],
)
def test_frame_number(name, number):
  assert P.frame_number(name) == number


def test_list_frames_numeric_order_ignores_strays(tmp_path):
  image = np.zeros((16, 16), np.uint8)
  for n in (9, 100, 10, 99, 101):
    cv2.imwrite(str(tmp_path / f'img{n}.jpg'), image)
  for stray in ('Thumbs.db', '.DS_Store', '._img5.jpg', 'notes.txt', 'desktop.ini'):
    (tmp_path / stray).write_bytes(b'junk')
  (tmp_path / 'sub').mkdir()
  frames = P.list_frames(tmp_path)
  assert [f.number for f in frames] == [9, 10, 99, 100, 101]
  assert [f.path.name for f in frames] == [
    'img9.jpg',
    'img10.jpg',
    'img99.jpg',
    'img100.jpg',
    'img101.jpg',
  ]
  assert P.find_frame(frames, 99) == tmp_path / 'img99.jpg'
  with pytest.raises(P.PreprocessError, match=r'frame 55 is missing in .*9\.\.101'):
    P.find_frame(frames, 55, clip=tmp_path)


@pytest.mark.parametrize(
  'names',
  [
    ['006_05562.jpg', '006_05563.jpg', '006_5564.jpg'],
    ['image012345.bmp', 'image012346.bmp', 'image012347.bmp'],
    ['reg_img46.jpg', 'reg_img47.jpg', 'reg_img48.jpg'],
  ],
)
def test_list_frames_other_schemes(tmp_path, names):
  for name in reversed(names):
    cv2.imwrite(str(tmp_path / name), np.zeros((16, 16), np.uint8))
  assert [f.path.name for f in P.list_frames(tmp_path)] == names


def test_list_frames_errors(tmp_path):
  with pytest.raises(P.PreprocessError, match='does not exist'):
    P.list_frames(tmp_path / 'missing')
  (tmp_path / 'Thumbs.db').write_bytes(b'junk')
  with pytest.raises(P.PreprocessError, match='Thumbs.db is a file, not a folder'):
    P.list_frames(tmp_path / 'Thumbs.db')
  with pytest.raises(P.PreprocessError, match='holds no image frames'):
    P.list_frames(tmp_path)
  for name in ('img4.jpg', 'img4.png'):
    cv2.imwrite(str(tmp_path / name), np.zeros((16, 16), np.uint8))
  with pytest.raises(P.PreprocessError, match='both hold frame 4'):
    P.list_frames(tmp_path)


def test_read_gray(tmp_path):
  colour = np.zeros((20, 30, 3), np.uint8)
  colour[..., 2] = 200
  cv2.imwrite(str(tmp_path / 'img1.png'), colour)
  gray = P.read_gray(tmp_path / 'img1.png')
  assert gray.shape == (20, 30) and gray.dtype == np.uint8
  (tmp_path / 'img2.jpg').write_bytes(b'\xff\xd8 truncated jpeg')
  with pytest.raises(P.PreprocessError, match=r'img2\.jpg'):
    P.read_gray(tmp_path / 'img2.jpg')
  (tmp_path / 'img3.jpg').write_bytes(b'')
  with pytest.raises(P.PreprocessError, match=r'img3\.jpg'):
    P.read_gray(tmp_path / 'img3.jpg')
  with pytest.raises(P.PreprocessError, match=r'img4\.jpg does not exist'):
    P.read_gray(tmp_path / 'img4.jpg')


# ------------------------------------------------------------------------------ apex
def test_pick_apex():
  onset, _ = shifted_pair(0, 0)
  frames = [onset.copy() for _ in range(7)]
  frames[4] = shifted_pair(1.5, 0)[1]
  frames[3] = shifted_pair(0.7, 0)[1]
  assert P.pick_apex(frames, 'middle') == 3
  assert P.pick_apex(frames[:6], 'middle') == 2
  assert P.pick_apex(frames, 'max_motion') == 4
  assert P.pick_apex([onset, onset], 'max_motion') == 1  # never the onset itself
  with pytest.raises(ValueError, match='unknown apex strategy'):
    P.pick_apex(frames, 'peak')
  with pytest.raises(P.PreprocessError, match='at least 2 frames'):
    P.pick_apex(frames[:1])


# ------------------------------------------------------------------------------ flow
@pytest.mark.parametrize('dx, dy', [(2.0, -1.0), (-1.5, 0.5)])
def test_flow_of_a_known_shift(dx, dy):
  onset, apex = shifted_pair(dx, dy)
  flow = P.tvl1_flow(onset, apex)
  inner = flow[16:-16, 16:-16]
  assert flow.shape == (128, 128, 2) and flow.dtype == np.float32
  np.testing.assert_allclose(inner.mean((0, 1)), [dx, dy], atol=0.1)
  assert np.abs(inner - [dx, dy]).mean() < 0.25
  # a pure translation has no strain
  assert P.optical_strain(flow)[16:-16, 16:-16].mean() < 0.03


def test_no_motion_gives_zero_flow_and_strain():
  onset, _ = shifted_pair(0, 0)
  flow = P.tvl1_flow(onset, onset.copy())
  assert np.abs(flow).max() < 0.05
  assert P.optical_strain(flow).max() < 0.05
  image = P.flow_image(onset, onset.copy(), size=32)
  assert image.shape == (32, 32, 3) and np.abs(image).max() < 0.05


def test_optical_strain_formula():
  yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
  stretch = np.dstack([0.1 * xx, np.zeros_like(xx)])  # ux = 0.1
  shear = np.dstack([0.05 * yy, 0.05 * xx])  # uy = vx = 0.05
  np.testing.assert_allclose(P.optical_strain(stretch), 0.1, atol=1e-6)
  np.testing.assert_allclose(P.optical_strain(shear), np.sqrt(0.5) * 0.1, atol=1e-6)


def test_flow_image_shape_range_and_inputs():
  onset, apex = shifted_pair(1.0, 0.5, side=160)
  image = P.flow_image(onset, apex, size=64, work_side=96)
  assert image.shape == (64, 64, 3) and image.dtype == np.float32
  assert np.sqrt((image[..., :2] ** 2).sum(-1)).max() == pytest.approx(1.0, abs=1e-5)
  assert image[..., 2].min() >= 0 and image[..., 2].max() == pytest.approx(1.0, abs=1e-5)
  u, v = image[..., 0].mean(), image[..., 1].mean()
  assert u > 0.2 and v > 0.1 and u == pytest.approx(2 * v, rel=0.25)  # direction kept
  bgr = P.flow_image(np.dstack([onset] * 3), np.dstack([apex] * 3), size=64, work_side=96)
  np.testing.assert_allclose(bgr, image, atol=1e-5)
  cropped = P.flow_image(onset, apex, size=28, face_box=(20, 10, 100, 120), work_side=64)
  assert cropped.shape == (28, 28, 3)
  with pytest.raises(P.PreprocessError, match='differ in size'):
    P.flow_image(onset, apex[:100], size=28)
  with pytest.raises(P.PreprocessError, match='uint8'):
    P.flow_image(onset.astype(np.float32), apex, size=28)
  with pytest.raises(P.PreprocessError, match='does not fit'):
    P.flow_image(onset, apex, size=28, face_box=(100, 100, 100, 100))


def test_flow_for_clip_from_files(tmp_path):
  onset, apex = shifted_pair(1.0, 0.0)
  paths = []
  for number, image in zip(range(46, 51), [onset, onset, apex, onset, onset]):
    paths.append(tmp_path / f'img{number}.jpg')
    cv2.imwrite(str(paths[-1]), image, [cv2.IMWRITE_JPEG_QUALITY, 98])
  assert pickle.loads(pickle.dumps(P.flow_for_clip)) is P.flow_for_clip
  result = P.flow_for_clip(paths[0], paths[2], size=28, work_side=64, sample='casme2/sub01/EP1')
  assert result['flow'].shape == (28, 28, 3) and result['face_found'] is None
  assert result['flow'][..., 0].mean() > 0.25 > abs(result['flow'][..., 1].mean())
  picked = P.flow_for_clip(
    paths[0],
    clip_frames=[f.path for f in P.list_frames(tmp_path)],
    apex_strategy='max_motion',
    size=28,
    work_side=64,
  )
  assert picked['apex_index'] == 2 and picked['apex_path'].endswith('img48.jpg')
  pickle.dumps(picked)
  no_face = P.flow_for_clip(paths[0], paths[2], size=28, work_side=64, face_crop=True)
  assert no_face['face_found'] is False and no_face['face_box'] is None
  with pytest.raises(P.PreprocessError, match=r'^smic/s1/s1_ne_01: no face found'):
    P.flow_for_clip(
      paths[0], paths[2], face_crop=True, on_no_face='error', sample='smic/s1/s1_ne_01'
    )
  (tmp_path / 'img51.jpg').write_bytes(b'broken')
  with pytest.raises(P.PreprocessError, match=r'^samm/006/006_1_2: cannot read image .*img51'):
    P.flow_for_clip(paths[0], tmp_path / 'img51.jpg', sample='samm/006/006_1_2')


def test_detect_face_box_none_and_crop():
  blank = np.full((120, 160), 128, np.uint8)
  assert P.detect_face_box(blank) is None
  assert P.crop(blank, None) is blank
  assert P.crop(blank, (10, 20, 30, 40)).shape == (40, 30)
