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
TINY = [
  '--config',
  'tiny',
  '--model',
  'tests.tiny:TinyNet',
  '--synthetic_subjects',
  '1',
  '--epochs',
  '2',
  '--checkpoint_minutes',
  '0',
  '--no_progress',
]


def _run(args, cwd=ROOT):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, '-m', 'experiments.loso', *args],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=900,
  )


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
  assert 'input 32 px: set by experiments/configs/tiny.py' in proc.stdout
  # --no_progress still says that the first epoch compiles, and logs the epochs
  assert 'the first epoch compiles the training program' in proc.stdout
  assert 'train epoch 2/2: train loss' in proc.stdout
  summary = json.loads((out / 'summary.json').read_text())
  for key in (
    'uf1',
    'uar',
    'accuracy',
    'per_database',
    'per_subject',
    'settings',
    'seed',
    'versions',
    'devices',
    'wall_time_seconds',
    'command',
    'protocol',
    'cpu',
    'skipped_by_build',
    'per_subject_convention',
  ):
    assert key in summary, key
  assert summary['select_epoch'] == 'last' and 'honest' in summary['protocol']
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
  assert (
    'continuing the run' in proc.stdout and f'already finished; results in {out}' in proc.stdout
  )
  again = json.loads((out / 'summary.json').read_text())
  assert again['uf1'] == summary['uf1'] and again['per_subject'] == summary['per_subject']
  # the wall time is the sum of the parts, not the rerun's second
  assert len(again['wall_time_parts']) == 2
  assert again['wall_time_seconds'] == pytest.approx(sum(again['wall_time_parts']), abs=0.2)
  assert again['wall_time_seconds'] >= summary['wall_time_seconds']
  proc = _run(['--resume', str(out), '--no_progress'])
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_not_built_dataset_prints_the_build_command(tmp_path, capsys):
  code = cli.main(['--dataset', 'samm', '--data_dir', str(tmp_path), '--no_progress'])
  err = capsys.readouterr().err
  assert code == 2
  assert f'python -m datasets.build samm --manual_dir DIR --data_dir {tmp_path}' in err


@pytest.mark.parametrize(
  'args, message',
  [
    (['--dataset', 'casme3'], 'dataset must be one of'),
    (['--epochs', '0'], 'must be >= 1'),
    (['--size', '48'], 'multiple of 32'),
    (['--classes', 'native'], 'native applies to'),
    (['--dataset', 'megc2019', '--classes', 'native'], 'native applies to'),
    (['--config', 'no_such_config'], 'no file'),
    (['--augment', 'flip+rotate'], 'augment'),
    (['--lr', '-1'], 'learning_rate must be > 0'),
    (['--schedule', 'step'], 'schedule must be one of cosine, constant'),
    (['--select_epoch', 'best'], 'select_epoch must be one of'),
    (['--retrain', 'true'], 'retrain needs select_epoch'),
    (['--epochs', 'many'], "'many' is not an integer"),
    (['--size', '4'], 'size must be >= 8'),
    (['--model', 'nowhere:Net'], 'cannot import'),
    (['--resume', '/nonexistent/run'], 'no run there'),
  ],
)
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
  args[args.index('--learning_rate') + 1] = '0.5'
  assert cli.main(args + ['--no_progress']) == 2
  assert 'other settings' in capsys.readouterr().err


def test_default_config_and_size_follow_model_and_data():
  assert cli.default_config_name('megc2019_flow_images', 'hfanet') == 'flow_images'
  assert cli.default_config_name('megc2019_flow_images', 'ststnet') == 'ststnet'
  assert cli.default_config_name('samm', 'hfanet') == 'frames'
  assert cli.default_config_name('casme2:size_32_missing_apex_middle', 'hfanet') == 'frames'
  assert cli.default_config_name('synthetic', 'hfanet') == 'synthetic'
  s = cli.settings_from_args(cli.make_parser().parse_args(['--dataset', 'megc2019_flow_images']))
  size, why = cli.choose_size(s)
  assert size == 32 and 'native 28 px' in why and 'multiple of 32' in why
  s = cli.settings_from_args(
    cli.make_parser().parse_args(['--dataset', 'megc2019_flow_images', '--model', 'ststnet'])
  )
  assert cli.choose_size(s)[0] == 28 and s['epochs'] == 800 and s['model'] == 'ststnet'
  s = cli.settings_from_args(cli.make_parser().parse_args(['--dataset', 'samm']))
  assert cli.choose_size(s)[0] == 224
  s = cli.settings_from_args(
    cli.make_parser().parse_args(['--dataset', 'megc2019_flow_images', '--size', '64'])
  )
  assert cli.choose_size(s) == (64, 'set by --size')


def test_a_build_config_can_be_chosen(tmp_path):
  assert cli.dataset_name('casme2:size_32_missing_apex_middle') == (
    'casme2',
    'size_32_missing_apex_middle',
  )
  from datasets.load import DatasetNotBuiltError

  with pytest.raises(DatasetNotBuiltError, match='missing_apex middle'):
    cli.load_dataset(
      dict(
        dataset='casme2:size_32_missing_apex_middle',
        data_dir=str(tmp_path),
        size=32,
        classes='composite',
        keep_emotions=None,
      )
    )


def test_out_that_is_a_file_is_a_clear_error(tmp_path, capsys):
  path = tmp_path / 'a_file'
  path.write_text('')
  code = cli.main([*TINY, '--data_dir', str(tmp_path / 'data'), '--out', str(path)])
  assert code == 2 and 'is a file' in capsys.readouterr().err
  code = cli.main([*TINY, '--data_dir', str(tmp_path / 'data'), '--out', str(path / 'run')])
  assert code == 2 and 'cannot be written' in capsys.readouterr().err


def test_results_table_of_finished_runs(tiny_run, tmp_path, capsys):
  from experiments import results

  out, _ = tiny_run
  assert (
    results.main([str(out), str(tmp_path / 'unfinished'), '--out', str(tmp_path / 't.md')]) == 0
  )
  text = capsys.readouterr()
  lines = text.out.strip().splitlines()
  assert lines[0].startswith('| model |') and len(lines) == 3
  summary = json.loads((out / 'summary.json').read_text())
  assert f"{summary['uf1']:.4f}" in lines[2] and 'last epoch' in lines[2]
  assert 'skipping' in text.err and (tmp_path / 't.md').read_text().strip() == text.out.strip()
  assert results.main([str(tmp_path / 'unfinished')]) == 2


def test_a_build_with_other_options_is_found_and_trained_on(tmp_path, capsys):
  """`datasets.build casme2 --missing_apex middle` makes its own config: the trainer says
  how to choose it and trains on it."""
  from datasets import build, synthetic

  synthetic.generate('casme2', tmp_path / 'copy', 2, 0)
  data_dir = tmp_path / 'tfds'
  assert (
    build.main(
      [
        'casme2',
        '--manual_dir',
        str(tmp_path / 'copy' / 'casme2'),
        '--data_dir',
        str(data_dir),
        '--size',
        '32',
        '--missing_apex',
        'middle',
        '--workers',
        '1',
        '--no_progress',
      ]
    )
    == 0
  )
  capsys.readouterr()
  args = [
    '--config',
    'tiny',
    '--model',
    'tests.tiny:TinyNet',
    '--data_dir',
    str(data_dir),
    '--size',
    '32',
    '--no_progress',
    '--out',
    str(tmp_path / 'out'),
  ]
  assert cli.main(['--dataset', 'casme2', *args]) == 2
  err = capsys.readouterr().err
  assert '--dataset casme2:size_32_missing_apex_middle' in err
  assert (
    cli.main(['--dataset', 'casme2:size_32_missing_apex_middle', '--warmup_epochs', '3', *args])
    == 0
  )
  out = capsys.readouterr().out
  assert 'WARNING: --warmup_epochs 3.0 is longer than the run (1 epochs)' in out
  summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
  assert summary['dataset'] == 'casme2:size_32_missing_apex_middle' and summary['n_samples'] > 0


def test_help_says_where_the_run_state_lives():
  """The epilog (the module docstring) puts checkpoints/ and folds/ under state/."""
  text = cli.make_parser().format_help()
  assert 'state/' in text and 'checkpoints' in text
  assert 'OUT/checkpoints' not in text and 'OUT/folds' not in text
