"""`tfds build datasets/NAME` (the TFDS command line) builds what `python -m datasets.build`
builds: same samples, same arrays, same metadata. Runs where TensorFlow, apache-beam and
mlcroissant are importable (`pip install -e ".[tfds-cli]"`), else skips saying so."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from datasets import synthetic
from datasets.load import load_arrays, metadata
from tests.builds import run_build

ROOT = pathlib.Path(__file__).resolve().parents[1]
_MISSING = [
  m for m in ('tensorflow', 'apache_beam', 'mlcroissant') if importlib.util.find_spec(m) is None
]
pytestmark = [
  pytest.mark.slow,
  pytest.mark.skipif(
    bool(_MISSING),
    reason=f'the tfds command line needs {", ".join(_MISSING)}: '
    'pip install -e ".[tfds-cli]" to run these tests',
  ),
]

# (dataset, manual folder inside the synthetic copy, TFDS config, datasets.build options):
# every builder once; the plain config through the composite (each case costs ~50 s)
CASES = [
  ('casme2', 'casme2', 'size_32_missing_apex_middle', ['--missing_apex', 'middle']),
  ('samm', 'samm', 'size_32_missing_apex_middle', ['--missing_apex', 'middle']),
  ('smic', 'smic', 'size_32_apex_max_motion', ['--apex', 'max_motion']),
  ('megc2019', '.', 'size_32', []),
  ('megc2019_flow_images', 'megc2019_flow_images', 'size_28', []),
]


@pytest.fixture(scope='module')
def copy(tmp_path_factory):
  out = tmp_path_factory.mktemp('synthetic')
  synthetic.generate('all', out, subjects=1, seed=0)
  return out


def _tfds(*args):
  return subprocess.run(
    [sys.executable, '-m', 'tensorflow_datasets.scripts.cli.main', *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )


@pytest.mark.parametrize('name,folder,config,options', CASES, ids=[f'{c[0]}:{c[2]}' for c in CASES])
def test_tfds_build_equals_datasets_build(copy, tmp_path, name, folder, config, options):
  manual = copy / folder
  proc = _tfds(
    'build',
    f'datasets/{name}',
    '--manual_dir',
    str(manual),
    '--data_dir',
    str(tmp_path / 'cli'),
    '--file_format',
    'array_record',
    '--config',
    config,
  )
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
  size = int(config.split('_')[1])
  assert run_build(name, manual, tmp_path / 'ours', *options, size=size) == 0
  theirs = load_arrays(name, tmp_path / 'cli', config=config)
  ours = load_arrays(name, tmp_path / 'ours', config=config)
  assert set(theirs) == set(ours) and len(ours['sample']) > 0
  for key in ours:
    np.testing.assert_array_equal(theirs[key], ours[key], err_msg=key)
  assert metadata(name, tmp_path / 'cli', config=config) == metadata(
    name, tmp_path / 'ours', config=config
  )


def test_tfds_build_without_manual_dir_shows_the_expected_layout(tmp_path):
  proc = _tfds(
    'build',
    'datasets/samm',
    '--data_dir',
    str(tmp_path),
    '--file_format',
    'array_record',
    '--config',
    'size_32',
  )
  assert proc.returncode != 0
  assert 'Expected --manual_dir to be a folder laid out like this' in proc.stderr
  assert 'SAMM_Micro_FACS_Codes_v2.xlsx' in proc.stderr
  assert not list(tmp_path.glob('samm/*/*/dataset_info.json'))
