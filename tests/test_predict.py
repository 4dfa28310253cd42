"""hfa_jax.predict and `python -m experiments.predict`: a model given a user's clip sees exactly
what its dataset gave it in training (synthetic databases built with the real builders, a
random TinyNet saved as a model folder), and bad inputs are named without stopping the rest."""

import json
import pathlib
import shutil

import cv2
import jax
import numpy as np
import pytest

from datasets import synthetic
from datasets.card import face_crops, preprocessing_card
from datasets.load import load_arrays, training_data
from experiments import predict as command
from hfa_jax import load_model, predict, preprocess, preprocessing_spec, save_model
from tests import me_layouts as L
from tests.builds import run_build
from tests.tiny import TinyNet

STORED, SIDE = 24, 32  # the datasets' stored side and the model's: predict resizes as training


def _model_folder(folder, pre, class_names=('negative', 'positive', 'surprise')) -> pathlib.Path:
  """A TinyNet with random weights saved with save_model, its card's preprocessing `pre`."""
  predict.options(pre)  # a preprocessing predict can follow
  net = TinyNet(num_classes=len(class_names))
  variables = jax.jit(net.init)(jax.random.key(1), np.zeros((1, SIDE, SIDE, 3), np.float32))
  card = dict(
    model='tests.tiny:TinyNet',
    num_classes=len(class_names),
    class_names=list(class_names),
    input=dict(side=SIDE),
    preprocessing=pre,
  )
  return save_model(folder, variables, card)


@pytest.fixture(scope='module')
def frames(tmp_path_factory):
  """Synthetic SMIC and CASME II (1 subject each, raw copies: faces detected) built at STORED
  px, and a model folder for each."""
  root = tmp_path_factory.mktemp('predict_frames')
  data_dir = root / 'tfds'
  out = {}
  for database in ('smic', 'casme2'):
    manual = synthetic.generate(database, root / 'manual', subjects=1, seed=0)
    assert run_build(database, manual, data_dir, size=STORED) == 0
    pre = preprocessing_card(database, f'size_{STORED}', STORED, SIDE, data_dir)
    out[database] = dict(manual=manual, model=_model_folder(root / f'model_{database}', pre))
  return data_dir, out


def _clip_folders(manual: pathlib.Path) -> dict[str, pathlib.Path]:
  """sample name -> its frame folder in a synthetic SMIC or CASME II copy."""
  return {
    p.name: p
    for p in manual.rglob('*')
    if p.is_dir() and any(preprocess.is_frame_file(c) for c in p.iterdir())
  }


def _check_same(model_dir, texts, expected, workers=1):
  """predict's model inputs and logits for `texts` equal `expected` and its logits."""
  model, variables, card = load_model(model_dir)
  batch = predict.model_inputs(texts, card['preprocessing'], workers=workers)
  assert batch.failed == [] and batch.inputs == list(texts)
  assert batch.images.shape == expected.shape == (len(texts), SIDE, SIDE, 3)
  np.testing.assert_allclose(batch.images, expected, rtol=0, atol=1e-6)
  want = np.asarray(model.apply(variables, expected, train=False))
  np.testing.assert_allclose(predict.logits(model, variables, batch.images), want, atol=1e-5)
  return batch


def test_frames_card(frames):
  data_dir, out = frames
  model, _, card = load_model(out['smic']['model'])
  pre = card['preprocessing']
  assert pre['kind'] == 'frames' and pre['stored_side'] == STORED and pre['side'] == SIDE
  assert pre['dataset_config'] == f'size_{STORED}' and pre['apex'] == 'middle'
  assert pre['face_crop'] is True and pre['face_crop_by_database'] == {'smic': True}
  assert pre['flow'] == preprocessing_spec.flow_settings() | dict(size=STORED)
  assert 'face detected' in pre['description'] and f'{SIDE} px' in pre['description']


def test_clip_folders_and_pairs_are_what_training_saw(frames):
  """SMIC (no apex annotation): each clip folder, and its onset with the apex the build
  picked as a pair, give the dataset's own arrays as training_data reads them."""
  data_dir, out = frames
  data = training_data('smic', data_dir, SIDE, config=f'size_{STORED}')
  stored = load_arrays('smic', data_dir, config=f'size_{STORED}')
  assert list(stored['sample']) == list(data.samples)
  folders = _clip_folders(out['smic']['manual'])
  texts = [str(folders[s]) for s in data.samples]
  batch = _check_same(out['smic']['model'], texts, data.images)
  pairs = []
  for sample, apex, given in zip(data.samples, stored['apex_frame'], batch.apex):
    clip = preprocess.list_frames(folders[sample])
    assert pathlib.Path(given) == preprocess.find_frame(clip, int(apex))
    pairs.append(f'{clip[0].path},{given}')
  _check_same(out['smic']['model'], pairs, data.images, workers=2)  # in worker processes


def test_annotated_pairs_are_what_training_saw(frames):
  """CASME II: the annotated onset and apex files of each sample as ONSET,APEX."""
  data_dir, out = frames
  data = training_data('casme2', data_dir, SIDE, config=f'size_{STORED}')
  stored = load_arrays('casme2', data_dir, config=f'size_{STORED}')
  keep = stored['composite_label'] >= 0  # training_data keeps the composite's classes
  folders = _clip_folders(out['casme2']['manual'])
  texts = []
  for sample, onset, apex in zip(
    *(stored[k][keep] for k in ('sample', 'onset_frame', 'apex_frame'))
  ):
    clip = preprocess.list_frames(folders[sample])
    texts.append(f'{preprocess.find_frame(clip, onset)},{preprocess.find_frame(clip, apex)}')
  _check_same(out['casme2']['model'], texts, data.images)


def test_video_is_read_as_its_frames(frames, tmp_path):
  """A video (MJPG .avi) is predicted as the folder of its decoded frames."""
  _, out = frames
  folder = sorted(_clip_folders(out['smic']['manual']).values())[0]
  clip = preprocess.list_frames(folder)
  first = cv2.imread(str(clip[0].path))
  video = tmp_path / 'clip.avi'
  writer = cv2.VideoWriter(
    str(video), cv2.VideoWriter_fourcc(*'MJPG'), 25, (first.shape[1], first.shape[0])
  )
  for frame in clip:
    writer.write(cv2.imread(str(frame.path)))
  writer.release()
  decoded = tmp_path / 'decoded'
  decoded.mkdir()
  capture = cv2.VideoCapture(str(video))
  for i in range(len(clip)):
    ok, image = capture.read()
    assert ok
    cv2.imwrite(str(decoded / f'{i:06d}.png'), image)
  capture.release()
  model, _, card = load_model(out['smic']['model'])
  batch = predict.model_inputs([str(video), str(decoded)], card['preprocessing'])
  assert batch.failed == []
  np.testing.assert_array_equal(batch.images[0], batch.images[1])
  assert batch.apex[0] == f'frame {(len(clip) - 1) // 2} of {len(clip)}'


@pytest.fixture(scope='module')
def flow_images(tmp_path_factory):
  """A megc2019_flow_images dataset built (28 px) from a CSV and three PNGs, and its model."""
  root = tmp_path_factory.mktemp('predict_flow_images')
  manual = L.flow_images(
    root / 'manual',
    [
      ('casme2', 'sub01', 'EP02_01f', 1, 50),
      ('samm', '006', '006_1_2', 0, 103),
      ('smic', 's01', 's01_ne_01', 2, ''),
    ],
  )
  data_dir = root / 'tfds'
  assert run_build('megc2019_flow_images', manual, data_dir) == 0
  pre = preprocessing_card('megc2019_flow_images', None, 28, SIDE, data_dir)
  return manual, data_dir, _model_folder(root / 'model', pre)


def test_flow_image_pngs_are_what_training_saw(flow_images):
  manual, data_dir, model_dir = flow_images
  data = training_data('megc2019_flow_images', data_dir, SIDE)
  assert data.stored_size == 28
  pngs = {p.name.split('_', 1)[1].removesuffix(' .png'): p for p in manual.rglob('*.png')}
  texts = [str(pngs['s01_ne_01' if s == 's1_ne_01' else s]) for s in data.samples]
  batch = _check_same(model_dir, texts, data.images)
  assert batch.notes == [] and batch.apex == [None] * 3
  pre = load_model(model_dir)[2]['preprocessing']
  assert pre['kind'] == 'flow_images' and pre['stored_side'] == 28 and pre['side'] == SIDE


def test_frames_given_to_a_flow_image_model_say_so(flow_images, frames):
  """From frames, a flow-image model gets this project's flow in the STSTNet format (-1..1
  after the loader's mapping), and a note that its preprocessing differs."""
  _, _, model_dir = flow_images
  folder = sorted(_clip_folders(frames[1]['smic']['manual']).values())[0]
  pre = load_model(model_dir)[2]['preprocessing']
  batch = predict.model_inputs([str(folder)], pre)
  assert batch.failed == [] and batch.images.shape == (1, SIDE, SIDE, 3)
  assert batch.images.min() == pytest.approx(-1, abs=0.05) and batch.images.max() <= 1
  assert any('differs from the training data' in n for n in batch.notes)


def test_bad_inputs_are_named_and_the_rest_predicted(flow_images, frames, tmp_path, capsys):
  manual, _, model_dir = flow_images
  good = str(next(manual.rglob('*.png')))
  broken = tmp_path / 'broken.jpg'
  broken.write_bytes(b'not an image')
  one = tmp_path / 'one_frame'
  one.mkdir()
  cv2.imwrite(str(one / 'img1.jpg'), L.texture(1, 64))
  gray = tmp_path / 'gray.png'
  cv2.imwrite(str(gray), L.texture(2, 28))
  wide = tmp_path / 'wide.png'
  cv2.imwrite(str(wide), np.dstack([L.texture(s, 28)[:, :20] for s in (3, 4, 5)]))
  out = tmp_path / 'predictions.json'
  texts = [f'{broken},{broken}', str(one), str(gray), str(wide), good, str(tmp_path / 'nothing')]
  code = command.main(['--model', str(model_dir), *texts, '--out', str(out)])
  assert code == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 5 and all(line.startswith('cannot predict ') for line in err)
  assert f'cannot read image {broken}' in err[0] and 'original archive' not in err[0]
  assert str(one) in err[1] and 'at least 2' in err[1]
  assert str(gray) in err[2] and 'grayscale' in err[2]
  assert str(wide) in err[3] and '20x28' in err[3]
  assert 'no such file or folder' in err[4]
  written = json.loads(out.read_text())
  assert [p['input'] for p in written['predictions']] == [good]
  assert 'its card does not say what it was trained on' in written['notes'][0]  # as printed
  probs = written['predictions'][0]['probabilities']
  assert list(probs) == written['class_names'] and abs(sum(probs.values()) - 1) < 1e-5
  assert len(written['failed']) == 5


def _moved(image: np.ndarray) -> np.ndarray:
  """`image` with its middle half moved 2 px to the right (local motion)."""
  out = image.copy()
  q = image.shape[0] // 4
  out[q : 3 * q, q : 3 * q] = np.roll(image[q : 3 * q, q : 3 * q], 2, axis=1)
  return out


def test_frames_model_refuses_a_flow_image_and_a_faceless_clip(frames, flow_images, tmp_path):
  _, out = frames
  pre = load_model(out['smic']['model'])[2]['preprocessing']
  png = str(next(flow_images[0].rglob('*.png')))
  onset, apex = tmp_path / 'img1.jpg', tmp_path / 'img2.jpg'
  cv2.imwrite(str(onset), L.texture(6, 64))
  cv2.imwrite(str(apex), _moved(L.texture(6, 64)))
  batch = predict.model_inputs([png, f'{onset},{apex}'], pre)
  assert batch.inputs == []
  (_, flow_reason), (_, face_reason) = batch.failed
  assert 'trained on flows this project computes from frames' in flow_reason
  assert f'no face found in {onset}' in face_reason and '--face_crop no' in face_reason
  whole = predict.model_inputs([f'{onset},{apex}'], pre, no_face='full_frame')
  assert whole.inputs == [f'{onset},{apex}'] and whole.failed == []
  assert whole.flags == [('whole frame: no face found',)]  # predicted, and flagged
  back = predict.model_inputs([f'{apex},{onset}'], pre, no_face='full_frame')  # apex first
  assert back.flags == [
    ('whole frame: no face found', 'apex frame 1 before onset frame 2: ONSET,APEX reversed?')
  ]


def test_csv_output_and_table(frames, tmp_path, capsys):
  _, out = frames
  folder = sorted(_clip_folders(out['smic']['manual']).values())[0]
  csv_path = tmp_path / 'p.csv'
  assert (
    command.main(['--model', str(out['smic']['model']), str(folder), '--out', str(csv_path)]) == 0
  )
  printed = capsys.readouterr().out
  assert 'input' in printed and 'negative' in printed and str(folder) in printed
  header, row = csv_path.read_text().strip().splitlines()
  assert header == 'input,predicted,negative,positive,surprise,apex,flags,notes,error'
  assert row.startswith(f'{folder},')
  # what was printed above the table goes with every row (here: what the card does not say)
  first = printed.splitlines()[0]
  assert 'its card does not say what it was trained on' in first and first in row


def test_not_a_model_folder_is_a_usage_error(tmp_path, capsys, frames):
  assert command.main(['--model', str(tmp_path), 'a.jpg,b.jpg']) == 2
  err = capsys.readouterr().err
  assert f'{tmp_path} is not a model folder' in err and 'model.json' in err
  card = json.loads((frames[1]['smic']['model'] / 'model.json').read_text())
  del card['preprocessing']
  folder = tmp_path / 'no_preprocessing'
  folder.mkdir()
  (folder / 'model.json').write_text(json.dumps(card))
  assert command.main(['--model', str(folder), 'a.jpg,b.jpg']) == 2
  assert "no 'preprocessing'" in capsys.readouterr().err
  with pytest.raises(SystemExit) as usage:
    command.main(['--model', str(folder)])
  assert usage.value.code == 2


def test_a_card_that_contradicts_itself_or_its_weights_is_refused(frames, tmp_path, capsys):
  """Class names that are not the outputs, a preprocessing side that is not the input's, and
  weights of another number of classes: one line each, exit 2, nothing predicted."""
  model = frames[1]['smic']['model']
  good = sorted(_clip_folders(frames[1]['smic']['manual']).values())[0]
  card = json.loads((model / 'model.json').read_text())
  cases = {
    'names': (card | dict(class_names=['negative', 'positive']), 'names 2 classes'),
    'side': (
      card | dict(preprocessing=card['preprocessing'] | dict(side=64)),
      'takes 32 px inputs but preprocesses them to 64 px',
    ),
    'outputs': (
      card | dict(num_classes=4, class_names=[*card['class_names'], 'other']),
      'do not fit its card',
    ),
  }
  for name, (changed, said) in cases.items():
    folder = tmp_path / name
    shutil.copytree(model, folder)
    (folder / 'model.json').write_text(json.dumps(changed))
    assert command.main(['--model', str(folder), str(good)]) == 2, name
    err = capsys.readouterr().err
    assert err.startswith('error: ') and said in err, (name, err)


def test_face_crops_read_from_the_build_source():
  source = (
    'casme2: /d/CASME2 (cropped), annotations /d/a.xlsx; samm: /d/SAMM (raw: face detected '
    'and cropped), annotations /d/b.xlsx; smic: /d/SMIC (cropped), apex: middle'
  )
  assert face_crops('megc2019', source) == {'casme2': False, 'samm': True, 'smic': False}
  assert face_crops('samm', '/d/SAMM (cropped), annotations x') == {'samm': False}
  with pytest.raises(ValueError, match='rebuild'):
    face_crops('megc2019', '/d/SAMM (cropped)')
  pre = preprocessing_spec.preprocessing(
    'frames',
    dataset='megc2019',
    config='size_64',
    stored_side=64,
    side=64,
    face_crop_by_database=face_crops('megc2019', source),
  )
  assert pre['face_crop'] is True and 'cropped releases of casme2, smic' in pre['description']


def test_benchmark_smoke(frames, capsys):
  _, out = frames
  assert command.main(['--model', str(out['smic']['model']), '--benchmark', '1']) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert lines[0].startswith('clips from frames: ') and lines[1].startswith('flow images: ')


# ------------------------------------------------ what the model cannot judge (input_checks)


@pytest.fixture(scope='module')
def synthetic_flow_model(tmp_path_factory):
  """A flow-image model whose card records its training images' statistics and that they
  are synthetic: megc2019_flow_images built from datasets.synthetic's PNGs (1 subject each)."""
  from hfa_jax import input_checks

  root = tmp_path_factory.mktemp('predict_checks')
  manual = synthetic.generate('flow_images', root / 'manual', subjects=1, seed=0)
  data_dir = root / 'tfds'
  assert run_build('megc2019_flow_images', manual, data_dir) == 0
  data = training_data('megc2019_flow_images', data_dir, SIDE)
  pre = preprocessing_card('megc2019_flow_images', None, 28, SIDE, data_dir)
  folder = _model_folder(root / 'model', pre)
  card = json.loads((folder / 'model.json').read_text())
  card |= dict(
    input_statistics=input_checks.ranges(data.images),
    training_data=dict(dataset='megc2019_flow_images', synthetic=True, samples=9, subjects=3),
  )
  (folder / 'model.json').write_text(json.dumps(card))
  return manual, folder


def _png(path, rgb: np.ndarray) -> str:
  cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
  return str(path)


def _photograph(side: int) -> np.ndarray:
  """A photograph (matplotlib's sample of Grace Hopper), square, `side` px, RGB."""
  import matplotlib

  path = pathlib.Path(matplotlib.get_data_path()) / 'sample_data' / 'grace_hopper.jpg'
  image = cv2.imread(str(path))[..., ::-1]
  square = min(image.shape[:2])
  return cv2.resize(np.ascontiguousarray(image[:square, :square]), (side, side))


def test_flow_images_unlike_the_training_data_are_refused(synthetic_flow_model, tmp_path, capsys):
  """Noise and a photograph are not flow images: refused by side (another side than the
  model's 28 px), and, at 28 px or with --any_side, by their statistics; a training image
  passes; --unlike_training predicts them, flagged."""
  manual, model_dir = synthetic_flow_model
  good = str(sorted(manual.rglob('*.png'))[0])
  rng = np.random.default_rng(0)
  noise28 = _png(tmp_path / 'noise28.png', rng.integers(0, 256, (28, 28, 3)).astype(np.uint8))
  noise64 = _png(tmp_path / 'noise64.png', rng.integers(0, 256, (64, 64, 3)).astype(np.uint8))
  photo = _png(tmp_path / 'photo.png', _photograph(512))
  photo28 = _png(tmp_path / 'photo28.png', _photograph(28))
  blank = _png(
    tmp_path / 'blank.png', np.dstack([np.full((28, 28), v, np.uint8) for v in (0, 9, 0)])
  )
  args = ['--model', str(model_dir), good, noise28, noise64, photo, photo28, blank]
  assert command.main(args) == 1
  captured = capsys.readouterr()
  out, err = captured.out, dict(line.split(': ', 1) for line in captured.err.splitlines())
  assert out.startswith('SYNTHETIC: drawn faces, not a recogniser. model: ')
  assert out.count('not a recogniser') == 1 and good in out and 'flags' not in out
  assert 'unlike every training image' in err[f'cannot predict {noise28}']
  assert 'smoothness' in err[f'cannot predict {noise28}']
  for big in (noise64, photo):
    assert 'trained on 28x28 STSTNet-format flow images' in err[f'cannot predict {big}']
    assert '--any_side' in err[f'cannot predict {big}']
  assert 'unlike every training image' in err[f'cannot predict {photo28}']
  assert err[f'cannot predict {blank}'].startswith('no motion')
  assert len(err) == 5
  assert command.main([*args, '--any_side']) == 1
  err = capsys.readouterr().err
  assert err.count('unlike every training image') == 4 and err.count('no motion') == 1
  assert (
    command.main([*args, '--any_side', '--unlike_training', '--out', str(tmp_path / 'p.csv')]) == 1
  )
  out = capsys.readouterr().out
  rows = {r.split(',')[0]: r for r in (tmp_path / 'p.csv').read_text().splitlines()[1:]}
  assert set(rows) == {good, noise28, noise64, photo, photo28, blank}
  assert 'unlike every training image' in rows[photo] and 'unlike' not in rows[good]
  assert 'no motion' in rows[blank] and 'flags' in out
  assert 'resized from 64 px (--any_side; trained on 28 px)' in rows[noise64]
  assert 'resized from 512 px' in rows[photo] and 'resized' not in rows[good] + rows[noise28]


def test_clips_without_motion_are_refused(frames, tmp_path, capsys):
  """A 2-frame clip (its 'middle' apex is its onset), an ONSET,ONSET pair and two copies of
  one picture have no motion to judge; noise frames used whole (no face) are flagged."""
  _, out = frames
  model = str(out['smic']['model'])
  two = tmp_path / 'two'
  L.write_clip(two, [1, 2], apex=2)
  onset = tmp_path / 'img1.jpg'
  cv2.imwrite(str(onset), L.texture(6, 64))
  copy = tmp_path / 'img2.jpg'
  copy.write_bytes(onset.read_bytes())
  rng = np.random.default_rng(1)
  noise = []
  for i in range(2):
    noise.append(tmp_path / f'noise{i}.png')
    cv2.imwrite(str(noise[-1]), rng.integers(0, 256, (64, 64, 3)).astype(np.uint8))
  inputs = [str(two), f'{onset},{onset}', f'{onset},{copy}', f'{noise[0]},{noise[1]}']
  assert command.main(['--model', model, *inputs, '--no_face', 'full_frame']) == 1
  captured = capsys.readouterr()
  err = captured.err.splitlines()
  assert len(err) == 3 and all('no motion' in line for line in err)
  assert "the apex is the onset frame itself (the 'middle' apex of a 2-frame clip)" in err[0]
  assert 'the apex is the onset frame itself;' in err[1]
  assert 'below the floor' in err[2]
  head, row = [
    line for line in captured.out.splitlines() if line.startswith(('input', str(noise[0])))
  ]
  assert head.split()[-1] == 'flags' and row.endswith('whole frame: no face found')


def test_the_training_data_is_named_once_at_the_top(frames, capsys):
  _, out = frames
  folder = sorted(_clip_folders(out['smic']['manual']).values())[0]
  assert command.main(['--model', str(out['smic']['model']), str(folder)]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == 'model tests.tiny:TinyNet: its card does not say what it was trained on'
  assert 'records no statistics of the training images' in lines[1]


def _children(pid: int) -> set[int]:
  """The processes `pid` started (Linux /proc)."""
  out = set()
  for task in pathlib.Path(f'/proc/{pid}/task').glob('*'):
    try:
      out |= {int(c) for c in (task / 'children').read_text().split()}
    except OSError:
      pass
  return out


def _alive(pid: int) -> bool:
  try:
    status = pathlib.Path(f'/proc/{pid}/status').read_text()
  except OSError:
    return False
  return 'State:\tZ' not in status


@pytest.mark.skipif(not pathlib.Path('/proc/self/task').is_dir(), reason='needs Linux /proc')
@pytest.mark.parametrize(
  'signum, code, said', [(15, 143, 'stopped by SIGTERM'), (2, 130, 'stopped;')]
)
def test_a_stopped_predict_ends_its_workers(signum, code, said, frames, tmp_path):
  """SIGTERM (to the command) or Ctrl-C (to the terminal's process group) while the flow
  workers compute: one line, exit 143 / 130, and no worker left running."""
  import os
  import signal
  import subprocess
  import sys
  import time

  from hfa_jax.preprocess import benchmark as flow_benchmark

  _, out = frames
  pairs = flow_benchmark.make_pairs(tmp_path, 240)  # far more than it can finish before the signal
  root = pathlib.Path(__file__).resolve().parents[1]
  # The command starts with SIGINT handled, as from a terminal: a test run started in the
  # background of a script (`cmd &`) ignores SIGINT, and its children would inherit that.
  before = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    proc = subprocess.Popen(
      [sys.executable, '-m', 'experiments.predict', '--model', str(out['smic']['model'])]
      + [f'{a},{b}' for a, b in pairs]
      + ['--workers', '2', '--no_face', 'full_frame'],
      cwd=root,
      env=dict(os.environ, PYTHONPATH=str(root)),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      start_new_session=True,
    )
  finally:
    signal.signal(signal.SIGINT, before)
  deadline = time.monotonic() + 120
  workers = set()
  while time.monotonic() < deadline and len(workers) < 2:
    time.sleep(0.2)
    workers = {c for c in _children(proc.pid) if 'spawn_main' in _cmdline(c)}
  assert len(workers) >= 2, 'no flow workers started'
  if signum == signal.SIGINT:
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
  else:
    proc.send_signal(signum)
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == code, err[-2000:]
  said_lines = [line for line in err.splitlines() if line.strip() and 'input/s' not in line]
  assert len(said_lines) == 1 and said in said_lines[0], err[-2000:]  # the bar aside
  time.sleep(1)
  assert not [w for w in workers if _alive(w)]


def _cmdline(pid: int) -> str:
  try:
    return pathlib.Path(f'/proc/{pid}/cmdline').read_text().replace('\0', ' ')
  except OSError:
    return ''


def test_a_video_opencv_cannot_read_says_what_to_give(frames, tmp_path, capsys):
  _, out = frames
  video = tmp_path / 'broken.avi'
  video.write_bytes(b'RIFF\x00\x00\x00\x00AVI not really a video')
  assert command.main(['--model', str(out['smic']['model']), str(video)]) == 1
  err = capsys.readouterr().err
  assert 'OpenCV decodes no frame of it' in err and 'give its frames as a folder' in err
  assert 'convert it to' not in err
