"""The command's side of a run, as trainer callbacks (hfa_jax.loso.callbacks): its wall
clock over all parts and its plain progress log."""

from __future__ import annotations

import collections
import json
import pathlib
import time

import numpy as np

from hfa_jax import files
from hfa_jax.environment import code_version


def duration(seconds: float | None) -> str:
  """A duration for people: '45 min' under an hour, else '9.4 h' ('-' for None)."""
  if seconds is None:
    return '-'
  return f'{seconds / 60:.0f} min' if seconds < 3600 else f'{seconds / 3600:.1f} h'


class WallClock:
  """The wall time of a run over all its parts (a resumed run adds one), with each part's
  process CPU time (all threads; unlike the wall time, not lengthened by other work on the
  machine or by a stopped process) and the code it ran (environment.code_version: the git
  commit), kept in OUT/wall_time.json and updated after every epoch, so that a kill loses at
  most one. A part that trains nothing (a finished run reported again, a refused one) adds
  none. Without `write` (the processes of a job besides process 0) it only keeps time.
  Parts recorded before CPU time and code were kept have None there. It also keeps how many
  fold models the run trains in all ('models': folds x ensemble), so that a report on an
  unfinished run can say how far it has got."""

  def __init__(self, out: pathlib.Path, write: bool = True):
    self.path = out / 'wall_time.json'
    saved = json.loads(self.path.read_text()) if self.path.is_file() else {}
    self.parts = saved.get('parts', [])
    self.cpu_parts = saved.get('cpu_parts', [None] * len(self.parts))
    self.code = saved.get('code', [None] * len(self.parts))
    self.models = saved.get('models')
    self.this_code = code_version()  # asked here, not between epochs
    self.start, self.cpu_start = time.time(), time.process_time()
    self.trained, self.write = False, write

  def on_run_start(self, run):
    self.models = run.folds * run.ensemble

  def on_epoch_end(self, *_):
    if not self.trained:
      self.parts.append(0.0)
      self.cpu_parts.append(0.0)
      self.code.append(self.this_code)
      self.trained = True
    self.parts[-1] = round(time.time() - self.start, 1)
    self.cpu_parts[-1] = round(time.process_time() - self.cpu_start, 1)
    if not self.write:
      return
    saved = dict(parts=self.parts, cpu_parts=self.cpu_parts, code=self.code)
    if self.models is not None:
      saved['models'] = self.models
    files.write_json(self.path, saved, indent=None)

  @property
  def total(self) -> float:
    return round(sum(self.parts), 1)

  @property
  def cpu_total(self) -> float | None:
    """The CPU time of all parts; None where a part's is not known."""
    return None if None in self.cpu_parts else round(sum(self.cpu_parts), 1)


class EpochLog:
  """Plain progress lines for logs (--no_progress): how many models are left (in a run of
  more than one), that the first epoch compiles, then one line per epoch at most every
  `every` seconds, and the last epoch of each phase, named by its models among all the run's
  ('models 17-20/120'), with the time this part of the run has left at the median of the
  last `RECENT` epochs' times ('about 9.4 h left': the recent pace, so that a burst of other
  work on the machine, or its end, does not skew it for long; the first epoch, which
  compiles, not counted; the time between epochs, checkpoints, not either)."""

  RECENT = 25

  def __init__(self, every: float = 60.0, what: str | None = None):
    self.every, self.last, self.started = every, None, False
    self.what = what  # the lines' subject (default: the group's models, 'models 17-20/120')
    self.run, self.epochs_seen = None, 0
    self.recent = collections.deque(maxlen=self.RECENT)  # epoch times, the first not timed

  def on_run_start(self, run):
    self.run = run
    if run.groups and run.folds * run.ensemble > 1:  # of one model (a final model): nothing
      print(
        f'{run.left} of {run.folds * run.ensemble} models ({run.folds} '
        f'fold{"s" * (run.folds != 1)} x {run.ensemble}) '
        f'left to train, {run.width} at a time',
        flush=True,
      )

  def on_epoch_start(self, *_):
    if not self.started:
      print(
        'the first epoch compiles the training program (a minute or more on a CPU; '
        'cached for later runs)',
        flush=True,
      )
      self.started = True

  def on_epoch_end(self, end):
    if self.epochs_seen:
      self.recent.append(end.seconds)
    self.epochs_seen += 1
    now = time.monotonic()
    if self.last is not None and now - self.last < self.every and not end.phase.done:
      return
    self.last = now
    total = f'/{end.phase.epochs}' if end.phase.name == 'train' else ''
    print(
      f'{self.what or end.group.label}, {end.phase.name} epoch {end.epoch + 1}{total}: '
      f'train loss {np.mean(end.loss):.4f}, accuracy {np.mean(end.accuracy):.3f} '
      f'({end.seconds:.1f} s/epoch{self.left(end)})',
      flush=True,
    )

  def left(self, end) -> str:
    """', about 9.4 h left' for the epochs after `end` ('' before an epoch is timed, or
    where the run's shape is not known)."""
    run, phase = self.run, end.phase
    if run is None or end.group is None or not self.recent:
      return ''
    epochs = (run.groups - end.group.index - 1) * run.epochs * run.phases
    epochs += phase.epochs - end.epoch - 1
    if phase.name == 'train' and run.phases == 2:
      epochs += run.epochs  # the retrain phase: at most as long
    if epochs <= 0:
      return ''
    seconds = epochs * float(np.median(self.recent))
    return ', under a minute left' if seconds < 60 else f', about {duration(seconds)} left'
