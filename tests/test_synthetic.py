"""Tests of datasets/synthetic.py: the real on-disk layouts, their quirks, and learnability."""

import csv
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # datasets/ runs from the repo root
from datasets import synthetic as S  # noqa: E402
from hfa_jax import preprocess as P  # noqa: E402


@pytest.fixture(scope='module')
def out(tmp_path_factory):
  root = tmp_path_factory.mktemp('synthetic')
  for database in ('casme2', 'samm', 'smic'):
    S.generate(database, root, subjects=3, seed=0)
  return root


def composite():
  return {(r['database'], r['subject'], r['sample']): r['label'] for r in S.composite_rows()}


def sheet_rows(path, header_row):
  ws = openpyxl.load_workbook(path, read_only=True).active
  rows = list(ws.iter_rows(values_only=True))
  return rows[: header_row - 1], list(rows[header_row - 1]), rows[header_row:]


def test_generate_returns_the_folders(tmp_path):
  assert S.generate('casme2', tmp_path, subjects=1) == tmp_path / 'casme2'
  assert (tmp_path / 'casme2' / S.CASME2_XLSX).is_file()
  with pytest.raises(ValueError, match='unknown database'):
    S.generate('casme3', tmp_path)


def test_casme2_layout_and_sheet(out):
  root = out / 'casme2' / 'CASME2_RAW_selected'
  assert sorted(p.name for p in root.iterdir()) == ['sub01', 'sub02', 'sub03']
  first = S.plan('casme2', 3)[0]
  clip = root / first.subject / first.name
  names = {p.name for p in clip.iterdir()}
  assert {'img99.jpg', 'img100.jpg', 'Thumbs.db'} <= names  # unpadded, stray file
  assert all(re.fullmatch(r'img[1-9]\d*\.jpg|Thumbs\.db', n) for n in names)
  assert (root / first.subject / '.DS_Store').is_file()
  assert cv2.imread(str(clip / 'img100.jpg'), cv2.IMREAD_UNCHANGED).shape == (128, 160, 3)

  pre, header, rows = sheet_rows(out / 'casme2' / S.CASME2_XLSX, 1)
  assert header == [
    'Subject',
    'Filename',
    None,
    'OnsetFrame',
    'ApexFrame',
    'OffsetFrame',
    None,
    'Action Units',
    'Estimated Emotion',
  ]
  assert {r[0] for r in rows} == {'01', '02', '03'}  # text cells, 2 digits
  assert [r[4] for r in rows].count('/') == 1
  assert any(isinstance(r[7], int) for r in rows)  # a numeric AU cell
  assert {r[8] for r in rows} >= {'happiness', 'surprise', 'others', 'fear', 'sadness'}
  known = composite()
  for subject, name, _, onset, apex, offset, _, _, emotion in rows:
    frames = {f.number for f in P.list_frames(root / f'sub{subject}' / name)}
    assert {onset, offset} <= frames and onset - 2 in frames and offset + 2 in frames
    assert apex == '/' or onset < apex < offset and apex in frames
    in_composite = ('casme2', f'sub{subject}', name) in known
    assert in_composite == (emotion in ('happiness', 'surprise', 'disgust', 'repression'))


def test_samm_layout_and_sheet(out):
  root = out / 'samm' / 'SAMM'
  assert sorted(p.name for p in root.iterdir()) == ['006', '007', '009']
  pre, header, rows = sheet_rows(out / 'samm' / S.SAMM_XLSX, 14)
  assert len(pre) == 13 and pre[0][0] and all(v is None for v in pre[2])
  assert all(cell != 'Subject' for row in pre for cell in row)
  assert header[:12] == [
    'Subject',
    'Filename',
    'Inducement Code',
    'Onset Frame',
    'Apex Frame',
    'Offset Frame',
    'Duration',
    'Micro',
    'Action Units',
    'Estimated Emotion',
    'Objective Classes',
    'Notes',
  ]
  subjects = [r[0] for r in rows]
  assert 6 in subjects and '006' in subjects  # numbers and text
  assert {r[9] for r in rows} >= {'Other', 'Others', 'Happiness', 'Surprise'}
  outside = [r for r in rows if not r[3] <= r[4] <= r[5]]
  assert len(outside) == 1 and ('samm', '009', outside[0][1]) not in composite()
  padding = set()
  for row in rows:
    subject, name = f'{int(row[0]):03d}', row[1]
    files = sorted(p.name for p in (root / subject / name).iterdir())
    assert all(re.fullmatch(rf'{subject}_\d{{4,5}}\.jpg', f) for f in files)
    padding |= {len(f.split('_')[1]) - 4 for f in files}
    frames = {f.number for f in P.list_frames(root / subject / name)}
    assert {row[3], row[4], row[5]} <= frames
  assert padding == {4, 5}
  image = cv2.imread(str(next(root.glob('006/*/*.jpg'))), cv2.IMREAD_UNCHANGED)
  assert image.ndim == 2  # grayscale JPEG


def test_smic_layout(out):
  hs = out / 'smic' / 'SMIC_all_raw' / 'HS'
  assert sorted(p.name for p in hs.iterdir()) == ['s1', 's2', 's3']
  assert not list((out / 'smic').rglob('*.xls*'))
  clips = sorted(hs.glob('s*/micro/*/*'))
  expected = {
    (S.smic_folder_id(s), S.smic_folder_id(n), label)
    for (db, s, n), label in composite().items()
    if db == 'smic' and s <= 's03'
  }
  assert {(c.parents[2].name, c.name, c.parent.name) for c in clips} == expected
  assert {c.parent.name for c in clips} == {'negative', 'positive', 'surprise'}
  for clip in clips:
    assert re.fullmatch(r's\d+_(ne|po|sur)_\d\d', clip.name)
    files = [p.name for p in clip.iterdir() if p.name != 'Thumbs.db']
    assert all(re.fullmatch(r'image\d{6}\.bmp', f) for f in files)
  assert list(hs.glob('s1/non_micro/*/*.bmp'))
  # the motion peaks in the middle frame, where the 'middle' strategy looks
  frames = P.list_frames(clips[0])
  assert P.pick_apex(frames, 'max_motion') == P.pick_apex(frames, 'middle')


def test_drawn_faces_are_found_by_the_haar_cascade():
  sample = S.plan('samm', 1)[0]
  frame = S.render_clip(sample, 0, [sample.onset])[sample.onset]
  x, y, w, h = P.detect_face_box(frame)
  look = S.subject_look('samm', sample.subject, 0)
  assert x < look.cx < x + w and y < look.cy < y + h and w > look.ax


def test_plan_uses_composite_names_and_extras():
  known = composite()
  for database in ('casme2', 'samm', 'smic'):
    samples = S.plan(database, subjects=4)
    assert samples == S.plan(database, subjects=4)  # deterministic
    inside = [s for s in samples if s.label]
    assert all(known[(database, s.subject, s.name)] == s.label for s in inside)
    assert all((database, s.subject, s.name) not in known for s in samples if not s.label)
  assert {s.emotion for s in S.plan('samm', 4) if not s.label} == {'Other', 'Others', 'Anger'}


def test_flow_images_format_and_learnability(tmp_path):
  """A nearest-centroid classifier, leave-one-subject-out, learns the class from the PNGs."""
  folder = S.generate('flow_images', tmp_path, subjects=4, seed=1)
  with open(folder / S.FLOW_CSV, newline='') as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == S.FLOW_CSV_HEADER
  assert {r['dataset'] for r in rows} == {'casme2', 'samm', 'smic'}
  pngs = sorted((folder / S.FLOW_PNG_DIR).iterdir())
  assert len(pngs) == len(rows) and all(p.name.endswith(' .png') for p in pngs)
  x, y, groups = [], [], []
  for row in rows:
    image = cv2.imread(
      str(folder / S.FLOW_PNG_DIR / f"{row['sub']}_{row['filename_o']} .png"), cv2.IMREAD_UNCHANGED
    )
    assert image.shape == (28, 28, 3) and image.dtype == np.uint8
    assert image.reshape(-1, 3).min(0).tolist() == [0, 0, 0]
    assert image.reshape(-1, 3).max(0).tolist() == [255, 255, 255]
    x.append(image[..., ::-1].astype(np.float32).ravel() / 255)
    y.append(int(row['label']))
    groups.append(f"{row['dataset']}/{row['sub']}")
  x, y, groups = np.array(x), np.array(y), np.array(groups)
  assert len(set(groups)) == 12 and set(y) == {0, 1, 2}
  predicted = np.empty_like(y)
  for group in set(groups):
    train, test = groups != group, groups == group
    mean, std = x[train].mean(0), x[train].std(0) + 1e-3
    centroids = np.stack([((x[train & (y == c)] - mean) / std).mean(0) for c in range(3)])
    distances = ((((x[test] - mean) / std)[:, None] - centroids) ** 2).sum(-1)
    predicted[test] = distances.argmin(1)
  f1 = [
    2 * np.sum((predicted == c) & (y == c)) / (np.sum(predicted == c) + np.sum(y == c))
    for c in range(3)
  ]
  assert np.mean(f1) > 0.8, f'UF1 {np.mean(f1):.2f}, per class {np.round(f1, 2)}'


def test_cli(tmp_path, capsys):
  S.main(['--database', 'smic', '--out', str(tmp_path), '--subjects', '1', '--seed', '3'])
  printed = capsys.readouterr().out
  assert 'smic: 6 samples, 1 subjects' in printed and 'quirk' in printed
  assert len(list((tmp_path / 'smic').rglob('micro/*/*'))) == 6
