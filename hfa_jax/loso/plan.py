"""Folds, their training/validation/test samples and their index tables (NumPy only).

A fold tests the samples of its test subjects (one for LOSO) and trains on the others,
except, with validation selection, the validation subjects held out of them. Tables
cover ALL folds of the data, so a fold's shapes (hence its random draws and steps) are
the same in a partial run as in the whole one.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from hfa_jax.loso.config import LosoConfig
from hfa_jax.loso.errors import PlanError


def natural_key(s: str):
  """Sort key that orders 's2' before 's10'."""
  return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', str(s))]


@dataclasses.dataclass
class FoldPlan:
  """Host-side index tables of every selected fold (shapes shared by all folds).

  Index tables are padded with their first index; `*_count` says how many are real.
  """

  folds: list  # name of each selected fold (its test subject for LOSO), run order
  fold_ids: list  # index of each among all folds (drives the RNG)
  test_subjects: list  # test subjects of each selected fold
  val_subjects: list  # validation subjects of each selected fold (empty: none)
  train_idx: np.ndarray  # (folds, max_rest) int32: training samples (no validation)
  train_count: np.ndarray  # (folds,) int32
  rest_idx: np.ndarray  # (folds, max_rest) int32: every non-test sample (to retrain)
  rest_count: np.ndarray  # (folds,) int32
  test_idx: np.ndarray  # (folds, test_width) int32
  test_count: np.ndarray  # (folds,) int32
  val_idx: np.ndarray  # (folds, val_width) int32 (val_width 0 without validation)
  val_count: np.ndarray  # (folds,) int32
  eval_batch: int
  steps_per_epoch: int

  @property
  def eval_idx(self) -> np.ndarray:
    """(folds, test_width + val_width): what every evaluation runs, test then validation."""
    return np.concatenate([self.test_idx, self.val_idx], axis=1)

  def test_index(self, i: int) -> np.ndarray:
    return self.test_idx[i, : self.test_count[i]]

  def val_index(self, i: int) -> np.ndarray:
    return self.val_idx[i, : self.val_count[i]]

  def split_eval(self, i: int, logits):
    """Fold i's (test (n_test, C), validation (n_val, C)) logits of an eval row, or
    (None, None) for an epoch that was not evaluated."""
    if logits is None:
      return None, None
    width = self.test_idx.shape[1]
    return logits[: int(self.test_count[i])], logits[width : width + int(self.val_count[i])]


def _by_stratum(subjects, strata) -> dict:
  by_stratum = {}
  for s in sorted(set(subjects), key=natural_key):
    by_stratum.setdefault(strata[s], []).append(s)
  return by_stratum


def subject_groups(subjects, strata, k: int, seed: int) -> list[list[str]]:
  """`subjects` dealt into k groups, each database's spread evenly (deterministic from seed)."""
  by_stratum = _by_stratum(subjects, strata)
  rng = np.random.default_rng([seed, k])
  groups, turn = [[] for _ in range(k)], 0
  for stratum in sorted(by_stratum):
    names = by_stratum[stratum]
    for s in (names[i] for i in rng.permutation(len(names))):
      groups[turn % k].append(s)
      turn += 1
  return [sorted(g, key=natural_key) for g in groups]


def validation_subjects(candidates, strata, fraction: float, seed: int, fold_id: int) -> list:
  """Subjects held out of a fold's training subjects for validation.

  From each database (stratum), round(fraction * its subjects) of them, at least one
  and never all; drawn with a generator seeded by (seed, fold), so the split is
  fixed for a fold whatever else runs.
  """
  rng = np.random.default_rng([seed, fold_id, 1])
  by_stratum = _by_stratum(candidates, strata)
  chosen = []
  for stratum in sorted(by_stratum):
    names = by_stratum[stratum]
    n = min(max(1, round(fraction * len(names))), len(names) - 1)
    chosen += [names[i] for i in sorted(rng.choice(len(names), n, replace=False))]
  return sorted(chosen, key=natural_key)


def _folds(everyone, stratum_of, config: LosoConfig) -> tuple[list, list]:
  """(test subjects of every fold, fold names): one per subject, or grouped folds."""
  if len(everyone) < 2:
    raise PlanError(f'LOSO needs at least 2 subjects, got {everyone}')
  if not config.group_folds:
    return [[s] for s in everyone], everyone
  if config.group_folds > len(everyone):
    raise PlanError(f'group_folds={config.group_folds} but only {len(everyone)} subjects')
  groups = subject_groups(everyone, stratum_of, config.group_folds, config.seed)
  return groups, [f'fold{i + 1}' for i in range(config.group_folds)]


def chosen_folds(names: list, only, grouped: bool) -> list:
  """The folds to run: all, or `only` (checked against `names`)."""
  if only is None:
    return list(names)
  chosen = [str(s) for s in only]
  what = 'folds' if grouped else 'subjects'
  if not chosen:
    raise PlanError(f'no {what} chosen: name at least one, or choose none to run them all')
  unknown = [s for s in chosen if s not in names]
  if unknown:
    raise PlanError(f'unknown {what} {unknown}; the data has {names}')
  if len(set(chosen)) != len(chosen):
    raise PlanError(f'{what} listed twice: {chosen}')
  return chosen


def _table(rows, n: int) -> np.ndarray:
  """Rows of indices padded with their first index to n columns: (len(rows), n) int32."""
  pad = lambda idx: np.concatenate([idx, np.full(n - len(idx), idx[0] if len(idx) else 0)])
  return np.stack([pad(r) for r in rows]).astype(np.int32).reshape(len(rows), n)


def make_plan(labels, subjects, config: LosoConfig, only_subjects=None, strata=None) -> FoldPlan:
  """Splits the samples into folds: LOSO (every subject, or `only_subjects`), or with
  `config.group_folds` subject-grouped folds ('fold1'...; `only_subjects` then names folds).

  strata: (N,) the database of each sample (default one for all): validation
  subjects and grouped folds are drawn per database. PlanError if it cannot be done.
  """
  subjects = np.asarray(subjects).astype(str)
  strata = np.zeros(len(subjects), str) if strata is None else np.asarray(strata).astype(str)
  stratum_of = dict(zip(subjects.tolist(), strata.tolist()))
  everyone = sorted(set(subjects.tolist()), key=natural_key)
  groups, names = _folds(everyone, stratum_of, config)
  chosen = chosen_folds(names, only_subjects, bool(config.group_folds))
  tests, rests, trains, vals, val_subjects = [], [], [], [], []
  for f, group in enumerate(groups):
    test = np.isin(subjects, group)
    held = []
    if config.select_epoch == 'validation':
      held = validation_subjects(
        sorted(set(subjects[~test].tolist())), stratum_of, config.val_fraction, config.seed, f
      )
    val = np.isin(subjects, held)
    tests.append(np.flatnonzero(test))
    rests.append(np.flatnonzero(~test))
    trains.append(np.flatnonzero(~test & ~val))
    vals.append(np.flatnonzero(val))
    val_subjects.append(held)
  if config.select_epoch == 'validation':
    blind = [names[i] for i in range(len(groups)) if not val_subjects[i]]
    if blind:
      raise PlanError(
        f"select_epoch 'validation' holds out round({config.val_fraction} x its training "
        'subjects) of each database, at least one and never all, so a database needs at '
        f'least 2 training subjects; folds {blind[:5]} have none to validate on. Use more '
        "subjects or select_epoch 'last'"
      )
  max_rest = max(len(r) for r in rests)
  max_test = max(len(t) for t in tests)
  max_val = max(len(v) for v in vals)
  eval_batch = min(config.eval_batch_size, max_test)
  width = lambda n: -(-n // eval_batch) * eval_batch
  sel = [names.index(c) for c in chosen]
  pick = lambda rows: [rows[i] for i in sel]
  count = lambda rows: np.array([len(rows[i]) for i in sel], np.int32)
  return FoldPlan(
    folds=chosen,
    fold_ids=sel,
    test_subjects=pick(groups),
    val_subjects=pick(val_subjects),
    train_idx=_table(pick(trains), max_rest),
    train_count=count(trains),
    rest_idx=_table(pick(rests), max_rest),
    rest_count=count(rests),
    test_idx=_table(pick(tests), width(max_test)),
    test_count=count(tests),
    val_idx=_table(pick(vals), width(max_val) if max_val else 0),
    val_count=count(vals),
    eval_batch=eval_batch,
    steps_per_epoch=config.steps_per_epoch or -(-max_rest // config.batch_size),
  )
