"""Re-scoring a finished LOSO run from the fold models it kept (hfa_jax.loso.keep): each
fold's test subjects evaluated again with its saved weights, pooled as the run pooled them."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from hfa_jax import predict, trained
from hfa_jax.loso.config import LosoConfig
from hfa_jax.loso.data import LosoData
from hfa_jax.loso.errors import PlanError
from hfa_jax.loso.keep import model_folder
from hfa_jax.loso.plan import make_plan
from hfa_jax.loso.records import with_scored_logits
from hfa_jax.loso.results import LosoResult
from hfa_jax.loso.store import read_folds


class MissingWeightsError(FileNotFoundError):
  """A run folder without the kept weights of some folds."""


def finished_result(run_dir, data: LosoData, config: LosoConfig, only_subjects=None) -> LosoResult:
  """The LosoResult of the finished run whose state folder is `run_dir` (its fold records, the
  plan remade from `data` and `config`); PlanError if a fold model has no record yet."""
  records = read_folds(run_dir)
  plan = make_plan(data.labels, data.subjects, config, only_subjects, data.strata)
  want = [(fid, r) for fid in plan.fold_ids for r in range(config.ensemble)]
  unfinished = [k for k in want if k not in records]
  if unfinished:
    raise PlanError(f'{run_dir} has not finished: {len(unfinished)} fold model(s) lack a record')
  return LosoResult(plan, {k: records[k] for k in want}, data, config)


def rescore(run_dir, data: LosoData, config: LosoConfig, model, only_subjects=None) -> LosoResult:
  """The result of the run in `run_dir` (its state folder), each fold's scored logits
  recomputed from its kept weights. MissingWeightsError names the folds without."""
  result = finished_result(run_dir, data, config, only_subjects)
  records = dict(result.records)
  paths = {k: model_folder(run_dir, rec.fold, k[1]) for k, rec in records.items()}
  missing = sorted(records[k].fold for k, path in paths.items() if not os.path.isdir(path))
  if missing:
    raise MissingWeightsError(
      f'{run_dir} kept no weights for {len(missing)} of {len(records)} fold model(s) '
      f'({", ".join(missing[:5])}{", ..." if len(missing) > 5 else ""}): it ran with '
      'keep_models false, before models were kept, or a resume lost a scored epoch. Rerun it '
      'into a new folder to have them.'
    )
  for k, rec in records.items():
    images = data.images[np.asarray(rec.test_index, np.int64)]
    variables = trained.load_weights(paths[k])
    logits = predict.logits(
      model, variables, images, config.eval_batch_size, config.test_flip, config.flow_norm
    )
    records[k] = with_scored_logits(rec, logits.tolist(), data.labels, config.select_epoch)
  return dataclasses.replace(result, records=records)
