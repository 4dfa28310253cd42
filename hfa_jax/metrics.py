"""Classification metrics for micro-expression recognition (numpy, host side).

All metrics are computed over predictions POOLED across the LOSO folds (the MEGC
protocol), never averaged per fold.

Conventions for classes, which matter only where a class is missing from `y_true`
(per subject, or a partial LOSO; pooled over a whole LOSO every class occurs):
- UF1 averages F1 over the classes that occur in `y_true` OR in `y_pred`: a class that
  is predicted but absent from the ground truth has F1 = 0 and counts (the MEGC 2019
  evaluation code, HTNet's and sklearn's `f1_score(average='macro')`).
- UAR averages recall over the classes that occur in `y_true` (recall is undefined
  for the others; sklearn would count them as 0).
A class that occurs but is never predicted has recall 0 and F1 0.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
  """Counts (num_classes, num_classes) int64: rows true class, columns predicted."""
  y_true = np.asarray(y_true, np.int64).reshape(-1)
  y_pred = np.asarray(y_pred, np.int64).reshape(-1)
  if y_true.shape != y_pred.shape:
    raise ValueError(f'y_true {y_true.shape} and y_pred {y_pred.shape} differ in length')
  for name, y in (('y_true', y_true), ('y_pred', y_pred)):
    if y.size and (y.min() < 0 or y.max() >= num_classes):
      raise ValueError(f'{name} has labels outside 0..{num_classes - 1}')
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (y_true, y_pred), 1)
  return cm


def per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
  """Per-class support, precision, recall, F1 from a confusion matrix (rows true).

  Undefined ratios (0/0) are 0; `present` marks classes with support > 0, `seen`
  classes that are true or predicted at least once.
  """
  cm = np.asarray(cm, np.float64)
  tp = np.diag(cm)
  support = cm.sum(1)
  predicted = cm.sum(0)
  div = lambda a, b: np.divide(a, b, out=np.zeros_like(a), where=b > 0)
  precision = div(tp, predicted)
  recall = div(tp, support)
  f1 = div(2 * tp, support + predicted)  # == 2PR/(P+R), and 0 when tp == 0
  return dict(
    support=support.astype(np.int64),
    precision=precision,
    recall=recall,
    f1=f1,
    present=support > 0,
    seen=(support + predicted) > 0,
  )


def uf1(y_true, y_pred, num_classes: int) -> float:
  """Unweighted F1: mean F1 over the classes present in y_true or y_pred."""
  return float(uf1_of_confusions(confusion_matrix(y_true, y_pred, num_classes)))


def uar(y_true, y_pred, num_classes: int) -> float:
  """Unweighted average recall: mean recall over the classes present in y_true."""
  pc = per_class(confusion_matrix(y_true, y_pred, num_classes))
  return float(pc['recall'][pc['present']].mean()) if pc['present'].any() else float('nan')


def accuracy(y_true, y_pred) -> float:
  y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
  return float((y_true == y_pred).mean()) if y_true.size else float('nan')


def summarize(y_true, y_pred, num_classes: int) -> dict:
  """UF1, UAR, accuracy, sample count and confusion matrix (as nested lists)."""
  cm = confusion_matrix(y_true, y_pred, num_classes)
  pc = per_class(cm)
  mean = lambda v, m: float(v[m].mean()) if m.any() else float('nan')
  return dict(
    uf1=float(uf1_of_confusions(cm)),
    uar=mean(pc['recall'], pc['present']),
    accuracy=accuracy(y_true, y_pred),
    n=int(cm.sum()),
    confusion=cm.tolist(),
    f1_per_class=pc['f1'].tolist(),
    recall_per_class=pc['recall'].tolist(),
    support=pc['support'].tolist(),
  )


def by_group(y_true, y_pred, groups, num_classes: int) -> dict:
  """summarize() of the samples of each group (e.g. each database), keyed by group name."""
  y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
  return {
    str(g): summarize(y_true[groups == g], y_pred[groups == g], num_classes)
    for g in sorted(set(groups.tolist()))
  }


def uf1_of_confusions(cm: np.ndarray) -> np.ndarray:
  """UF1 of each confusion matrix in `cm` (..., C, C), rows true: uf1's convention (the mean
  F1 over the classes true or predicted), vectorised over the leading axes."""
  cm = np.asarray(cm, np.float64)
  tp = np.diagonal(cm, axis1=-2, axis2=-1)
  seen = cm.sum(-1) + cm.sum(-2)  # support + predicted
  f1 = np.divide(2 * tp, seen, out=np.zeros_like(tp), where=seen > 0)
  count = (seen > 0).sum(-1)
  return np.divide(f1.sum(-1), count, out=np.full(count.shape, np.nan), where=count > 0)


def subject_bootstrap_uf1(
  y_true, preds, subjects, num_classes: int, replicates: int = 10000, seed: int = 0, strata=None
) -> np.ndarray:
  """UF1 (replicates, M) of each of M prediction vectors `preds` (M, n) of the same samples,
  pooled over a resample of the subjects: each replicate draws as many subjects as there
  are, with replacement, and pools their samples (a subject drawn twice counts twice), as a
  LOSO over another draw of subjects from the same population would. With `strata` (per
  sample, e.g. its database; one per subject) each stratum's subjects are drawn among
  themselves, as many as it has, so every replicate keeps the composite's make-up. All M
  share each replicate's draw, so differences between them are paired."""
  y_true, preds = np.asarray(y_true, np.int64), np.atleast_2d(np.asarray(preds, np.int64))
  names, subject = np.unique(np.asarray(subjects), return_inverse=True)
  s, c = len(names), num_classes
  # per member and subject its confusion counts (M, S, C * C)
  cells = subject * c * c + y_true * c
  per_subject = np.stack(
    [np.bincount(cells + p, minlength=s * c * c).reshape(s, c * c) for p in preds]
  )
  rng = np.random.default_rng(seed)
  draws = np.concatenate(
    [
      members[rng.integers(0, len(members), size=(replicates, len(members)))]
      for members in stratum_subjects(subject, s, strata)
    ],
    axis=1,
  )
  weights = np.stack([np.bincount(d, minlength=s) for d in draws])  # (B, S) multiplicities
  cm = np.einsum('bs,msk->bmk', weights, per_subject).reshape(replicates, len(preds), c, c)
  return uf1_of_confusions(cm)


def stratum_subjects(subject: np.ndarray, count: int, strata=None) -> list[np.ndarray]:
  """The subject numbers (of `count`; `subject` per sample) of each stratum, in the order of
  the strata's names; one stratum of all where `strata` is None. ValueError where a subject's
  samples lie in two strata."""
  if strata is None:
    return [np.arange(count)]
  names, stratum = np.unique(np.asarray(strata), return_inverse=True)
  of_subject = np.full(count, -1)
  for sub, st in zip(subject.tolist(), stratum.tolist()):
    if of_subject[sub] not in (-1, st):
      raise ValueError(f'subject number {sub} has samples in two strata: no stratified draw')
    of_subject[sub] = st
  return [np.flatnonzero(of_subject == k) for k in range(len(names))]
