"""Re-scoring a finished LOSO run from the fold models it kept (hfa_jax.loso.keep): each
fold's test subjects evaluated again with its saved weights, pooled as the run pooled them."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from hfa_jax import train as train_lib
from hfa_jax import trained
from hfa_jax.loso.config import LosoConfig
from hfa_jax.loso.data import LosoData
from hfa_jax.loso.errors import PlanError
from hfa_jax.loso.keep import model_folder
from hfa_jax.loso.plan import make_plan
from hfa_jax.loso.records import with_scored_logits
from hfa_jax.loso.results import pool
from hfa_jax.loso.store import read_folds


class MissingWeightsError(FileNotFoundError):
  """A run folder without the kept weights of some folds."""


@functools.partial(jax.jit, static_argnames=('model', 'test_flip'))
def logits_of(model, variables, images, test_flip: bool):
  """Logits (B, C) of images (B, S, S, 3); with test_flip, averaged with their mirrors'."""
  logits = model.apply(variables, images, train=False)
  if test_flip:
    logits = (logits + model.apply(variables, train_lib.mirror(images), train=False)) / 2
  return logits


def predict(model, variables, images, test_flip: bool, batch: int) -> np.ndarray:
  """Logits (N, C) of images (N, S, S, 3) in batches of `batch` (the last one padded)."""
  out = []
  for i in range(0, len(images), batch):
    x = images[i : i + batch]
    padded = np.concatenate([x, np.repeat(x[-1:], batch - len(x), 0)]) if len(x) < batch else x
    out.append(np.asarray(logits_of(model, variables, jnp.asarray(padded), test_flip))[: len(x)])
  return np.concatenate(out)


def rescore(run_dir, data: LosoData, config: LosoConfig, model, only_subjects=None) -> dict:
  """run_loso's result for the run in `run_dir` (its state folder), each fold's scored
  logits recomputed from its kept weights. MissingWeightsError names the folds without."""
  records = read_folds(run_dir)
  plan = make_plan(data.labels, data.subjects, config, only_subjects, data.strata)
  want = [(fid, r) for fid in plan.fold_ids for r in range(config.ensemble)]
  unfinished = [k for k in want if k not in records]
  if unfinished:
    raise PlanError(f'{run_dir} has not finished: {len(unfinished)} fold model(s) lack a record')
  paths = {k: model_folder(run_dir, records[k].fold, k[1]) for k in want}
  missing = sorted(records[k].fold for k, path in paths.items() if not os.path.isdir(path))
  if missing:
    raise MissingWeightsError(
      f'{run_dir} kept no weights for {len(missing)} of {len(want)} fold model(s) '
      f'({", ".join(missing[:5])}{", ..." if len(missing) > 5 else ""}): it ran with '
      'keep_models false, before models were kept, or a resume lost a scored epoch. Rerun it '
      'into a new folder to have them.'
    )
  for k in want:
    rec = records[k]
    images = data.images[np.asarray(rec.test_index, np.int64)]
    variables = trained.load_weights(paths[k])
    logits = predict(model, variables, images, config.test_flip, config.eval_batch_size)
    records[k] = with_scored_logits(rec, logits.tolist(), data.labels, config.select_epoch)
  return pool(plan, records, data, config)
