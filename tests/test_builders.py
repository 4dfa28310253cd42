"""Every builder built from the synthetic databases (datasets.synthetic) and read back."""

import ast
import inspect
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from datasets import synthetic
from datasets.common import builder, labels, registry, samples
from datasets.common.samples import sample_key
from datasets.megc2019 import rules as megc2019
from datasets.load import dataset_path, load_arrays, metadata
from tests.builds import run_build

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE = 32


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  """One synthetic copy of everything (1 subject each) and a data_dir to build into."""
  out = tmp_path_factory.mktemp('synthetic')
  synthetic.generate('all', out, subjects=1, seed=0)
  return out, tmp_path_factory.mktemp('tfds')


def _build(name, manual_dir, data_dir, *extra):
  assert run_build(name, manual_dir, data_dir, *extra, size=SIZE) == 0
  _check_info(name, data_dir)
  return load_arrays(name, data_dir, SIZE)


def _check_info(name, data_dir):
  """The built dataset's info: labels as ClassLabels with their names, supervised_keys."""
  info = tfds.builder_from_directory(os.fspath(dataset_path(name, data_dir, SIZE))).info
  cls = registry.builder_class(name)
  assert str(info.version) == str(builder.FlowBuilder.VERSION) == '1.0.1'
  assert isinstance(info.features['emotion'], tfds.features.ClassLabel)
  assert info.features['emotion'].names == list(cls.EMOTIONS)
  assert info.features['composite_label'].names == list(labels.COMPOSITE_CLASSES)
  label = 'emotion' if name in registry.DATABASES else 'composite_label'
  assert info.supervised_keys == ('flow', label)


def _check_common(data, database):
  n = len(data['subject'])
  assert n > 0
  assert data['flow'].shape == (n, SIZE, SIZE, 3) and data['flow'].dtype == np.float32
  assert np.isfinite(data['flow']).all()
  if database != 'megc2019_flow_images':
    assert data['flow'][..., :2].min() >= -1 and data['flow'][..., :2].max() <= 1
    assert data['flow'][..., 2].min() >= 0 and data['flow'][..., 2].max() <= 1
    assert np.abs(data['flow']).max(axis=(1, 2, 3)).min() > 0.5  # real motion, normalised
  for key in ('subject', 'sample', 'database', 'action_units'):
    assert data[key].dtype.kind == 'U'
  for key in ('emotion', 'composite_label', 'onset_frame', 'apex_frame', 'offset_frame'):
    assert data[key].dtype == np.int64 and data[key].shape == (n,)


def _expected(database, subjects=1):
  """The synthetic generator's plan: (subject, sample) -> plan entry, as the builder names them."""
  plan = synthetic.plan(database, subjects, 0)
  fix = synthetic.smic_folder_id if database == 'smic' else (lambda s: s)
  return {(fix(s.subject), fix(s.name)): s for s in plan}


@pytest.mark.parametrize('database', ['casme2', 'samm'])
def test_annotated_database(built, database):
  out, data_dir = built
  data = _build(database, out / database, data_dir)
  _check_common(data, database)
  plan = _expected(database)
  emotions = registry.rules(database).EMOTIONS
  got = set(zip(data['subject'], data['sample']))
  # Everything the generator wrote is built except the rows it made bad on purpose.
  bad = {k for k, s in plan.items() if s.apex_cell is not None}
  assert got == set(plan) - bad
  for i, key in enumerate(zip(data['subject'], data['sample'])):
    s = plan[key]
    assert emotions[data['emotion'][i]] == labels.normalize_emotion(database, s.emotion)
    assert (data['onset_frame'][i], data['apex_frame'][i], data['offset_frame'][i]) == (
      s.onset,
      s.apex,
      s.offset,
    )
    expected = -1 if s.label is None else labels.COMPOSITE_CLASSES.index(s.label)
    assert data['composite_label'][i] == expected
  assert set(data['database']) == {database}
  assert metadata(database, data_dir, SIZE)['emotions'] == list(emotions)


def test_smic(built):
  out, data_dir = built
  data = _build('smic', out / 'smic', data_dir)
  _check_common(data, 'smic')
  plan = _expected('smic')
  assert set(zip(data['subject'], data['sample'])) == set(plan)
  assert all(s.startswith('s') and not s.startswith('s0') for s in data['subject'])
  for i, key in enumerate(zip(data['subject'], data['sample'])):
    s = plan[key]
    assert registry.rules('smic').EMOTIONS[data['emotion'][i]] == s.label
    assert data['composite_label'][i] == labels.COMPOSITE_CLASSES.index(s.label)
    assert data['onset_frame'][i] == s.first and data['offset_frame'][i] == s.last
    assert s.first < data['apex_frame'][i] < s.last


def test_composite_selection_and_classes(built):
  out, data_dir = built
  data = _build('megc2019', out, data_dir)
  _check_common(data, 'megc2019')
  listing = megc2019.composite_list()
  assert set(data['database']) == {'casme2', 'samm', 'smic'}
  for i in range(len(data['sample'])):
    key = sample_key(data['database'][i], data['subject'][i], data['sample'][i])
    assert key in listing  # only listed samples
    assert data['composite_label'][i] == listing[key]
  expected = sum(
    1 for db in ('casme2', 'samm', 'smic') for s in synthetic.plan(db, 1, 0) if s.label is not None
  )
  assert len(data['sample']) == expected  # every listed sample present in the copies
  # the 3-class mapping of the native emotions
  emotions = metadata('megc2019', data_dir, SIZE)['emotions']
  for e, c, db in zip(data['emotion'], data['composite_label'], data['database']):
    assert megc2019.composite_by_rule(db, emotions[e]) == c
  assert 'others' not in {emotions[e] for e in data['emotion']}
  # the listed samples absent from this 1-subject copy are reported, per database
  skipped = metadata('megc2019', data_dir, SIZE)['skipped']
  assert {s['sample'].split(':')[0] for s in skipped} == {'casme2', 'samm', 'smic'}


def test_flow_images(built):
  out, data_dir = built
  data = _build('megc2019_flow_images', out / 'megc2019_flow_images', data_dir)
  _check_common(data, 'megc2019_flow_images')
  # stored 0..1 per channel and image; the loader maps them to -1..1 (u signed), so every
  # channel spans most of -1..1 (exactly, at the native 28 px: tests/test_real_data.py)
  assert data['flow'].min() >= -1 and data['flow'].max() <= 1
  assert (data['flow'].min(axis=(1, 2)) < -0.5).all() and (
    data['flow'].max(axis=(1, 2)) > 0.5
  ).all()
  np.testing.assert_array_equal(data['emotion'], data['composite_label'])
  smic = data['sample'][data['database'] == 'smic']
  assert len(smic) and all(re.fullmatch(r's[1-9]\d*_[a-z]+_\d+', n) for n in smic), smic
  listing = megc2019.composite_list()
  for db, sub, sample in zip(data['database'], data['subject'], data['sample']):
    assert sample_key(db, sub, sample) in listing


def test_cli_from_repo_root_with_two_workers(built, tmp_path):
  out, _ = built
  result = subprocess.run(
    [
      sys.executable,
      '-m',
      'datasets.build',
      'smic',
      '--manual_dir',
      str(out / 'smic'),
      '--data_dir',
      str(tmp_path),
      '--size',
      '40',
      '--workers',
      '2',
      '--apex',
      'max_motion',
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr
  assert 'per subject' in result.stdout and 'skipped: none' in result.stdout
  data = load_arrays('smic', tmp_path, config='size_40_apex_max_motion')
  assert data['flow'].shape[1:] == (40, 40, 3)
  assert not (tmp_path / '.flow_cache' / 'smic' / 'size_40_apex_max_motion').exists()


def _children(pid):
  """Pids of the processes whose parent is `pid` (Linux /proc)."""
  kids = []
  for stat in pathlib.Path('/proc').glob('[0-9]*/stat'):
    try:
      fields = stat.read_text().rsplit(')', 1)[1].split()
    except OSError:
      continue
    if int(fields[1]) == pid:
      kids.append(int(stat.parent.name))
  return kids


def _alive(pid):
  try:
    state = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
  except OSError:
    return False
  return state != 'Z'


@pytest.mark.skipif(not pathlib.Path('/proc/self/stat').exists(), reason='needs Linux /proc')
def test_killed_build_leaves_no_worker_processes(tmp_path):
  """SIGKILL of a build with 2 workers: its workers (and the resource tracker) end too.
  They used to block forever writing a finished flow into the dead build's pipe."""
  import signal
  import time

  synthetic.generate('all', tmp_path / 'copy', subjects=2, seed=0)
  proc = subprocess.Popen(
    [
      sys.executable,
      '-m',
      'datasets.build',
      'megc2019',
      '--manual_dir',
      str(tmp_path / 'copy'),
      '--data_dir',
      str(tmp_path / 'tfds'),
      '--size',
      '224',
      '--workers',
      '2',
      '--no_progress',
    ],
    cwd=ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.time() + 120
  kids = []
  while time.time() < deadline and proc.poll() is None and len(kids) < 3:
    kids = _children(proc.pid)  # 2 workers and the resource tracker
    time.sleep(0.05)
  time.sleep(2.0)  # the workers import, then compute flows
  assert proc.poll() is None and len(kids) >= 3, 'the build ended before it could be killed'
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  deadline = time.time() + 20
  while time.time() < deadline and any(_alive(k) for k in kids):
    time.sleep(0.2)
  left = [k for k in kids if _alive(k)]
  for k in left:
    os.kill(k, signal.SIGKILL)
  assert not left, f'processes outlived the killed build: {left}'


def _datasets_imports(path: pathlib.Path) -> set[str]:
  """The datasets.* modules a file imports, at the top or inside functions."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      for a in node.names:  # `from datasets.casme2 import rules` imports a module
        module = f'{node.module}.{a.name}'
        is_module = (ROOT / (module.replace('.', '/') + '.py')).exists()
        found.add(module if is_module else node.module)
  return {m for m in found if m.split('.')[0] == 'datasets'}


def test_database_rules_do_not_import_the_composite_and_no_import_cycles():
  """datasets/<db>/rules.py know nothing of the MEGC2019 composite (its builder and the
  database builders apply its list), and no module under datasets/ imports itself back."""
  graph = {}
  for path in (ROOT / 'datasets').rglob('*.py'):
    module = '.'.join(path.relative_to(ROOT).with_suffix('').parts).removesuffix('.__init__')
    graph[module] = _datasets_imports(path)

  def reachable(module):
    seen, stack = set(), [module]
    while stack:
      for m in graph.get(stack.pop(), ()):
        if m not in seen:
          seen.add(m)
          stack.append(m)
    return seen

  assert 'datasets.megc2019.rules' in graph['datasets.casme2.casme2_dataset_builder']
  for database in registry.DATABASES:
    imported = reachable(f'datasets.{database}.rules')
    assert not {m for m in imported if m.startswith('datasets.megc2019')}, (database, imported)
  cycles = sorted(m for m in graph if m in reachable(m))
  assert not cycles, cycles


@pytest.mark.parametrize('database', registry.DATABASES)
def test_every_database_finds_samples_with_one_signature(database):
  """find_samples of every database takes what samples.FindSamples declares (so the composite
  calls all three alike)."""
  declared = list(inspect.signature(samples.FindSamples.__call__).parameters.values())[1:]
  got = inspect.signature(registry.rules(database).find_samples).parameters.values()
  assert list(got) == declared
