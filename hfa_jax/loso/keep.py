"""Keeping each fold's scored model: the variables that its scored evaluation used (the
moving average where kept, the precise BatchNorm statistics where recomputed), saved with
orbax in the run's state folder (OUT/state/) as models/FOLD/ (models/FOLD_model1/, ... for
an ensemble's other members) when its group ends, before the group's fold records, which mark
the models finished. HFA-Net takes 86 MB a fold (`du`, float32).

The scored epoch is known as training goes: the last one; with retraining, the epoch that
validation chose, whose model is saved as soon as it is trained (final: a stop after it loses
none); otherwise the epoch that records.scored_epoch picks from the curves so far (the one
rule the fold records use). A model is saved only if the epoch kept is the one its record
scores (after a resume from a checkpoint, an earlier best of 'validation' or 'best_test'
without retraining may have been trained before the stop: that model's weights are then not
kept, and `experiments.evaluate` says so).

With many processes (hfa_jax.distributed) every process gathers the variables of the folds
that the others train and calls the orbax save alike; process 0 writes the files.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from hfa_jax import distributed, trained
from hfa_jax.loso.callbacks import EpochEnd, Group
from hfa_jax.loso.records import scored_epoch


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
    self.kept = {}  # model j -> (phase, epoch 1-based, variables)
    self.curves = {}  # model j -> (validation UF1, test accuracy) per epoch of its train phase

  def _is_scored(self, end: EpochEnd, j: int) -> bool:
    """Whether this epoch is (so far) model j's scored epoch."""
    m, epoch = end.models[j], end.epoch + 1
    if self.retrain:
      return end.phase.name == 'retrain' and epoch == end.history.chosen[j]
    if self.select_epoch == 'last':
      return end.phase.done
    val, test = self.curves.setdefault(j, ([], []))
    val.append(m.get('val_uf1'))
    test.append(m.get('test_accuracy', float('nan')))
    key = 'val_uf1' if self.select_epoch == 'validation' else 'test_accuracy'
    if m.get(key) is None:
      return False
    return scored_epoch(self.select_epoch, len(val), val, test) == len(val)

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
