"""Re-scoring a finished LOSO run from the fold models it kept (hfa_jax.loso.keep): each
fold's test subjects evaluated again with its saved weights, pooled as the run pooled them."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

import numpy as np

from hfa_jax import predict, trained
from hfa_jax.loso.config import LosoConfig
from hfa_jax.loso.data import LosoData
from hfa_jax.loso.errors import PlanError, RunMismatchError
from hfa_jax.loso.keep import model_folder
from hfa_jax.loso.plan import make_plan
from hfa_jax.loso.records import with_scored_logits
from hfa_jax.loso.results import LosoResult
from hfa_jax.loso.store import read_folds


class MissingWeightsError(FileNotFoundError):
  """A run folder without the kept weights of some folds."""


class DamagedModelError(OSError):
  """A kept fold model that cannot be read back."""


def finished_result(run_dir, data: LosoData, config: LosoConfig, only_subjects=None) -> LosoResult:
  """The LosoResult of the finished run whose state folder is `run_dir` (its fold records, the
  plan remade from `data` and `config`); PlanError if a fold model has no record yet."""
  check_data(run_dir, data)
  records = read_folds(run_dir)
  plan = make_plan(data.labels, data.subjects, config, only_subjects, data.strata)
  want = [(fid, r) for fid in plan.fold_ids for r in range(config.ensemble)]
  unfinished = [k for k in want if k not in records]
  if unfinished:
    raise PlanError(f'{run_dir} has not finished: {len(unfinished)} fold model(s) lack a record')
  return LosoResult(plan, {k: records[k] for k in want}, data, config)


def check_data(run_dir, data: LosoData):
  """RunMismatchError unless `data` are the data the run in `run_dir` (its state folder)
  trained on, by the fingerprint in its run.json (a rebuilt dataset differs)."""
  path = os.path.join(run_dir, 'run.json')
  if not os.path.isfile(path):
    return
  with open(path) as f:
    recorded = json.load(f).get('data')
  now = data.fingerprint()
  if recorded is not None and recorded != now:
    what = [k for k in now if recorded.get(k) != now.get(k)]
    raise RunMismatchError(
      f'the dataset differs from the one the run in {os.path.dirname(run_dir)} trained on '
      f'(its {", ".join(what)}: {recorded.get("n")} samples then, {now["n"]} now; rebuilt or '
      'another build): its folds would score other images. Use the build the run used'
    )


def rescore(
  run_dir,
  data: LosoData,
  config: LosoConfig,
  model,
  only_subjects=None,
  on_fold: Callable[[str, int, int], None] | None = None,
) -> LosoResult:
  """The result of the run in `run_dir` (its state folder), each fold's scored logits
  recomputed from its kept weights (`on_fold(name, done, total)` after each).
  MissingWeightsError names the folds without, DamagedModelError a kept model that cannot be
  read, RunMismatchError other data than the run's."""
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
  largest = max(len(rec.test_index) for rec in records.values())
  batch = min(config.eval_batch_size, 1 << (largest - 1).bit_length())  # one program for all
  for done, (k, rec) in enumerate(records.items(), 1):
    images = data.images[np.asarray(rec.test_index, np.int64)]
    variables = _read(paths[k])
    logits = predict.logits(
      model, variables, images, batch, config.test_flip, config.flow_norm, pad=True
    )
    records[k] = with_scored_logits(rec, logits.tolist(), data.labels, config.select_epoch)
    if on_fold is not None:
      on_fold(rec.fold, done, len(records))
  return dataclasses.replace(result, records=records)


def _read(path: str) -> dict:
  """A kept model's variables; DamagedModelError saying which and why in one line."""
  try:
    return trained.load_weights(path)
  except Exception as e:  # noqa: BLE001 (orbax and tensorstore raise many kinds)
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise DamagedModelError(
      f'the kept model {path} cannot be read ({type(e).__name__}: {reason}): the file is '
      'damaged or incomplete. Rerun the run into a new folder to have it again'
    ) from None
