"""python -m experiments.loso end to end on a tiny synthetic dataset, and its errors."""

import csv
import json
import os
import pathlib
import shlex
import subprocess
import sys

import pytest

from experiments import loso as cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ['--config', 'tiny', '--model', 'tests.tiny:TinyNet', '--synthetic_subjects', '1',
        '--epochs', '2', '--checkpoint_every', '1', '--no_progress']


def _run(args, cwd=ROOT):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable, '-m', 'experiments.loso', *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=900)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('cli')
  out = tmp / 'out'
  proc = _run([*TINY, '--data_dir', str(tmp / 'data'), '--out', str(out)])
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  return out, proc


def test_end_to_end_outputs(tiny_run):
  out, proc = tiny_run
  assert 'UF1' in proc.stdout and 'honest' in proc.stdout
  summary = json.loads((out / 'summary.json').read_text())
  for key in ('uf1', 'uar', 'accuracy', 'per_database', 'per_subject', 'settings', 'seed',
              'versions', 'devices', 'wall_time_seconds', 'command', 'protocol'):
    assert key in summary, key
  assert summary['select_best_epoch_by_test'] is False
  assert set(summary['per_database']) == {'casme2', 'samm', 'smic'}
  assert summary['devices']['count'] >= 1 and summary['versions']['jax']
  with open(out / 'predictions.csv') as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == summary['n_samples'] > 0
  assert {'subject', 'sample', 'database', 'true', 'predicted', 'p_negative'} <= set(rows[0])
  for png in ('confusion.png', 'curves.png'):
    assert (out / png).read_bytes()[:4] == b'\x89PNG'
  assert (out / 'state' / 'checkpoints').is_dir()
  assert len(list((out / 'state' / 'folds').glob('*.json'))) == summary['n_folds']


def test_saved_command_reproduces_and_reloads(tiny_run):
  out, _ = tiny_run
  summary = json.loads((out / 'summary.json').read_text())
  args = shlex.split(summary['command'])[3:]
  assert args[:0] == [] and '--seed' in args and '--model' in args
  proc = _run(args + ['--no_progress'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'continuing the run' in proc.stdout
  again = json.loads((out / 'summary.json').read_text())
  assert again['uf1'] == summary['uf1'] and again['per_subject'] == summary['per_subject']
  proc = _run(['--resume', str(out), '--no_progress'])
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_not_built_dataset_prints_the_build_command(tmp_path, capsys):
  code = cli.main(['--dataset', 'samm', '--data_dir', str(tmp_path), '--no_progress'])
  err = capsys.readouterr().err
  assert code == 2
  assert f'python -m datasets.build samm --manual_dir DIR --data_dir {tmp_path}' in err


@pytest.mark.parametrize('args, message', [
    (['--dataset', 'casme3'], 'invalid choice'),
    (['--epochs', '0'], 'must be >= 1'),
    (['--size', '48'], 'multiple of 32'),
    (['--classes', 'native'], 'native applies to'),
    (['--dataset', 'megc2019', '--classes', 'native'], 'native applies to'),
    (['--config', 'no_such_config'], 'no file'),
    (['--augment', 'flip+rotate'], 'augment'),
    (['--lr', '-1'], 'learning_rate must be > 0'),
    (['--schedule', 'step'], 'invalid choice'),
    (['--model', 'nowhere:Net'], 'cannot import'),
    (['--resume', '/nonexistent/run'], 'no run there'),
])
def test_bad_options(args, message, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(args)
  assert e.value.code == 2
  assert message in capsys.readouterr().err


def test_resume_refuses_other_options(tiny_run, capsys):
  out, _ = tiny_run
  with pytest.raises(SystemExit):
    cli.main(['--resume', str(out), '--epochs', '5'])
  assert 'give no other settings' in capsys.readouterr().err


def test_other_settings_in_the_same_out_are_refused(tiny_run, capsys):
  out, _ = tiny_run
  summary = json.loads((out / 'summary.json').read_text())
  args = shlex.split(summary['command'])[3:]
  args[args.index('--lr') + 1] = '0.5'
  assert cli.main(args + ['--no_progress']) == 2
  assert 'other settings' in capsys.readouterr().err
