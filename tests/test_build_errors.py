"""Bad input: clear messages, skip or stop, nothing already built lost; reruns; the loader."""

import functools
import pathlib

import pytest

from tests import me_layouts as L
from tests.builds import run_build
from datasets import build
from datasets.common import flows
from datasets.common.builder import FlowBuilder
from datasets.load import DatasetNotBuiltError, load_arrays, metadata

GOOD = ('1', 'EP01_01', 10, 12, 16, '12', 'happiness')
BAD = {
  'slash_apex': (('1', 'EP02_01', 10, '/', 16, '', 'disgust'), "apex is '/'"),
  'apex_out_of_range': (('1', 'EP03_01', 10, 30, 16, '', 'disgust'), 'outside onset..offset'),
  'unknown_emotion': (('1', 'EP04_01', 10, 12, 16, '', 'boredom'), "unknown emotion 'boredom'"),
  'missing_frames': (('1', 'EP05_01', 10, 12, 16, '', 'fear'), 'frame 12 is missing'),
  'unreadable_image': (('1', 'EP06_01', 10, 12, 16, '', 'fear'), 'cannot read image'),
}


def _casme2(root, rows):
  L.casme2(root, rows, frames={'EP05_01': [10, 11, 13, 14, 15, 16]})
  if any(r[1] == 'EP06_01' for r in rows):
    (root / 'CASME2_RAW_selected' / 'sub01' / 'EP06_01' / 'img12.jpg').write_bytes(
      b'\xff\xd8 broken'
    )
  return root


_run = functools.partial(run_build, size=32)


def _nothing_built(data_dir, name='casme2'):
  return not list(pathlib.Path(data_dir).glob(f'{name}/*/*/dataset_info.json'))


def test_skip_lists_every_bad_sample(tmp_path):
  manual = _casme2(tmp_path / 'manual', [GOOD] + [row for row, _ in BAD.values()])
  data_dir = tmp_path / 'tfds'
  assert _run('casme2', manual, data_dir) == 0
  data = load_arrays('casme2', data_dir, 32)
  assert list(data['sample']) == ['EP01_01']
  skipped = {
    s['sample'].split('/')[-1]: s['reason'] for s in metadata('casme2', data_dir, 32)['skipped']
  }
  assert len(skipped) == len(BAD)
  for row, reason in BAD.values():
    assert reason in skipped[row[1]], skipped[row[1]]


@pytest.mark.parametrize('kind', sorted(BAD))
def test_stop_at_first_bad_sample(tmp_path, kind, capsys):
  row, reason = BAD[kind]
  data_dir = tmp_path / 'tfds'
  manual = _casme2(tmp_path / 'manual', [GOOD, row])
  assert _run('casme2', manual, data_dir, '--on_error', 'stop') == 1
  err = capsys.readouterr().err
  assert reason in err and f'sub01/{row[1]}' in err and '--on_error skip' in err
  assert 'to leave such samples out' in err
  assert _nothing_built(data_dir)


def test_stop_at_a_duplicate_row_says_its_sample_would_be_built(tmp_path, capsys):
  data_dir = tmp_path / 'tfds'
  manual = _casme2(tmp_path / 'manual', [GOOD, GOOD])
  assert _run('casme2', manual, data_dir, '--on_error', 'stop') == 1
  err = capsys.readouterr().err
  assert 'duplicate row' in err and 'leave such samples out' not in err
  assert '--on_error skip to build its sample from its first row' in err
  assert _nothing_built(data_dir)


def test_manual_dir_missing_or_wrong(tmp_path, capsys):
  data_dir = tmp_path / 'tfds'
  assert _run('samm', tmp_path / 'nowhere', data_dir) == 2
  err = capsys.readouterr().err
  assert 'does not exist' in err and '006_1_2/006_05562.jpg' in err  # the expected layout
  (tmp_path / 'empty').mkdir()
  assert _run('samm', tmp_path / 'empty', data_dir) == 2
  err = capsys.readouterr().err
  assert (
    f'{tmp_path / "empty"} does not exist or is empty' in err and 'Expected --manual_dir' in err
  )
  manual = _casme2(tmp_path / 'manual', [GOOD])
  assert _run('samm', manual, data_dir) == 2  # a CASME II folder
  err = capsys.readouterr().err
  assert 'No SAMM frame folders' in err and 'Expected --manual_dir' in err
  with pytest.raises(SystemExit):
    build.main(['casme2', '--data_dir', str(data_dir)])  # no --manual_dir
  assert _nothing_built(data_dir, 'samm')


def test_spreadsheet_missing_or_unreadable(tmp_path, capsys):
  manual = _casme2(tmp_path / 'manual', [GOOD])
  sheet = manual / 'CASME2_RAW_selected' / 'CASME2-coding-20140508.xlsx'
  sheet.unlink()
  assert _run('casme2', manual, tmp_path / 'tfds') == 2
  assert 'No CASME II annotation spreadsheet' in capsys.readouterr().err
  sheet.write_bytes(b'PK\x03\x04 truncated')
  assert _run('casme2', manual, tmp_path / 'tfds') == 2
  err = capsys.readouterr().err
  assert 'cannot read spreadsheet' in err and 'CASME2-coding-20140508.xlsx' in err


def test_rerun_after_interruption_reuses_cached_flows(tmp_path, monkeypatch):
  rows = [GOOD] + [('1', f'EP0{i}_02', 10, 12, 16, '', 'fear') for i in range(1, 5)]
  manual = _casme2(tmp_path / 'manual', rows)
  data_dir = tmp_path / 'tfds'
  original = flows.FrameJob.compute
  calls = []

  def interrupted(job):
    calls.append(job.key)
    if len(calls) == 3:
      raise KeyboardInterrupt
    return original(job)

  monkeypatch.setattr(flows.FrameJob, 'compute', interrupted)
  assert _run('casme2', manual, data_dir) == 130
  assert _nothing_built(data_dir)
  assert len(list((data_dir / '.flow_cache').rglob('*.npz'))) == 2
  stale = data_dir / 'casme2' / 'size_32' / f'incomplete.XYZ123_{FlowBuilder.VERSION}'  # killed
  stale.mkdir(parents=True)
  calls.clear()
  monkeypatch.setattr(flows.FrameJob, 'compute', lambda job: calls.append(job.key) or original(job))
  assert _run('casme2', manual, data_dir) == 0
  assert len(calls) == 3  # the 2 cached flows were not recomputed
  assert len(load_arrays('casme2', data_dir, 32)['sample']) == 5
  assert not stale.exists() and not (data_dir / '.flow_cache' / 'casme2' / 'size_32').exists()
  assert _run('casme2', manual, data_dir) == 0  # already built: left as is


def test_failed_overwrite_keeps_previous_build(tmp_path):
  manual = _casme2(tmp_path / 'manual', [GOOD])
  data_dir = tmp_path / 'tfds'
  assert _run('casme2', manual, data_dir) == 0
  bad = _casme2(tmp_path / 'bad', [BAD['unknown_emotion'][0]])
  assert _run('casme2', bad, data_dir, '--overwrite', '--on_error', 'stop') == 1
  assert list(load_arrays('casme2', data_dir, 32)['sample']) == ['EP01_01']
  assert _run('casme2', manual, data_dir, '--size', '40', '--overwrite') == 0  # other config
  assert list(load_arrays('casme2', data_dir, 32)['sample']) == ['EP01_01']


def test_killed_overwrite_keeps_the_previous_build_loadable_and_restores_it(tmp_path, capsys):
  manual = _casme2(tmp_path / 'manual', [GOOD])
  data_dir = tmp_path / 'tfds'
  assert _run('casme2', manual, data_dir) == 0
  version = next((data_dir / 'casme2' / 'size_32').glob('1.*'))
  # what a SIGKILL during `--overwrite` leaves: the old build set aside, a partial new one
  version.rename(version.parent / f'previous_{version.name}')
  (version.parent / f'incomplete.abc_{version.name}').mkdir()
  assert list(load_arrays('casme2', data_dir, 32)['sample']) == ['EP01_01']  # still loads
  assert _run('casme2', manual, data_dir) == 0  # the next command restores it
  out = capsys.readouterr().out
  assert 'restored the previous build' in out and 'already built' in out
  assert (version / 'dataset_info.json').exists()
  assert not (version.parent / f'previous_{version.name}').exists()
  assert list(load_arrays('casme2', data_dir, 32)['sample']) == ['EP01_01']


def test_load_not_built_gives_the_command(tmp_path):
  with pytest.raises(DatasetNotBuiltError) as e:
    load_arrays('samm', tmp_path, size=64)
  assert f'hfa_jax build samm --manual_dir DIR --data_dir {tmp_path} --size 64' in str(e.value)
  with pytest.raises(DatasetNotBuiltError) as e:
    load_arrays('megc2019_flow_images', tmp_path)
  assert 'hfa_jax build megc2019_flow_images --manual_dir DIR' in str(e.value)
  assert '--size' not in str(e.value)
