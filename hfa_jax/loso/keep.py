"""Keeping each fold's scored model: the variables that its scored evaluation used (the
moving average where kept, the precise BatchNorm statistics where recomputed), saved with
orbax in the run's state folder (OUT/state/) as models/FOLD/ (models/FOLD_model1/, ... for
an ensemble's other members) when its group ends, before the group's fold records, which mark
the models finished. HFA-Net takes 86 MB a fold (`du`, float32).

The scored epoch is known as training goes: the last one; with retraining, the epoch that
validation chose, whose model is saved as soon as it is trained (final: a stop after it loses
none); otherwise ('validation' or 'best_test' without retraining) the best epoch so far, by
the rule of records.scored_epoch (validation UF1, the later on ties; test accuracy, the
earlier), whose variables are held until the group ends and go into each checkpoint of the
group (`held`; the Checkpointer saves them beside the state), so that a resume holds the best
epoch trained before the stop. A model is saved only if the epoch held is the one its record
scores.

With many processes (hfa_jax.distributed) every process gathers the variables of the folds
that the others train and calls the orbax save alike; process 0 writes the files.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from hfa_jax import distributed, trained
from hfa_jax.loso.callbacks import EpochEnd, Group


def model_folder(run_dir, fold: str, replica: int = 0) -> str:
  """Where a fold model's weights are kept in a run folder."""
  return os.path.join(run_dir, 'models', fold + (f'_model{replica}' if replica else ''))


def scored_variables(state, stats) -> dict:
  """The stacked variables {'params', 'batch_stats'} (F, ...) an evaluation of `state` used."""
  if state.ema is not None:
    params, batch_stats = state.ema['params'], state.ema['batch_stats']
  else:
    params, batch_stats = state.params, state.batch_stats
  return dict(params=params, batch_stats=stats if stats else batch_stats)


class ModelKeeper:
  """A callback that keeps each fold model's scored variables (see the module docstring)."""

  def __init__(self, run_dir, labels, select_epoch: str, retrain: bool):
    self.dir, self.labels = run_dir, labels
    self.select_epoch, self.retrain = select_epoch, retrain

  def on_group_start(self, group: Group):
    self.kept = {}  # model j -> (phase, epoch 1-based, variables; None once saved)
    self.best = {}  # model j -> the best value so far of its scoring curve (train phase)
    for j, (epoch, best, variables) in (group.held or {}).items():  # from its checkpoint
      self.kept[j], self.best[j] = ('train', epoch, variables), best

  def _is_scored(self, end: EpochEnd, j: int) -> bool:
    """Whether this epoch is (so far) model j's scored epoch (records.scored_epoch's rule)."""
    m, epoch = end.models[j], end.epoch + 1
    if self.retrain:
      return end.phase.name == 'retrain' and epoch == end.history.chosen[j]
    if self.select_epoch == 'last':
      return end.phase.done
    key = 'val_uf1' if self.select_epoch == 'validation' else 'test_accuracy'
    value, best = m.get(key), self.best.get(j, -np.inf)
    if value is None or not (value >= best if key == 'val_uf1' else value > best):
      return False
    self.best[j] = value
    return True

  def held(self) -> dict:
    """{model j: (epoch, best value, variables)} of the models whose scored variables are
    held until the group ends (none with retraining or 'last'): what a checkpoint keeps."""
    return {
      j: (epoch, self.best[j], variables)
      for j, (_, epoch, variables) in self.kept.items()
      if variables is not None
    }

  def on_epoch_end(self, end: EpochEnd):
    keep = [j for j in range(len(end.models)) if self._is_scored(end, j)]
    if not keep:
      return
    stacked = distributed.host_copy(scored_variables(end.state, end.stats))
    for j in keep:
      variables = jax.tree.map(lambda x, j=j: np.array(x[j]), stacked)
      if self.retrain:  # the chosen epoch: final, so saved now
        m = end.models[j]
        trained.save_weights(model_folder(self.dir, m['fold'], m['replica']), variables)
        variables = None  # saved
      self.kept[j] = (end.phase.name, end.epoch + 1, variables)

  def on_group_end(self, group: Group):
    for j, record in enumerate(group.records):
      kept = self.kept.get(j)
      epoch, _ = record.scored(self.labels, self.select_epoch)
      want = ('retrain' if record.retrain else 'train', epoch)
      if kept is not None and kept[:2] == want and kept[2] is not None:
        trained.save_weights(model_folder(self.dir, record.fold, record.replica), kept[2])
