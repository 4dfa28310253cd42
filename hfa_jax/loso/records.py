"""What a LOSO run keeps of its folds, as JSON-ready dataclasses: the history of a group
of models in training (`GroupHistory`, saved with each checkpoint) and the record of a
finished fold model (`FoldRecord`, saved as state/folds/fold_NNNN.json), with the
choice of the scored epoch and the check that its logits are finite.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hfa_jax import metrics as metrics_lib
from hfa_jax.loso.config import LosoConfig
from hfa_jax.loso.data import LosoData
from hfa_jax.loso.errors import NonFiniteError
from hfa_jax.loso.plan import FoldPlan


@dataclasses.dataclass
class Phase:
  """One training phase of a group of models: 'train', or 'retrain' (on all training
  subjects, for the epochs that validation chose). Per epoch, each model's values."""

  name: str
  epochs: int
  epochs_done: int = 0
  train_loss: list = dataclasses.field(default_factory=list)  # [epoch][model]
  train_accuracy: list = dataclasses.field(default_factory=list)  # [epoch][model]
  eval_logits: list = dataclasses.field(default_factory=list)  # [epoch][model] (Te, C) or None

  def add_epoch(self, loss, accuracy, logits):
    """Appends an epoch: loss, accuracy (models,), logits (models, Te, C) or None."""
    self.train_loss.append(np.asarray(loss, np.float64).tolist())
    self.train_accuracy.append(np.asarray(accuracy, np.float64).tolist())
    self.eval_logits.append(None if logits is None else np.asarray(logits, np.float64).tolist())
    self.epochs_done += 1

  def logits_of(self, epoch: int, j: int):
    """Model j's eval logits after `epoch` (0-based), or None if not evaluated then."""
    logits = self.eval_logits[epoch]
    return None if logits is None else logits[j]

  @property
  def done(self) -> bool:
    return self.epochs_done == self.epochs


@dataclasses.dataclass
class GroupHistory:
  """The training of a group of models so far: its models' names (which identify the
  group's checkpoint), its phases, the epochs validation chose (with retraining), and the
  samples per evaluation row its evaluated logits were laid out in (None: not recorded)."""

  models: list
  phases: list
  chosen: list | None = None
  eval_batch: int | None = None

  @classmethod
  def new(cls, models: list, epochs: int, eval_batch: int | None = None) -> GroupHistory:
    return cls(models=list(models), phases=[Phase('train', epochs)], eval_batch=eval_batch)

  @classmethod
  def from_json(cls, d: dict) -> GroupHistory:
    return cls(d['models'], [Phase(**p) for p in d['phases']], d['chosen'], d.get('eval_batch'))

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @property
  def phase(self) -> Phase:
    """The phase in progress (or the last one)."""
    return self.phases[-1]


@dataclasses.dataclass
class Retrained:
  """A fold model retrained on all its training subjects for the chosen epochs."""

  train_loss: list
  train_accuracy: list
  test_logits: list  # (n_test, C) after the chosen epoch


@dataclasses.dataclass
class FoldRecord:
  """Everything kept of one finished fold model (JSON: state/folds/fold_NNNN.json)."""

  fold: str  # its name (the test subject for LOSO)
  subjects: list  # its test subjects
  fold_id: int  # its index among all folds
  replica: int  # its member of an ensemble (0: the first, or the only one)
  test_index: list  # sample indices tested
  val_subjects: list
  val_index: list
  train_loss: list  # per epoch
  train_accuracy: list  # per epoch
  test_logits: list  # per epoch: (n_test, C) or None where not evaluated
  val_uf1: list  # per epoch: float or None; [] without validation subjects
  selected_epoch: int | None = None  # chosen by validation
  retrain: Retrained | None = None
  rescored_epoch: int | None = None  # the epoch whose logits re-scoring replaced (kept)

  @classmethod
  def from_json(cls, d: dict) -> FoldRecord:
    retrain = d.get('retrain')
    return cls(**(d | dict(retrain=Retrained(**retrain) if retrain else None)))

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  def test_accuracy(self, labels) -> list:
    """Test accuracy after each epoch (nan where not evaluated)."""
    y = labels[np.asarray(self.test_index, np.int64)]
    return [
      float('nan') if l is None else float((np.asarray(l).argmax(-1) == y).mean())
      for l in self.test_logits
    ]

  def scored(self, labels, select_epoch: str) -> tuple[int, list]:
    """(epoch, test logits (n, C)) of the epoch that `select_epoch` scores (scored_epoch)."""
    if select_epoch == 'validation':
      e = self.selected_epoch
      if e is None:
        raise ValueError(
          f"fold {self.fold} chose no epoch by validation (its run did not select_epoch "
          "'validation'): score it at 'last' or 'best_test'"
        )
      return e, (self.retrain.test_logits if self.retrain else self.test_logits[e - 1])
    if select_epoch == 'best_test' and self.rescored_epoch is not None:
      return self.rescored_epoch, self.test_logits[self.rescored_epoch - 1]
    test = self.test_accuracy(labels) if select_epoch == 'best_test' else ()
    e = scored_epoch(select_epoch, len(self.test_logits), test_accuracy=test)
    return e, self.test_logits[e - 1]


def with_scored_logits(rec: FoldRecord, logits: list, labels, select_epoch: str) -> FoldRecord:
  """A copy of `rec` whose scored test logits are `logits` (n, C) (e.g. recomputed from the
  kept weights), scored at the same epoch: 'best_test' keeps it (rescored_epoch) even where
  the new logits change that epoch's test accuracy, since the kept weights are that epoch's."""
  epoch, _ = rec.scored(labels, select_epoch)
  if rec.retrain is not None:
    return dataclasses.replace(rec, retrain=dataclasses.replace(rec.retrain, test_logits=logits))
  test_logits = list(rec.test_logits)
  test_logits[epoch - 1] = logits
  return dataclasses.replace(rec, test_logits=test_logits, rescored_epoch=epoch)


def validation_uf1(plan: FoldPlan, i: int, phase: Phase, j: int, labels, num_classes) -> list:
  """Validation UF1 of fold i (model j of its group) after every epoch of `phase` (None:
  not evaluated); [] without validation subjects."""
  if not plan.val_count[i]:
    return []
  y = labels[plan.val_index(i)]
  out = []
  for e in range(len(phase.eval_logits)):
    _, val = plan.split_eval(i, phase.logits_of(e, j))
    out.append(None if val is None else metrics_lib.uf1(y, np.asarray(val).argmax(-1), num_classes))
  return out


def scored_epoch(select_epoch: str, epochs: int, val_uf1=(), test_accuracy=()) -> int:
  """The epoch (1-based) that `select_epoch` scores among a model's first `epochs`, from its
  curves so far (per epoch; None or nan where not evaluated): 'last', the last; 'validation',
  the best validation UF1, the later one on ties; 'best_test', the best test accuracy, the
  earlier one on ties (NOT honest). The one rule for the records, the kept models and pooling."""
  if select_epoch == 'last':
    return epochs
  if select_epoch == 'validation':
    uf1 = np.array([-1.0 if u is None else u for u in val_uf1[:epochs]], np.float64)
    return int(len(uf1) - np.argmax(uf1[::-1]))
  if select_epoch == 'best_test':
    acc = np.nan_to_num(np.asarray(test_accuracy[:epochs], np.float64), nan=-1.0)
    return int(np.argmax(acc)) + 1
  raise ValueError(f'unknown select_epoch {select_epoch!r}')


def fold_record(
  plan: FoldPlan,
  i: int,
  replica: int,
  history: GroupHistory,
  j: int,
  data: LosoData,
  config: LosoConfig,
) -> FoldRecord:
  """The record of fold i's model `replica`, model j of its finished group.

  Raises NonFiniteError if the logits that will be scored are not finite.
  """
  train = history.phases[0]
  val_uf1 = validation_uf1(plan, i, train, j, data.labels, data.num_classes)
  rec = FoldRecord(
    fold=plan.folds[i],
    subjects=plan.test_subjects[i],
    fold_id=plan.fold_ids[i],
    replica=replica,
    test_index=plan.test_index(i).tolist(),
    val_subjects=plan.val_subjects[i],
    val_index=plan.val_index(i).tolist(),
    train_loss=[e[j] for e in train.train_loss],
    train_accuracy=[e[j] for e in train.train_accuracy],
    test_logits=[plan.split_eval(i, train.logits_of(e, j))[0] for e in range(train.epochs_done)],
    val_uf1=val_uf1,
  )
  if config.select_epoch == 'validation':
    rec.selected_epoch = (
      history.chosen[j]
      if history.chosen is not None
      else scored_epoch('validation', len(val_uf1), val_uf1)
    )
  if config.retrain:
    phase = history.phases[1]
    rec.retrain = Retrained(
      train_loss=[x[j] for x in phase.train_loss],
      train_accuracy=[x[j] for x in phase.train_accuracy],
      test_logits=plan.split_eval(i, phase.logits_of(rec.selected_epoch - 1, j))[0],
    )
  check_finite(rec, data.labels, config)
  return rec


def check_finite(rec: FoldRecord, labels, config: LosoConfig):
  """NonFiniteError naming the fold if the logits it scores are not finite."""
  epoch, logits = rec.scored(labels, config.select_epoch)
  if np.isfinite(np.asarray(logits, np.float64)).all():
    return
  bad = np.flatnonzero(~np.isfinite(np.asarray(rec.train_loss, np.float64)))
  when = f'; its training loss is not finite from epoch {bad[0] + 1}' if len(bad) else ''
  raise NonFiniteError(
    f'fold {rec.fold}: the logits of epoch {epoch} are not finite{when}. The training '
    'diverged: lower the learning rate, or set grad_clip.'
  )
