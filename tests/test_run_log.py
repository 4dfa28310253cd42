"""The plain progress lines of --no_progress: a resumed run says how many models are left and
names each group's models among all the run's, as the progress bar does."""

import json
import types

from experiments.run_log import EpochLog, WallClock
from hfa_jax.environment import code_version
from hfa_jax.loso.callbacks import Group, RunStart


def _end(first, last, epoch, done=False):
  group = Group(first // 4, first, last, 120, [])
  phase = types.SimpleNamespace(name='train', epochs=200, done=done)
  return types.SimpleNamespace(
    group=group, phase=phase, epoch=epoch, loss=[0.5, 0.25], accuracy=[1.0, 0.5], seconds=9.04
  )


def test_a_resumed_run_says_what_is_left_and_names_its_models(capsys):
  log = EpochLog(every=3600)
  log.on_run_start(RunStart(40, 3, 4, 26, 200, 1, 104))
  log.on_epoch_start()
  log.on_epoch_end(_end(16, 19, 0))
  log.on_epoch_end(_end(16, 19, 1))  # within `every`: no line
  log.on_epoch_end(_end(16, 19, 199, done=True))  # a phase's last epoch: always a line
  log.on_epoch_end(_end(119, 119, 199, done=True))
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == '104 of 120 models (40 folds x 3) left to train, 4 at a time'
  assert lines[1].startswith('the first epoch compiles')
  assert lines[2:] == [
    'models 17-20/120, train epoch 1/200: train loss 0.3750, accuracy 0.750 (9.0 s/epoch)',
    'models 17-20/120, train epoch 200/200: train loss 0.3750, accuracy 0.750 (9.0 s/epoch)',
    'model 120/120, train epoch 200/200: train loss 0.3750, accuracy 0.750 (9.0 s/epoch)',
  ]


def test_a_finished_run_says_nothing_is_left(capsys):
  EpochLog().on_run_start(RunStart(1, 1, 1, 0, 2, 1, 0))
  assert capsys.readouterr().out == ''


def test_a_final_model_is_named_as_told(capsys):
  """final_model's lines: one model, no group (its epochs end with group None)."""
  log = EpochLog(what='final model')
  end = _end(0, 0, 7, done=True)
  end.group = None
  log.on_epoch_end(end)
  assert capsys.readouterr().out.startswith('final model, train epoch 8/200: train loss 0.3750')


def test_a_part_resumed_from_an_older_record_keeps_its_own_cpu_time_and_code(tmp_path):
  """A run folder whose wall_time.json has wall times only (parts recorded before CPU time and
  code were kept): those parts read None, the new part its own CPU time and code."""
  (tmp_path / 'wall_time.json').write_text(json.dumps(dict(parts=[120.0, 30.5])))
  clock = WallClock(tmp_path)
  assert clock.cpu_total is None
  clock.on_epoch_end()
  clock.on_epoch_end()  # the same part: updated, not added
  saved = json.loads((tmp_path / 'wall_time.json').read_text())
  assert saved['parts'][:2] == [120.0, 30.5] and len(saved['parts']) == 3
  assert saved['cpu_parts'][:2] == [None, None] and saved['cpu_parts'][2] >= 0.0
  assert saved['code'] == [None, None, code_version()]
  again = WallClock(tmp_path)  # the next part reads all three back
  assert (again.parts, again.cpu_parts, again.code) == (
    saved['parts'],
    saved['cpu_parts'],
    saved['code'],
  )
