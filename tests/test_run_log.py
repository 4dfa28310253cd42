"""The plain progress lines of --no_progress: a resumed run says how many models are left,
names each group's models among all the run's, as the progress bar does, and how long the
rest will take."""

import json
import types

from experiments.run_log import EpochLog, WallClock
from hfa_jax.environment import code_version
from hfa_jax.loso.callbacks import Group, RunStart


def _end(first, last, epoch, done=False, index=0):
  group = Group(index, first, last, 120, [])
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
  log.on_epoch_end(_end(119, 119, 199, done=True, index=25))  # the part's last group
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == '104 of 120 models (40 folds x 3) left to train, 4 at a time'
  assert lines[1].startswith('the first epoch compiles')
  assert lines[2:] == [
    'models 17-20/120, train epoch 1/200: train loss 0.3750, accuracy 0.750 (9.0 s/epoch)',
    # after the first group's last epoch: 25 groups x 200 epochs at the mean of the epochs
    # after the first (9.04 s): 45,200 s
    'models 17-20/120, train epoch 200/200: train loss 0.3750, accuracy 0.750 (9.0 s/epoch, '
    'about 12.6 h left)',
    'model 120/120, train epoch 200/200: train loss 0.3750, accuracy 0.750 (9.0 s/epoch)',
  ]


def test_the_time_left_counts_the_retrain_phase_and_the_later_groups_only(capsys):
  """With validation the train phase is followed by a retrain one (at most as long); the
  epoch that compiled is not timed."""
  log = EpochLog(every=0)
  log.on_run_start(RunStart(40, 1, 4, 10, 20, 2, 40))
  end = _end(0, 3, 0)
  end.seconds = 100.0  # compiling: not counted
  log.on_epoch_end(end)
  end = _end(0, 3, 1)
  end.phase.epochs, end.seconds = 20, 6.0
  log.on_epoch_end(end)
  end = _end(36, 39, 4, index=9)
  end.phase.name, end.phase.epochs, end.seconds = 'retrain', 5, 12.0
  log.on_epoch_end(end)  # the last group's retrain phase, done: nothing left
  lines = capsys.readouterr().out.splitlines()
  assert lines[1].endswith('(100.0 s/epoch)')  # nothing timed yet
  # 9 later groups x 20 epochs x 2 phases + 18 train epochs + at most 20 retrain ones: 398
  # epochs at 6 s, 2,388 s
  assert lines[2].endswith('(6.0 s/epoch, about 40 min left)')
  assert lines[3].endswith('(12.0 s/epoch)')
  end = _end(36, 39, 3, index=9)
  end.phase.name, end.phase.epochs, end.seconds = 'retrain', 5, 12.0
  log.on_epoch_end(end)  # one epoch left at the median of 6, 12, 12 s: not '0 min'
  assert capsys.readouterr().out.strip().endswith('(12.0 s/epoch, under a minute left)')


def test_the_time_left_follows_the_recent_pace(capsys):
  """Epochs slowed by other work on the machine, then back to their pace: the time left is
  at the median of the last RECENT epochs, not skewed by the burst once it is over."""
  log = EpochLog(every=0)
  log.on_run_start(RunStart(40, 1, 4, 10, 101, 1, 40))
  for epoch, seconds in enumerate([60.0] + [30.0] * 40 + [6.0] * EpochLog.RECENT):
    end = _end(0, 3, epoch)
    end.phase.epochs, end.seconds = 101, seconds
    log.on_epoch_end(end)
  lines = capsys.readouterr().out.splitlines()
  # mid-burst, after epoch 21: 9 later groups x 101 epochs + 80 in this one, 989 at 30 s
  assert lines[21].endswith('(30.0 s/epoch, about 8.2 h left)')
  # RECENT epochs after it: 944 epochs at 6 s (the mean of the timed ones, 20.8 s: 5.4 h)
  assert lines[-1].endswith('(6.0 s/epoch, about 1.6 h left)')


def test_a_finished_run_says_nothing_is_left(capsys):
  EpochLog().on_run_start(RunStart(2, 1, 1, 0, 2, 1, 0))
  assert capsys.readouterr().out == ''


def test_a_run_of_one_model_does_not_count_its_models(capsys):
  """A final model's run (one fold, one model) has no 'models left' line, named or not;
  two models have."""
  EpochLog(what='final model').on_run_start(RunStart(1, 1, 1, 1, 200, 1, 1))
  EpochLog().on_run_start(RunStart(1, 1, 1, 1, 200, 1, 1))
  assert capsys.readouterr().out == ''
  EpochLog(what='final model').on_run_start(RunStart(1, 2, 2, 1, 200, 1, 2))
  assert capsys.readouterr().out.startswith('2 of 2 models (1 fold x 2) left to train')


def test_a_final_model_is_named_as_told(capsys):
  """A named model's lines (final_model's), also where its epochs end with no group."""
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


def test_the_clock_keeps_the_runs_total_of_models_across_parts(tmp_path):
  """on_run_start's folds x ensemble goes into wall_time.json with the first epoch, and a
  part that reads the file back keeps it (a record without it reads None, and is written
  without it)."""
  clock = WallClock(tmp_path)
  assert clock.models is None
  clock.on_epoch_end()
  assert 'models' not in json.loads((tmp_path / 'wall_time.json').read_text())
  clock.on_run_start(RunStart(40, 3, 4, 30, 200, 1, 120))
  clock.on_epoch_end()
  assert json.loads((tmp_path / 'wall_time.json').read_text())['models'] == 120
  assert WallClock(tmp_path).models == 120
