"""python -m experiments.loso end to end on a tiny synthetic dataset, and its errors."""

import csv
import importlib.util
import json
import os
import shlex
import subprocess
import sys

import pytest

from experiments import declarations, input_pipeline, options, recipes
from experiments import loso as cli
from hfa_jax import environment
from tests.conftest import ROOT, TINY, run_module


def _run(args, cwd=ROOT):
  """`python -m experiments.loso args` in a subprocess."""
  return run_module('experiments.loso', args, cwd)


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
  assert not list((out / 'state' / 'checkpoints').glob('[0-9]*'))  # none left once finished
  assert len(list((out / 'state' / 'folds').glob('*.json'))) == summary['n_folds']
  # metric logs: per fold and epoch, as JSON lines and as TensorBoard events
  lines = [json.loads(l) for l in (out / 'logs' / 'metrics.jsonl').read_text().splitlines()]
  folds = {r['fold'] for r in lines}
  assert len(folds) == summary['n_folds'] and len(lines) == 2 * len(folds)
  assert {'fold', 'phase', 'epoch', 'train_loss', 'train_accuracy'} <= set(lines[0])
  for fold in folds:
    events = _events(next((out / 'logs' / fold).glob('events.out.tfevents.*')))
    want = [(r['epoch'], r['train_loss']) for r in lines if r['fold'] == fold]
    got = [(step, value) for tag, step, value in events if tag == 'train/loss']
    assert got == pytest.approx(want)
    tags = {tag for tag, _, _ in events}
    assert tags == {'train/loss', 'train/accuracy', 'test/accuracy'}, tags  # no train/test_...


def _events(path):
  """(tag, step, value) of every scalar in a TensorBoard event file (TFRecord framing)."""
  import struct

  from tensorboardX.proto import event_pb2

  data, i, out = path.read_bytes(), 0, []
  while i < len(data):
    (n,) = struct.unpack('<Q', data[i : i + 8])
    event = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
    out += [(v.tag, event.step, v.simple_value) for v in event.summary.value]
    i += 12 + n + 4
  return out


def test_evaluate_rescores_a_finished_run_from_its_kept_weights(tiny_run, tmp_path, capsys):
  from experiments import evaluate

  out, proc = tiny_run
  assert f'kept fold models: 3 in {out}/state/models, ' in proc.stdout  # and what they take
  n = json.loads((out / 'summary.json').read_text())['n_samples']
  before = {p: p.stat().st_mtime for p in out.rglob('*') if p.is_file()}
  assert evaluate.main([str(out), '--out', str(tmp_path / 'ev'), '--no_progress']) == 0
  text = capsys.readouterr().out
  assert text.startswith(f'reading the dataset of {out}') and 're-scoring its kept' in text
  assert 're-scored 3 of 3 fold models (the last: ' in text  # --no_progress: plain lines
  assert f'the same predicted class as the run for {n} of {n} samples' in text and 'UF1' in text
  assert before == {p: p.stat().st_mtime for p in out.rglob('*') if p.is_file()}  # untouched
  run_rows = list(csv.DictReader(open(out / 'predictions.csv')))
  new_rows = list(csv.DictReader(open(tmp_path / 'ev' / 'predictions.csv')))
  assert [r['predicted'] for r in run_rows] == [r['predicted'] for r in new_rows]
  assert evaluate.main([str(tmp_path / 'nothing')]) == 2
  assert 'no run there' in capsys.readouterr().err


def test_evaluate_compare_says_identical_probabilities_are_the_same(tmp_path):
  from experiments import evaluate

  rows = 'subject,sample,predicted,p_a,p_b\ns1,x,a,0.600000,0.400000\n'
  (tmp_path / 'run.csv').write_text(rows)
  (tmp_path / 'new.csv').write_text(rows)
  said = evaluate.compare(tmp_path / 'run.csv', tmp_path / 'new.csv')
  assert said.endswith('probabilities are the same') and 'at most 0' not in said
  (tmp_path / 'new.csv').write_text(rows.replace('0.600000,0.400000', '0.600100,0.399900'))
  said = evaluate.compare(tmp_path / 'run.csv', tmp_path / 'new.csv')
  assert said.endswith('probabilities differ by at most 0.0001')
  # sample by sample, whatever the order; a sample only one file has is named
  two = rows + 's2,y,b,0.100000,0.900000\n'
  (tmp_path / 'run.csv').write_text(two)
  (tmp_path / 'new.csv').write_text(rows.split('\n')[0] + '\ns2,y,b,0.100000,0.900000\n')
  said = evaluate.compare(tmp_path / 'run.csv', tmp_path / 'new.csv')
  assert said == (
    'the same predicted class as the run for 1 of 1 samples; probabilities are the same '
    '(samples: 1 only in the run)'
  )
  (tmp_path / 'new.csv').write_text(rows.split('\n')[0] + '\n')  # a header alone
  said = evaluate.compare(tmp_path / 'run.csv', tmp_path / 'new.csv')
  assert said.endswith('share no sample: nothing to compare')


def _run_copy(out, folder):
  import shutil

  shutil.copytree(out, folder)
  return folder


def test_evaluate_scores_the_kept_weights_not_the_runs_file(tiny_run, tmp_path, capsys):
  """Two folds' kept models swapped: other probabilities (evaluate computes them from the
  weights; it does not read the run's predictions back)."""
  from experiments import evaluate

  run = _run_copy(tiny_run[0], tmp_path / 'run')
  models = run / 'state' / 'models'
  a, b = sorted(p for p in models.iterdir())[:2]
  a.rename(models / 'swap')
  b.rename(a)
  (models / 'swap').rename(b)
  assert evaluate.main([str(run), '--no_progress']) == 0
  text = capsys.readouterr().out
  assert 'probabilities differ by at most' in text and 'probabilities are the same' not in text


def test_evaluate_refuses_other_data_and_a_damaged_model_in_one_line(tiny_run, tmp_path, capsys):
  from experiments import evaluate

  run = _run_copy(tiny_run[0], tmp_path / 'rebuilt')
  path = run / 'state' / 'run.json'
  record = json.loads(path.read_text())
  record['data']['images'] = '0' * 16  # as after a rebuild with other images
  path.write_text(json.dumps(record))
  assert evaluate.main([str(run), '--no_progress']) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and 'the dataset differs from the one the run' in err[0]
  run = _run_copy(tiny_run[0], tmp_path / 'damaged')
  for f in (run / 'state' / 'models').glob('s1/**/d/*'):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
  assert evaluate.main([str(run), '--no_progress']) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith(f'error: the kept model {run}/state/models/s1 ')
  assert 'damaged or incomplete' in err[0]


def test_saved_command_reproduces_and_reloads(tiny_run, tiny_run_copy, tmp_path):
  out, _ = tiny_run
  summary = json.loads((out / 'summary.json').read_text())
  command = shlex.split(summary['command'])
  assert command[:3] == ['python', '-m', 'experiments.loso']
  args = command[3:]
  assert '--seed' in args and '--model' in args and args[args.index('--out') + 1] == str(out)
  # the saved command, into a new folder, trains the same run again
  args[args.index('--out') + 1] = str(tmp_path / 'again')
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f'starting the run in {tmp_path / "again"}' in proc.stdout
  assert (tmp_path / 'again' / 'predictions.csv').read_bytes() == (
    out / 'predictions.csv'
  ).read_bytes()
  # into its own folder (a copy: the shared run is read only), it reports the run again
  out = tiny_run_copy
  args[args.index('--out') + 1] = str(out)
  proc = _run(args + ['--no_progress'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  # a finished run says so first, compiles nothing and adds no part to the wall time
  assert proc.stdout.startswith(f'already finished; reporting its results again from {out}')
  assert 'continuing' not in proc.stdout and 'compiles' not in proc.stdout
  again = json.loads((out / 'summary.json').read_text())
  assert again['uf1'] == summary['uf1'] and again['per_subject'] == summary['per_subject']
  assert again['wall_time_parts'] == summary['wall_time_parts']
  # each part's CPU time and code beside its wall time
  parts = len(summary['wall_time_parts'])
  assert len(summary['cpu_time_parts']) == parts and all(t > 0 for t in summary['cpu_time_parts'])
  assert summary['cpu_time_seconds'] == pytest.approx(sum(summary['cpu_time_parts']), abs=0.2)
  assert summary['code_parts'] == [environment.code_version()] * parts
  proc = _run(['--resume', str(out), '--no_progress'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'input 32 px: set by experiments/configs/tiny.py' in proc.stdout  # not 'set by set by'
  assert (
    json.loads((out / 'summary.json').read_text())['wall_time_parts'] == again['wall_time_parts']
  )


def test_not_built_dataset_prints_the_build_command(tmp_path, capsys):
  code = cli.main(['--dataset', 'samm', '--data_dir', str(tmp_path), '--no_progress'])
  err = capsys.readouterr().err
  assert code == 2
  assert f'hfa_jax build samm --manual_dir DIR --data_dir {tmp_path}' in err


@pytest.mark.parametrize(
  'args, message',
  [
    (['--dataset', 'casme3'], 'dataset must be one of'),
    (['--epochs', '0'], 'must be >= 1'),
    (['--size', '48'], 'multiple of 32'),
    (['--classes', 'native'], 'native applies to'),
    (['--dataset', 'megc2019', '--classes', 'native'], 'native applies to'),
    (['--config', 'no_such_config'], 'no file'),
    (['--augment', 'flip+spin'], 'augment'),
    (['--lr', '-1'], 'learning_rate must be > 0'),
    (['--schedule', 'step'], 'schedule must be one of cosine, constant'),
    (['--select_epoch', 'best'], 'select_epoch must be one of'),
    (['--retrain', 'true'], 'retrain needs select_epoch'),
    (['--epochs', 'many'], "'many' is not an integer"),
    (['--size', '4'], 'size must be >= 8'),
    (['--model', 'nowhere:Net'], 'cannot import'),
    (['--resume', '/nonexistent/run'], 'no run there'),
    (['--subjects='], '--subjects is empty'),
    (
      ['--dataset', 'casme2', '--classes', 'native', '--keep_emotions='],
      '--keep_emotions is empty',
    ),
    (['--config.epochs=0'], 'must be >= 1'),
    (['--config.nosuch=1'], 'unrecognized arguments: --config.nosuch=1\n'),  # no near name
    (['--epoch', '2'], 'unrecognized arguments: --epoch 2 (did you mean --epochs?)'),
    (['--ensem', '2'], 'unrecognized arguments: --ensem 2'),  # no abbreviations
    (['--config.learnin_rate=1'], '(did you mean --learning_rate?)'),
  ],
)
def test_bad_options(args, message, capsys, tmp_path, monkeypatch):
  """A bad value is two lines (what is wrong, where the options are), no traceback,
  nothing written."""
  monkeypatch.chdir(tmp_path)
  with pytest.raises(SystemExit) as e:
    cli.main(args)
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert message in err and len(err.strip().splitlines()) == 2, err
  assert not list(tmp_path.iterdir())


def test_unknown_subjects_are_refused_before_anything_is_written(tiny_data, tmp_path, capsys):
  out = tmp_path / 'unk'
  data = tiny_data
  args = [*TINY, '--data_dir', str(data), '--out', str(out)]
  assert cli.main([*args, '--subjects', 'sub01,nosuch']) == 2
  err = capsys.readouterr().err
  assert "unknown subjects ['nosuch']" in err and 'Traceback' not in err
  assert not out.exists()  # no run.json that a --resume would trip on again


def test_sigterm_stops_like_ctrl_c_and_the_run_resumes(tmp_path, tiny_data):
  """What a cluster scheduler sends on preemption: the run stops at the end of the epoch in
  progress, saved there, says how to resume, exits 143, and the same command finishes it,
  training no epoch twice."""
  import signal
  import time

  out = tmp_path / 'out'
  args = [
    *TINY,
    '--model',
    'tests.tiny:SlowTinyNet',
    '--epochs',
    '6',
    '--checkpoint_minutes',
    '60',  # saved by the stop alone
    '--data_dir',
    str(tiny_data),
    '--out',
    str(out),
  ]
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  proc = subprocess.Popen(
    [sys.executable, '-m', 'experiments.loso', *args],
    cwd=ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  for line in proc.stdout:  # the first epoch's line: training is under way
    if 'train epoch 1/6' in line:
      break
  time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 143, err[-2000:]
  assert 'stopped by SIGTERM. Run the same command again' in err
  assert 'Traceback' not in err, err[-2000:]
  assert list((out / 'state' / 'checkpoints').glob('[0-9]*'))
  again = _run(args)
  assert again.returncode == 0, again.stderr[-2000:]
  assert 'continuing the run' in again.stdout
  assert json.loads((out / 'summary.json').read_text())['n_folds'] == 3
  logged = [json.loads(line) for line in (out / 'logs' / 'metrics.jsonl').open()]
  trained = [(m['fold'], m['epoch']) for m in logged]  # an epoch trained again is logged again
  assert len(trained) == len(set(trained)) == 3 * 6


def test_sigterm_inside_a_model_callback_is_a_stop_too(tmp_path, tiny_data):
  """A SIGTERM can land while a model's host callback runs (jax.debug.print, a hook): the run
  still stops at the epoch's end, saved there, and exits 143 saying how to resume."""
  out = tmp_path / 'out'
  args = [*TINY, '--model', 'tests.tiny:SigtermTinyNet', '--epochs', '4']
  args += ['--checkpoint_minutes', '60', '--data_dir', str(tiny_data), '--out', str(out)]
  env = dict(os.environ, PYTHONPATH=str(ROOT), TINY_SIGTERM_AT='4')
  stopped = subprocess.run(
    [sys.executable, '-m', 'experiments.loso', *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert stopped.returncode == 143, stopped.stderr[-2000:]
  assert 'stopped by SIGTERM. Run the same command again' in stopped.stderr
  assert not (out / 'summary.json').exists()
  assert list((out / 'state' / 'checkpoints').glob('[0-9]*'))


def test_a_sigterm_that_another_error_wraps_is_a_stop():
  """A SIGTERM that stops at once (a second one) raised inside a model's host callback
  reaches the command wrapped in JAX's runtime error: still a stop (Terminated), not a
  failure; a user's error stays one."""
  import signal

  with pytest.raises(cli.Terminated), cli.sigterm_stops():
    try:
      os.kill(os.getpid(), signal.SIGTERM)
    except cli.Terminated as e:
      raise RuntimeError('jax.debug.callback failed') from e  # as JAX wraps it
  with pytest.raises(RuntimeError), cli.sigterm_stops():
    raise RuntimeError('a failure')
  with pytest.raises(options.UsageError), cli.sigterm_stops():
    cli._terminate.received = True
    raise options.UsageError('a user error')


def test_resume_refuses_other_options(tiny_run, capsys):
  out, _ = tiny_run
  with pytest.raises(SystemExit):
    cli.main(['--resume', str(out), '--epochs', '5'])
  assert 'give no other settings' in capsys.readouterr().err


def test_other_settings_in_the_same_out_are_refused(tiny_run_copy, capsys):
  out = tiny_run_copy
  summary = json.loads((out / 'summary.json').read_text())
  args = shlex.split(summary['command'])[3:]
  args[args.index('--out') + 1] = str(out)
  args[args.index('--learning_rate') + 1] = '0.5'
  assert cli.main(args + ['--no_progress']) == 2
  said = capsys.readouterr()
  err = said.err
  assert 'other settings' in err and 'learning_rate: 0.001 in the run, 0.5 given' in err
  assert "'epochs'" not in err  # names what differs, not the whole settings twice
  assert 'already finished' not in said.out  # refused before anything is said of it
  # without --out, these settings go to a folder of their own: the error names it
  args = args[: args.index('--out')] + args[args.index('--out') + 2 :]
  default = options.settings_from_args(options.parse(args)[1]).out
  assert default != out and 'TinyNet-seed0-' in str(default)
  assert (
    f'Give another --out {default} (the default for these settings), or continue that run '
    f'with --resume {out}.' in err
  )


def _settings(*argv):
  _, args = options.parse(list(argv))
  return options.settings_from_args(args)


def test_default_config_and_size_follow_model_and_data():
  assert recipes.default_recipe('megc2019_flow_images', 'hfanet') == 'flow_images'
  assert recipes.default_recipe('megc2019_flow_images', 'ststnet') == 'ststnet'
  assert recipes.default_recipe('samm', 'hfanet') == 'frames'
  assert recipes.default_recipe('casme2:size_32_missing_apex_middle', 'hfanet') == 'frames'
  assert recipes.default_recipe('synthetic', 'hfanet') == 'synthetic'
  s = _settings('--dataset', 'megc2019_flow_images')
  assert s.size == 32 and 'native 28 px' in s.size_reason and 'multiple of 32' in s.size_reason
  s = _settings('--dataset', 'megc2019_flow_images', '--model', 'ststnet')
  assert s.size == 28 and s.training.epochs == 800 and s.experiment.model == 'ststnet'
  assert _settings('--dataset', 'samm').size == 224
  s = _settings('--dataset', 'megc2019_flow_images', '--size', '64')
  assert (s.size, s.size_reason) == (64, 'set by --size')


def test_ml_collections_configs_and_dotted_overrides():
  """Each recipe is an ml_collections get_config(); --config FILE and --config.x=v work
  as the flax examples' do, and are the same as the plain options."""
  import ml_collections

  for name in recipes.recipe_names():
    spec = importlib.util.spec_from_file_location(name, recipes.CONFIG_DIR / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    assert isinstance(config, ml_collections.ConfigDict)
    assert set(config.keys()) <= set(declarations.field_names()), name  # overrides only
  path = 'experiments/configs/flow_images.py'
  s = _settings(f'--config={path}', '--config.epochs=12', '--config.augment', 'flip')
  assert s.recipe == path and s.training.epochs == 12 and s.training.augment == 'flip'
  assert s.training.learning_rate == 5e-4  # the recipe's
  assert _settings('--config', 'flow_images', '--epochs', '12') == _settings(
    '--config', 'flow_images', '--config.epochs=12'
  )


def test_help_shows_the_defaults_of_the_chosen_recipe(capsys):
  """--help lists every setting with the default that the run would use."""
  for argv, epochs in (
    ([], 2),
    (['--dataset', 'megc2019_flow_images'], 8),
    (['--model', 'ststnet'], 800),
  ):
    with pytest.raises(SystemExit):
      cli.main([*argv, '--help'])
    text = capsys.readouterr().out
    assert f'epochs per fold [default {epochs}]' in text, argv
    names = {o for a in options.make_parser()._actions for o in a.option_strings}
    assert all(f'--{n}' in names and f'--{n}' in text for n in declarations.field_names())
    recipe = options.chosen_recipe(argv)
    assert f'Defaults shown: those of experiments/configs/{recipe}.py' in ' '.join(text.split())


def test_a_part_gets_its_own_default_folder():
  whole = _settings('--dataset', 'megc2019_flow_images')
  part = _settings('--dataset', 'megc2019_flow_images', '--subjects', 'sub01,s2')
  assert whole.out != part.out and str(part.out).endswith('-only-sub01+s2')
  many = _settings(
    '--dataset', 'megc2019_flow_images', '--subjects', ','.join(f's{i}' for i in range(20))
  )
  assert '20subjects-' in str(many.out)


def test_a_default_out_differs_when_the_settings_differ():
  """Runs whose results may differ never share a default folder; the execution's settings
  (folds at once, kept models) and the default recipe given by name change nothing."""
  default = _settings()
  assert str(default.out) == 'runs/loso-synthetic-composite-32px-seed0'  # the README's
  outs = {
    _settings(*argv).out
    for argv in (
      [],
      ['--epochs', '1'],
      ['--learning_rate', '0.01'],
      ['--config', 'tiny'],
      ['--synthetic_subjects', '2'],
      ['--select_epoch', 'validation'],
      ['--epochs', '1', '--augment', 'flip+shift', '--mixup', '0.2', '--label_smoothing', '0.1'],
    )
  }
  assert len(outs) == 7
  assert str(_settings('--epochs', '1').out).endswith('-seed0-epochs1')
  for same in (['--keep_models', 'false'], ['--folds_in_parallel', '2'], ['--config', 'synthetic']):
    assert _settings(*same).out == default.out, same
  long = _settings('--epochs', '1', '--augment', 'flip+shift', '--mixup', '0.2', '--lr', '0.1')
  assert long.out.name.startswith('loso-synthetic-composite-32px-seed0-4settings-')


def test_a_recipe_file_named_like_a_stock_recipe_gets_a_folder_of_its_own(tmp_path):
  """A recipe of your own in a file named like one of experiments/configs (the chosen one, or
  another) never gets that recipe's default folder, where its run would be refused; the stock
  file given as a path is the stock recipe."""
  stock = (recipes.CONFIG_DIR / 'synthetic.py').read_text()
  for name in ('synthetic', 'tiny', 'mine'):
    (tmp_path / f'{name}.py').write_text(stock.replace('epochs=2,', 'epochs=5,'))
  default = _settings().out
  assert _settings('--config', str(tmp_path / 'synthetic.py')).out == default.with_name(
    default.name + '-synthetic.py'
  )
  assert _settings('--config', str(tmp_path / 'tiny.py')).out == default.with_name(
    default.name + '-tiny.py'
  )
  assert _settings('--config', 'tiny').out == default.with_name(default.name + '-tiny')
  assert _settings('--config', str(tmp_path / 'mine.py')).out.name == default.name + '-mine'
  assert _settings('--config', str(recipes.CONFIG_DIR / 'synthetic.py')).out == default
  # the input side's reason names the file given (it read 'experiments/configs//...py.py')
  sized = tmp_path / 'sized.py'
  sized.write_text((recipes.CONFIG_DIR / 'tiny.py').read_text())
  assert _settings('--config', str(sized)).size_reason == f'set by {sized}'
  assert _settings('--config', 'tiny').size_reason == 'set by experiments/configs/tiny.py'


def test_the_saved_command_keeps_an_unset_setting_unset():
  """A setting left unset (none: chosen at run time) where the recipe sets it is written
  as none, so that the command does not rerun it with the recipe's value."""
  for argv in (
    ['--folds_in_parallel', 'none'],  # the synthetic recipe trains 1 fold at a time
    ['--config', 'tiny', '--folds_in_parallel', 'none', '--dtype', 'none'],
  ):
    s = _settings(*argv)
    assert s.training.folds_in_parallel is None
    again = _settings(*shlex.split(s.command())[3:])
    assert again.values() == s.values(), argv
  assert '--folds_in_parallel none' in s.command()


def test_the_first_run_keeps_no_fold_models(tmp_path):
  """The README's first run (the synthetic preset) keeps no fold models (HFA-Net's 12 take
  1 GB): its folder stays small; a run ends saying what its kept models take."""
  assert _settings().training.keep_models is False
  assert _settings('--keep_models', 'true').training.keep_models is True
  assert _settings('--dataset', 'megc2019_flow_images').training.keep_models is True
  assert cli.kept_models(tmp_path / 'none').startswith('no fold models kept (--keep_models true')
  (tmp_path / 'models' / 's1').mkdir(parents=True)
  (tmp_path / 'models' / 's1' / 'w').write_bytes(b'0' * 3 * 2**20)
  said = cli.kept_models(tmp_path / 'models')
  assert said.startswith(f'kept fold models: 1 in {tmp_path / "models"}, 3.0 MB')
  assert 'delete that folder to drop them' in said


def test_a_build_config_can_be_chosen(tmp_path):
  s = _settings('--dataset', 'casme2:size_32_missing_apex_middle', '--data_dir', str(tmp_path))
  assert s.experiment.dataset_name == 'casme2'
  assert s.experiment.dataset_config == 'size_32_missing_apex_middle'
  from datasets.load import DatasetNotBuiltError

  with pytest.raises(DatasetNotBuiltError, match='missing_apex middle'):
    input_pipeline.load_dataset(s)


def test_out_that_is_a_file_is_a_clear_error(tmp_path, tiny_data, capsys):
  path = tmp_path / 'a_file'
  path.write_text('')
  code = cli.main([*TINY, '--data_dir', str(tiny_data), '--out', str(path)])
  assert code == 2 and 'is a file' in capsys.readouterr().err
  code = cli.main([*TINY, '--data_dir', str(tiny_data), '--out', str(path / 'run')])
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
  text = options.make_parser(doc=cli.__doc__).format_help()
  assert 'state/' in text and 'checkpoints' in text
  assert 'OUT/checkpoints' not in text and 'OUT/folds' not in text
