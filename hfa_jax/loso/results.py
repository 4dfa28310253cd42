"""What a LOSO run gives (`LosoResult`: its plan and every fold model's record) and pooling:
the folds' scored predictions into one set, and UF1 / UAR / accuracy over it (pooled across
all folds, as the MEGC2019 protocol scores), per subject too.

    result = run_loso(...)
    result.pool()                           # the run's figures (its ensemble, its epoch choice)
    result.pool(member=1)                   # ensemble member 1 alone, as a LOSO of its own
    result.pool(select_epoch='best_test')   # each fold's best test epoch (NOT honest, labelled)
    result['metrics']                       # = result.pool()['metrics']
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from hfa_jax import metrics as metrics_lib
from hfa_jax.evaluation import softmax
from hfa_jax.loso.config import LosoConfig
from hfa_jax.loso.data import LosoData
from hfa_jax.loso.plan import FoldPlan, natural_key
from hfa_jax.loso.records import FoldRecord


def _fold_predictions(models: list[FoldRecord], labels, select_epoch: str):
  """(predicted class (n,), class probabilities (n, C), epoch, epochs of every model) of
  one fold; an ensemble averages its models' probabilities."""
  scored = [m.scored(labels, select_epoch) for m in models]
  logits = [np.asarray(l, np.float64) for _, l in scored]
  probs = np.mean([softmax(l) for l in logits], axis=0)
  pred = logits[0].argmax(-1) if len(logits) == 1 else probs.argmax(-1)
  return pred, probs, scored[0][0], [e for e, _ in scored]


def _history(rec: FoldRecord, labels) -> dict:
  h = dict(
    train_loss=rec.train_loss,
    train_accuracy=rec.train_accuracy,
    test_accuracy=rec.test_accuracy(labels),
    val_uf1=rec.val_uf1,
    val_subjects=rec.val_subjects,
  )
  if rec.retrain:
    h['retrain_loss'] = rec.retrain.train_loss
  return h


def _per_subject(predictions: dict, num_classes: int) -> dict:
  out = {}
  for s in sorted(set(predictions['subject'].tolist()), key=natural_key):
    at = predictions['subject'] == s
    y, p = predictions['label'][at], predictions['pred'][at]
    out[s] = dict(
      n=int(at.sum()),
      accuracy=metrics_lib.accuracy(y, p),
      uf1=metrics_lib.uf1(y, p, num_classes),
      uar=metrics_lib.uar(y, p, num_classes),
      fold=str(predictions['fold'][at][0]),
      epoch=int(predictions['epoch'][at][0]),
    )
  return out


def pool(plan: FoldPlan, records: dict, data: LosoData, config: LosoConfig) -> dict:
  """run_loso's result from the fold records {(fold_id, replica): FoldRecord}."""
  labels = data.labels
  idx, fold_of, pred, probs, epoch_used = [], [], [], [], []
  history, selected = {}, {}
  for name, fid in zip(plan.folds, plan.fold_ids):
    models = [records[fid, r] for r in range(config.ensemble)]
    p, pr, e, epochs = _fold_predictions(models, labels, config.select_epoch)
    test_index = np.asarray(models[0].test_index, np.int64)
    idx.append(test_index)
    fold_of += [name] * len(test_index)
    pred.append(p)
    probs.append(pr)
    epoch_used += [e] * len(test_index)
    selected[name] = e if len(epochs) == 1 else epochs
    history[name] = _history(models[0], labels)
  idx = np.concatenate(idx)
  order = np.argsort(idx, kind='stable')
  predictions = dict(
    index=idx[order],
    subject=data.subjects[idx][order],
    fold=np.asarray(fold_of)[order],
    label=labels[idx][order],
    pred=np.concatenate(pred)[order],
    probs=np.concatenate(probs)[order],
    epoch=np.asarray(epoch_used)[order],
  )
  return dict(
    metrics=metrics_lib.summarize(predictions['label'], predictions['pred'], data.num_classes),
    per_subject=_per_subject(predictions, data.num_classes),
    predictions=predictions,
    history=history,
    selected_epoch=selected,
    num_classes=data.num_classes,
    select_epoch=config.select_epoch,
    protocol=config.protocol(),
    steps_per_epoch=plan.steps_per_epoch,
  )


@dataclasses.dataclass(frozen=True)
class LosoResult:
  """A LOSO run's fold plan, the record of every fold model {(fold_id, member): FoldRecord},
  its data and settings; scores the ensemble or any one member, by the run's epoch choice or
  another one (the records keep every evaluated epoch's test logits)."""

  plan: FoldPlan
  records: dict
  data: LosoData
  config: LosoConfig

  def pool(self, member: int | None = None, select_epoch: str | None = None) -> dict:
    """The pooled result (see `pool`) of the ensemble (member None) or of member `member`
    alone, each fold's epoch chosen by `select_epoch` (default: the run's)."""
    config = self.config
    if select_epoch is not None:
      config = dataclasses.replace(config, select_epoch=select_epoch)
    records = self.records
    if member is not None:
      if not 0 <= member < self.config.ensemble:
        raise ValueError(f'member {member}: the run has {self.config.ensemble} per fold')
      records = {(f, 0): self.records[f, member] for f in self.plan.fold_ids}
      config = dataclasses.replace(config, ensemble=1)
    return pool(self.plan, records, self.data, config)

  @functools.cached_property
  def pooled(self) -> dict:
    """The run's own figures: pool() of its ensemble by its epoch choice."""
    return self.pool()

  def __getitem__(self, key: str):
    return self.pooled[key]
