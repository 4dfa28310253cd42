"""Layout and spreadsheet quirks of the real copies, beyond what the synthetic generator writes."""

import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests import me_layouts as L
from datasets import synthetic
from datasets.casme2 import rules as casme2
from datasets.common import layout
from datasets.megc2019 import rules as megc2019
from datasets.megc2019_flow_images import rules as flow_images
from datasets.samm import rules as samm
from datasets.smic import rules as smic
from datasets.load import load_arrays, metadata
from tests.builds import run_build


def _keys(samples):
  return {(s.subject, s.sample) for s in samples}


def _reasons(problems):
  return {p.where.split('/')[-1]: p.reason for p in problems}


ROWS = [('1', 'EP02_01f', 46, 50, 55, '12', 'happiness')]


def test_casme2_nested_twice_and_numeric_subjects(tmp_path):
  L.casme2(
    tmp_path,
    [
      (1, 'EP02_01f', 46, 50, 55, 12, 'Happiness '),
      (2.0, 'EP03_02', 8, 11, 14, '4', ' DISGUST'),
      ('sub03', 'EP04_01', 5, 6, 9, None, 'Others'),
    ],
    nested=True,
  )
  samples, problems, source = casme2.find_samples(tmp_path)
  assert not problems
  assert _keys(samples) == {('sub01', 'EP02_01f'), ('sub02', 'EP03_02'), ('sub03', 'EP04_01')}
  assert {s.emotion for s in samples} == {'happiness', 'disgust', 'others'}
  assert 'CASME2_RAW_selected/CASME2_RAW_selected' in source
  assert {s.action_units for s in samples} == {'12', '4', ''}


def test_casme2_cropped_reg_img_other_sheet_name_and_preferred(tmp_path):
  L.casme2(tmp_path, ROWS, folder='CASME2_RAW_selected', sheet='coding.xlsx')
  L.casme2(tmp_path, ROWS, folder='Cropped', cropped=True, sheet='renamed annotations.xlsx')
  copy = layout.find_copy('casme2', tmp_path)
  assert copy.cropped and copy.root.name == 'Cropped'
  samples, problems, _ = casme2.find_samples(tmp_path)
  assert not problems and samples[0].onset_path.endswith('reg_img46.jpg')
  assert samples[0].crop is False


def test_spreadsheet_detected_by_header_not_name(tmp_path):
  L.casme2(tmp_path, ROWS, sheet='whatever.xlsx')
  # an unrelated spreadsheet (CASME II objective classes) beside it is ignored
  L.write_sheet(
    tmp_path / 'CASME2_RAW_selected' / 'aaa_objective.xlsx',
    ('Subject', 'Filename', 'Objective Class'),
    [('1', 'EP02_01f', 1)],
  )
  samples, problems, source = casme2.find_samples(tmp_path)
  assert len(samples) == 1 and 'whatever.xlsx' in source


def test_samm_preamble_numeric_and_text_subjects_other_others(tmp_path):
  L.samm(
    tmp_path,
    [
      (6, '006_1_2', 100, 103, 106, 'AU4', 'Anger'),
      ('006', '006_1_3', 200, 201, 204, 'AU12', 'Other'),
      ('7', '007_2_1', 50, 52, 55, '', 'Others'),
      (7.0, '007_2_2', 10, 20, 15, '', 'Happiness'),
    ],
  )
  samples, problems, _ = samm.find_samples(tmp_path)
  assert _keys(samples) == {('006', '006_1_2'), ('006', '006_1_3'), ('007', '007_2_1')}
  assert {s.emotion for s in samples} == {'anger', 'other'}
  assert 'outside onset..offset 10..15' in _reasons(problems)['007_2_2']


def test_slash_apex_skip_or_middle(tmp_path):
  L.casme2(tmp_path, [('1', 'EP02_01f', 46, '/', 56, '12', 'happiness')])
  samples, problems, _ = casme2.find_samples(tmp_path)
  assert not samples and "apex is '/'" in problems[0].reason
  assert '--missing_apex middle' in problems[0].reason
  samples, problems, _ = casme2.find_samples(tmp_path, missing_apex='middle')
  assert not problems and samples[0].apex_frame == 51 and 'middle' in samples[0].notes[0]


def test_missing_frames(tmp_path):
  L.casme2(
    tmp_path,
    [
      ('1', 'EP01', 10, 12, 20, '', 'fear'),  # offset 20 missing: noted
      ('1', 'EP02', 10, 12, 20, '', 'fear'),  # apex 12 missing: bad
      ('1', 'EP03', 10, 12, 20, '', 'fear'),
    ],  # no clip folder: bad
    frames={'EP01': range(10, 18), 'EP02': [10, 11, 13, 14]},
  )
  import shutil

  shutil.rmtree(tmp_path / 'CASME2_RAW_selected' / 'sub01' / 'EP03')
  samples, problems, _ = casme2.find_samples(tmp_path)
  assert _keys(samples) == {('sub01', 'EP01')}
  assert 'offset frame 20' in samples[0].notes[0]
  reasons = _reasons(problems)
  assert 'frame 12 is missing' in reasons['EP02'] and 'not found' in reasons['EP03']


def test_smic_zero_padding_vis_ignored_and_composite(tmp_path):
  clips = [(1, 'negative', 's1_ne_01', 5), (1, 'surprise', 's1_sur_01', 6)]
  L.smic(tmp_path, clips, folder='SMIC_all_raw')
  L.smic(tmp_path / 'SMIC_all_raw' / 'VIS_copy', clips, folder='VIS')  # not HS: ignored
  samples, problems, source = smic.find_samples(tmp_path)
  assert not problems and _keys(samples) == {('s1', 's1_ne_01'), ('s1', 's1_sur_01')}
  assert '/HS' in source
  # the composite list spells them s01_ne_01; the smic builder labels them from it
  assert {s.composite_label for s in samples} == {-1}
  megc2019.label(samples)
  assert {s.composite_label for s in samples} == {0, 2}


def test_smic_subject_without_micro_clips_is_passed_over(tmp_path):
  """A subject folder holding only non-micro clips: no sample of it, and the others built (it
  ended the walk with an AttributeError)."""
  L.smic(tmp_path, [(1, 'negative', 's1_ne_01', 5)], folder='SMIC_all_raw')
  hs = next(tmp_path.rglob('HS'))
  (hs / 's2' / 'non_micro' / 's2_no_01').mkdir(parents=True)
  samples, problems, _ = smic.find_samples(tmp_path)
  assert not problems and _keys(samples) == {('s1', 's1_ne_01')}


def test_flow_images_refuse_an_unknown_database_spelling(tmp_path):
  """'casme' is CASME (I), another database: its rows are refused, not read as CASME II
  (whose sub01 it would join as one LOSO subject)."""
  L.flow_images(
    tmp_path, [('casme2', 'sub01', 'EP02_01f', 1, 50), ('casme', 'sub01', 'EP01_01', 0, 20)]
  )
  samples, problems, _ = flow_images.find_samples(tmp_path)
  assert [s.sample for s in samples] == ['EP02_01f']
  assert len(problems) == 1 and "unknown dataset 'casme'" in problems[0].reason


def test_a_builds_skipped_samples_are_counted_as_samples():
  """The composite's entry for a copy's missing listed samples counts them all."""
  from datasets.common.report import BuildReport, skipped_count

  skipped = [{'sample': 'casme2: 126 listed sample(s)'}, {'sample': 'smic/s1/s1_ne_01'}]
  assert skipped_count(skipped) == 127
  report = BuildReport('megc2019', skipped=[(e['sample'], 'why') for e in skipped])
  assert '  SKIPPED (127 samples):' in report.format()


def test_a_duplicate_row_is_a_duplicate_not_a_skipped_sample(tmp_path, capsys):
  """A listed composite sample's row given twice: the sample is built once, and the summary,
  the metadata and the 'already built' line count no sample skipped."""
  copy = synthetic.generate('flow_images', tmp_path / 'copy', subjects=1)
  table = copy / synthetic.FLOW_CSV
  rows = table.read_text().splitlines()
  table.write_text('\n'.join([*rows, rows[1]]) + '\n')
  data_dir = tmp_path / 'tfds'
  assert run_build('megc2019_flow_images', copy, data_dir) == 0
  out = capsys.readouterr().out
  assert 'skipped: none' in out and 'SKIPPED' not in out
  assert 'duplicate rows (1; their samples built once):' in out
  meta = metadata('megc2019_flow_images', data_dir)
  assert meta['num_examples'] == len(rows) - 1 and meta['skipped'] == []
  assert [d['reason'] for d in meta['duplicates']] == [
    f'duplicate row ({table.name} line {len(rows) + 1}); the first row for this sample is used'
  ]
  assert run_build('megc2019_flow_images', copy, data_dir) == 0
  assert f'({len(rows) - 1} examples, 0 samples skipped)' in capsys.readouterr().out
  L.casme2(tmp_path / 'casme2', ROWS * 2)  # the spreadsheets' duplicates are marked too
  _, problems, _ = casme2.find_samples(tmp_path / 'casme2')
  assert [p.duplicate for p in problems] == [True]


def test_generator_quirks_reported(tmp_path):
  """The real generator's bad rows ('/' apex, apex after offset) with 3 subjects."""
  out = synthetic.generate('all', tmp_path, subjects=3, seed=1)
  for database, quirk in (('casme2', "apex is '/'"), ('samm', 'outside onset..offset')):
    rules = casme2 if database == 'casme2' else samm
    samples, problems, _ = rules.find_samples(out / database)
    plan = {s.name for s in synthetic.plan(database, 3, 1) if s.apex_cell is None}
    assert {s.sample for s in samples} == plan
    assert len(problems) == 1 and quirk in problems[0].reason


def test_flow_images_png_names(tmp_path):
  L.flow_images(
    tmp_path,
    [
      ('casme2', 'sub01', 'EP02_01f', 1, 50),
      ('samm', '006', '006_1_2', 0, 103),
      ('smic', 's01', 's01_ne_01', 0, ''),
    ],
  )
  data_dir = tmp_path / 'tfds'
  assert run_build('megc2019_flow_images', tmp_path, data_dir) == 0
  data = load_arrays('megc2019_flow_images', data_dir)
  assert data['flow'].shape == (3, 28, 28, 3)
  assert set(data['subject']) == {'sub01', '006', 's1'}
  assert set(data['apex_frame']) == {50, 103, -1}
  assert set(data['sample']) == {'EP02_01f', '006_1_2', 's1_ne_01'}  # the frame builder's
  red = {s: f[..., 0].mean() for s, f in zip(data['sample'], data['flow'])}
  assert red['EP02_01f'] == pytest.approx(2 * 40 / 255 - 1, abs=1e-6)  # 0..255 -> -1..1
  assert red['006_1_2'] == -1.0


def test_build_does_not_announce_a_download(tmp_path, capsys):
  L.flow_images(tmp_path, [('casme2', 'sub01', 'EP02_01f', 1, 50)])
  assert run_build('megc2019_flow_images', tmp_path, tmp_path / 'tfds') == 0
  out = capsys.readouterr().out
  assert 'Downloading' not in out and 'Unknown size' not in out
  assert 'from the local copy' in out


def test_grayscale_png_is_not_a_flow_image(tmp_path):
  """A grayscale picture (one channel, or three equal ones) is skipped, naming the file."""
  L.flow_images(
    tmp_path,
    [
      ('casme2', 'sub01', 'EP02_01f', 1, 50),
      ('casme2', 'sub01', 'EP03_02', 0, 60),
      ('casme2', 'sub02', 'EP04_01', 2, 70),
    ],
  )
  pngs = tmp_path / 'STSNet_whole_norm_u_v_os'
  gray = L.texture(7, 28)
  cv2.imwrite(str(pngs / 'sub01_EP03_02 .png'), gray)  # one channel
  cv2.imwrite(str(pngs / 'sub02_EP04_01 .png'), np.stack([gray] * 3, -1))  # three equal
  data_dir = tmp_path / 'tfds'
  assert run_build('megc2019_flow_images', tmp_path, data_dir) == 0
  data = load_arrays('megc2019_flow_images', data_dir)
  assert list(data['sample']) == ['EP02_01f']
  skipped = metadata('megc2019_flow_images', data_dir)['skipped']
  assert len(skipped) == 2 and all('grayscale' in s['reason'] for s in skipped)


def test_build_and_read_without_tensorflow(tmp_path):
  """The build command and load_arrays (ClassLabel features, array_record) never import
  TensorFlow, even where it is installed."""
  L.flow_images(
    tmp_path, [('casme2', 'sub01', 'EP02_01f', 1, 50), ('smic', 's01', 's01_ne_01', 0, '')]
  )
  script = (
    'import sys\n'
    'from tests.builds import run_build\n'
    'from datasets.load import load_arrays\n'
    'assert run_build("megc2019_flow_images", sys.argv[1], sys.argv[2]) == 0\n'
    'data = load_arrays("megc2019_flow_images", sys.argv[2])\n'
    'print(data["composite_label"].tolist(), data["composite_label"].dtype)\n'
    'print("tensorflow" in sys.modules)\n'
  )
  result = subprocess.run(
    [sys.executable, '-c', script, str(tmp_path), str(tmp_path / 'tfds')],
    cwd=pathlib.Path(__file__).resolve().parents[1],
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split('\n')[-3:] == ['[1, 0] int64', 'False', '']
