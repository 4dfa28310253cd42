"""What happens around the training loop, as callbacks: the progress bar, the timed
checkpoints, the metric logs (TensorBoard events and JSON lines) and a user's hook.

A callback has any of these methods, called in this order by `hfa_jax.loso.run`:
  on_run_start(run: RunStart), on_group_start(group: Group), on_epoch_start(group, phase,
  epoch), on_epoch_end(end: EpochEnd), on_phase_end(end: PhaseEnd), on_group_end(group),
  on_run_end(). At on_group_end the group's fold records are in group.records; the run saves
  them after it (they mark the models finished, so what a callback saves of them comes first).
  A callback that sets `end.stop` at an epoch end (StopAtEpochEnd) has the run call
  on_stop(end) once every callback has seen it: the Checkpointer saves the group there, then
  the callback that asked stops the run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from typing import Callable

import jax
import numpy as np
from tensorboardX import SummaryWriter
from tqdm.auto import tqdm

from hfa_jax import distributed
from hfa_jax.loso.records import GroupHistory, Phase


@dataclasses.dataclass
class RunStart:
  folds: int  # folds of the run
  ensemble: int  # models per fold
  width: int  # models trained at once
  groups: int  # groups left to train
  epochs: int
  phases: int  # phases per group (2 with retraining)
  left: int  # models left to train (the others finished in an earlier part)


@dataclasses.dataclass
class Group:
  """A group of models trained together (padded to the program's width)."""

  index: int  # among the groups of this run
  first: int  # index of its first model among all the run's models
  last: int  # index of its last model
  total: int  # models of the run
  names: list  # its models' names ('s1', 's1#1' for an ensemble's second model, ...)
  history: GroupHistory | None = None  # set once restored or begun
  held: dict | None = None  # what its checkpoint held of the kept models (ModelKeeper.held)
  records: list | None = None  # its models' FoldRecords, set when it ends

  @property
  def label(self) -> str:
    """Its models among the run's, for people: 'models 17-20/120', 'model 3/40'."""
    first, last = self.first + 1, self.last + 1
    return f'model {first}/{self.total}' if first == last else f'models {first}-{last}/{self.total}'


@dataclasses.dataclass
class EpochEnd:
  """An epoch of a group has ended. `models` has, per real model of the group, its
  'name', 'fold' (its fold's name), 'replica', 'train_loss', 'train_accuracy', and where
  evaluated 'test_accuracy' and 'val_uf1' (with validation subjects)."""

  group: Group
  phase: Phase
  epoch: int  # 0-based, within the phase
  models: list
  seconds: float
  samples: int  # training samples seen, all models together
  state: object  # the stacked train states (valid until the next epoch starts)
  history: GroupHistory
  stats: object = None  # precise BatchNorm statistics the evaluation used (F, ...), or {}
  stop: bool = False  # set by a callback to stop the run here: on_stop follows

  @property
  def loss(self) -> np.ndarray:
    return np.array([m['train_loss'] for m in self.models])

  @property
  def accuracy(self) -> np.ndarray:
    return np.array([m['train_accuracy'] for m in self.models])


@dataclasses.dataclass
class PhaseEnd:
  """Validation chose each model's epochs; the retrain phase follows."""

  group: Group
  state: object
  history: GroupHistory


class Callbacks:
  """Calls each event on every callback that has a method for it, in order."""

  def __init__(self, callbacks):
    self.callbacks = [c for c in callbacks if c is not None]

  def __getattr__(self, event: str):
    def call(*args):
      for c in self.callbacks:
        method = getattr(c, event, None)
        if method is not None:
          method(*args)

    return call


class ProgressBar:
  """A tqdm bar over the epochs of all groups, noting that the first epoch compiles."""

  def __init__(self):
    self.bar, self.compiled = None, False

  def on_run_start(self, run: RunStart):
    if not run.groups:
      return
    models = f' x {run.ensemble} models' if run.ensemble > 1 else ''
    self.bar = tqdm(
      total=run.groups * run.epochs * run.phases,
      unit='epoch',
      dynamic_ncols=True,
      desc=f'LOSO {run.folds} folds{models}, {run.width} at a time',
    )
    self.epochs = run.epochs

  def on_group_start(self, group: Group):
    phases = group.history.phases
    done = (len(phases) - 1) * self.epochs + phases[-1].epochs_done
    self._describe(group, phases[-1])
    self.bar.update(done)

  def _describe(self, group: Group, phase: Phase):
    retrain = ' retrain' if phase.name == 'retrain' else ''
    self.bar.set_description(f'{group.label}{retrain}')

  def on_epoch_start(self, group: Group, phase: Phase, epoch: int):
    if not self.compiled:
      self.bar.set_postfix_str('compiling (once; cached for later runs)')
      self.compiled = True

  def on_epoch_end(self, end: EpochEnd):
    self.bar.set_postfix(
      loss=f'{end.loss.mean():.3f}', samples_s=f'{end.samples / end.seconds:.0f}'
    )
    self.bar.update(1)

  def on_phase_end(self, end: PhaseEnd):
    self.bar.total -= self.epochs - max(end.history.chosen)
    self._describe(end.group, end.history.phase)
    self.bar.refresh()

  def on_run_end(self):
    if self.bar is not None:
      self.bar.close()


class Checkpointer:
  """Saves the group in training after the first epoch that ends `minutes` of `clock`
  after the group's start or its last checkpoint (0: after every epoch), at an epoch end
  where the run stops (on_stop: StopAtEpochEnd), and when validation has chosen the epochs
  to retrain for (the run deletes them once the group's kept models and then its fold
  records are saved). A phase's last epoch needs none: the fold records, or the phase-end
  checkpoint, follow it.

  Checkpoint steps grow along the run's models, whatever the grouping of a resumed run.
  With many processes, process 0's clock decides for all (each must take part in a save).
  A `keeper` (ModelKeeper, called before this callback) has what it holds of the group's
  best epochs so far saved with each checkpoint.
  """

  def __init__(  # noqa: PLR0913
    self, store, minutes: float, epochs: int, phases: int, clock: Callable, keeper=None
  ):
    self.store, self.every, self.clock, self.keeper = store, 60 * minutes, clock, keeper
    self.epochs, self.phases = epochs, phases
    self.saved = None  # the step of the last checkpoint

  def _step(self, group: Group, phase_index: int, epochs_done: int) -> int:
    return (group.first * self.phases + phase_index) * self.epochs + epochs_done

  def on_group_start(self, group: Group):
    self.last = self.clock()

  def on_epoch_end(self, end: EpochEnd):
    if end.phase.done or not distributed.first(np.bool_(self.clock() - self.last >= self.every)):
      return
    self._save(self._step(end.group, len(end.history.phases) - 1, end.phase.epochs_done), end)

  def on_stop(self, end: EpochEnd):
    step = self._step(end.group, len(end.history.phases) - 1, end.phase.epochs_done)
    if step != self.saved:  # not saved by the clock at this epoch end already
      self._save(step, end)

  def on_phase_end(self, end: PhaseEnd):
    self._save(self._step(end.group, 1, 0), end)

  def _save(self, step: int, end):
    held = self.keeper.held() if self.keeper is not None else None
    self.store.save(step, end.state, end.history, held)
    self.saved, self.last = step, self.clock()


class MetricLog:
  """Per fold model and epoch, its training loss and accuracy and whatever was evaluated
  (test accuracy, validation UF1), written as they come: TensorBoard event files, one
  folder per model (`tensorboard --logdir DIR` draws every fold's curves in one chart),
  and DIR/metrics.jsonl, one JSON object per model and epoch. Epochs trained again
  after a resume from a checkpoint are logged again (same values)."""

  # TensorBoard tags: PHASE/loss and PHASE/accuracy of the training, test/accuracy of the
  # test subject and validation/uf1 (PHASE 'train', or 'retrain' after validation chose)
  TAGS = dict(
    train_loss='{phase}/loss',
    train_accuracy='{phase}/accuracy',
    test_accuracy='test/accuracy',
    val_uf1='validation/uf1',
  )

  def __init__(self, log_dir):
    self.dir = os.fspath(log_dir)
    self.writers = {}

  def on_run_start(self, run: RunStart):
    if jax.process_index() == 0:
      os.makedirs(self.dir, exist_ok=True)

  def on_epoch_end(self, end: EpochEnd):
    if jax.process_index() != 0:
      return
    lines = []
    for m in end.models:
      writer = self._writer(m['name'])
      for key, tag in self.TAGS.items():
        if m.get(key) is not None:
          name = tag.format(phase=end.phase.name)
          if end.phase.name != 'train' and not tag.startswith('{phase}'):
            name += f'_{end.phase.name}'  # test/accuracy_retrain: the retrained model's
          writer.add_scalar(name, m[key], end.epoch + 1)
      lines.append(
        json.dumps(
          dict(fold=m['name'], phase=end.phase.name, epoch=end.epoch + 1)
          | {k: m[k] for k in self.TAGS if m.get(k) is not None}
        )
      )
    with open(os.path.join(self.dir, 'metrics.jsonl'), 'a') as f:
      f.write('\n'.join(lines) + '\n')
    for w in self.writers.values():
      w.flush()

  def _writer(self, name: str):
    if name not in self.writers:
      self.writers[name] = SummaryWriter(os.path.join(self.dir, name.replace('#', '_model')))
    return self.writers[name]

  def on_group_end(self, group: Group | None = None):
    for w in self.writers.values():
      w.close()
    self.writers.clear()

  on_run_end = on_group_end


class StopAtEpochEnd:
  """Holds back `signals` (SIGTERM: a scheduler's preemption, `kill`) until the end of the
  epoch in progress, where the run saves the group (on_stop: the Checkpointer, before this
  callback) and the signal then goes to the handler that was there before (experiments.loso's
  stops the run, saying how to resume): a resume loses nothing. After a phase's last epoch,
  which the fold records or the phase-end checkpoint follow, it goes as the next epoch starts
  (after the run's last, the run ends). A second signal goes at once.

  With many processes (then Ctrl-C too: a process stopped mid-step on its own would leave the
  others waiting for it in a collective), a signal that reaches any of them stops all at the
  same epoch end, where they learn of it together (a collective) and each takes part in the
  checkpoint.
  """

  def __init__(self, signals=(signal.SIGTERM,)):
    self.signals, self.caught, self.due, self.previous = tuple(signals), 0, 0, {}

  def on_run_start(self, run: RunStart):
    if threading.current_thread() is threading.main_thread():
      self.previous = {s: signal.signal(s, self._catch) for s in self.signals}

  def _catch(self, signum, frame):
    if self.caught:
      self._deliver(signum)
    self.caught = signum

  def on_epoch_start(self, group: Group, phase: Phase, epoch: int):
    if self.due:  # asked for at a phase's last epoch: what followed it is saved
      self._deliver(self.due)

  def on_epoch_end(self, end: EpochEnd):
    self.due = distributed.largest(self.caught)
    if self.due and not end.phase.done:
      end.stop = True

  def on_stop(self, end: EpochEnd):
    if self.due:
      self._deliver(self.due)

  def _deliver(self, signum: int):
    """Gives `signum` to the handler that was there before."""
    self.due = 0
    self.on_run_end()
    signal.raise_signal(signum)

  def on_run_end(self):
    for s, handler in self.previous.items():
      signal.signal(s, handler)
    self.previous = {}


class EpochHook:
  """Adapts a plain function hook(group_index, epoch, info) to the callbacks, info with
  'loss', 'accuracy' (models,), 'seconds' and 'phase'; it may raise to stop the run."""

  def __init__(self, hook: Callable):
    self.hook = hook

  def on_epoch_end(self, end: EpochEnd):
    info = dict(loss=end.loss, accuracy=end.accuracy, seconds=end.seconds, phase=end.phase.name)
    self.hook(end.group.index, end.epoch, info)


def perf_clock() -> float:
  return time.perf_counter()
