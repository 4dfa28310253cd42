"""The real public MEGC2019 flow images (CASME II and SMIC parts) in ../shared/real.

Skipped, saying so, where that folder is absent. Nothing read here is written into the
project: the datasets are built into pytest's temporary folders.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
REAL = (
  pathlib.Path(os.environ.get('HFA_JAX_REAL', ROOT.parent / 'shared' / 'real'))
  / 'megc2019_flow_images_casme2_smic'
)

pytestmark = pytest.mark.skipif(
  not REAL.is_dir(),
  reason=f'the real flow images are not here ({REAL} is absent; set '
  'HFA_JAX_REAL to the folder holding megc2019_flow_images_casme2_smic)',
)


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  from datasets import build

  data_dir = tmp_path_factory.mktemp('real_tfds')
  assert (
    build.main(['megc2019_flow_images', '--manual_dir', str(REAL), '--data_dir', str(data_dir)])
    == 0
  )
  return data_dir


def test_dev_part_reads_pixel_exactly(built):
  import cv2
  from datasets.common.samples import sample_key
  from datasets.megc2019 import rules as megc2019
  from datasets.load import load_arrays

  data = load_arrays('megc2019_flow_images', built)
  assert data['flow'].shape == (309, 28, 28, 3)
  assert len(set(data['subject'])) == 40
  assert np.bincount(data['composite_label']).tolist() == [158, 83, 68]
  assert sorted(set(data['database'])) == ['casme2', 'smic']
  pngs = {p.name: p for p in REAL.rglob('*.png')}
  for i in range(0, 309, 37):
    db, sub, sample = data['database'][i], data['subject'][i], data['sample'][i]
    raw_sub = sub if db == 'casme2' else f's{int(sub[1:]):02d}'
    raw_sample = (
      sample
      if db == 'casme2'
      else f"s{int(sample.split('_')[0][1:]):02d}_" + sample.split('_', 1)[1]
    )
    png = cv2.imread(str(pngs[f'{raw_sub}_{raw_sample} .png']))[..., ::-1]  # RGB = u, v, s
    np.testing.assert_array_equal(data['flow'][i], 2 * (png.astype(np.float32) / 255) - 1)
  smic = data['sample'][data['database'] == 'smic']
  assert 's1_ne_01' in smic and not any(n.startswith('s0') for n in smic)  # frame builder's
  listing = megc2019.composite_list()
  keys = [sample_key(*k) for k in zip(data['database'], data['subject'], data['sample'])]
  assert all(k in listing for k in keys)
  # the CSV's labels (composite_label) are the list's, sample by sample
  assert [listing[k] for k in keys] == data['composite_label'].tolist()


def _loso(args, out):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  proc = subprocess.run(
    [sys.executable, '-m', 'experiments.loso', *args, '--out', str(out), '--no_progress'],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  return proc, json.loads((out / 'summary.json').read_text())


def test_hfanet_trains_two_folds_with_validation_selection(built, tmp_path):
  proc, summary = _loso(
    [
      '--dataset',
      'megc2019_flow_images',
      '--data_dir',
      str(built),
      '--subjects',
      'sub01,s1',
      '--epochs',
      '2',
      '--steps_per_epoch',
      '2',
      '--batch_size',
      '4',
      '--folds_in_parallel',
      '2',
      '--select_epoch',
      'validation',
    ],
    tmp_path / 'hfanet',
  )
  assert "input 32 px: the flow images' native 28 px, rounded up" in proc.stdout
  assert 'WARNING: the MEGC2019 composite has 442 samples, this dataset 309' in proc.stdout
  assert summary['composite_part_of'] == 442  # ... and its summary says so
  assert summary['n_folds'] == 2 and summary['n_samples'] == 3 + 6
  assert 'validation subjects' in summary['protocol']
  assert set(summary['selected_epoch'].values()) <= {1, 2}
  assert summary['settings']['size'] == 32 and summary['settings']['epochs'] == 2


def test_ststnet_baseline_runs_at_native_side(built, tmp_path):
  proc, summary = _loso(
    [
      '--dataset',
      'megc2019_flow_images',
      '--data_dir',
      str(built),
      '--model',
      'ststnet',
      '--subjects',
      'sub01,s1',
      '--epochs',
      '3',
    ],
    tmp_path / 'ststnet',
  )
  assert "input 28 px: the flow images' native 28 px" in proc.stdout
  assert summary['settings']['model'] == 'ststnet' and summary['settings']['batch_size'] == 256
  assert summary['n_samples'] == 9
