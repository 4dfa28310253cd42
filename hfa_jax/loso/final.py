"""The deployable model: a recipe trained on EVERY subject (no test subject), with the same
compiled fold program, batch draws and augmentation as each LOSO fold. Its expected
accuracy is the LOSO result of the same recipe, which a final model cannot measure itself."""

from __future__ import annotations

import time
import types

import jax
import numpy as np
from tqdm.auto import tqdm

from hfa_jax.loso.config import LosoConfig
from hfa_jax.loso.data import LosoData
from hfa_jax.loso.keep import scored_variables
from hfa_jax.loso.keys import fold_key
from hfa_jax.loso.program import ProgramShape, fold_mesh, fold_program, put


def final_shape(config: LosoConfig, n: int, sample_shape: tuple, num_classes: int) -> ProgramShape:
  """The fold program's shape of a final model trained on `n` samples of `sample_shape` (S, S, 3):
  one fold whose training and evaluation tables are the whole dataset."""
  steps = config.steps_per_epoch or -(-n // config.batch_size)
  eval_batch = min(config.eval_batch_size, n)
  return ProgramShape(config.training, steps, eval_batch, (1, *sample_shape), num_classes)


def train_final(data: LosoData, config: LosoConfig, model, progress: bool = True, log=None) -> dict:
  """The variables {'params', 'batch_stats'} (NumPy) of `model` trained on all of `data`
  with `config`'s recipe, as its LOSO folds would evaluate them (the weight average where
  kept, BatchNorm statistics recomputed with precise_bn). Its key is fold_key(seed, number
  of subjects): the model after the LOSO folds' own. `log`: a callback with
  on_epoch_start(None) and on_epoch_end(end), end having phase (name, epochs, done), epoch,
  loss, accuracy and seconds (experiments.run_log.EpochLog: plain lines for logs)."""
  if config.ensemble != 1 or config.select_epoch != 'last':
    raise ValueError(
      'a final model is one model after its last epoch: set ensemble 1 and select_epoch last '
      '(with no test or validation subjects there is no epoch to choose)'
    )
  n = len(data.labels)
  shape = final_shape(config, n, data.images.shape[1:], data.num_classes)
  eval_batch = shape.eval_batch
  # One device of this process: with many processes each trains the same model on its own.
  program = fold_program(model, shape, fold_mesh(jax.local_devices()[:1]))
  images, labels = (put(a, program.replicated) for a in (data.images, data.labels))
  train_idx = put(np.arange(n, dtype=np.int32)[None], program.by_fold)
  train_count = put(np.array([n], np.int32), program.by_fold)
  eval_idx = put(np.arange(eval_batch, dtype=np.int32)[None], program.by_fold)
  key = fold_key(config.seed, len(set(data.subjects.tolist())))
  state = program.init(key[None])
  desc = 'final model, compiling (once; cached for later runs)'
  bar = tqdm(range(config.epochs), unit='epoch', desc=desc, disable=not progress)
  for epoch in bar:
    if log is not None:
      log.on_epoch_start(None)
    start = time.perf_counter()
    last = np.bool_(epoch + 1 == config.epochs)  # evaluating: the precise statistics, once
    state, m, _, stats = program.epoch(
      state, images, labels, train_idx, train_count, eval_idx, np.int32(epoch), last
    )
    loss, accuracy = (np.asarray(m[k])[:1] for k in ('loss', 'accuracy'))
    bar.set_description('final model', refresh=False)
    bar.set_postfix(loss=f'{float(loss[0]):.3f}')
    if log is not None:
      phase = types.SimpleNamespace(name='train', epochs=config.epochs, done=bool(last))
      seconds = time.perf_counter() - start
      log.on_epoch_end(
        types.SimpleNamespace(
          phase=phase, epoch=epoch, loss=loss, accuracy=accuracy, seconds=seconds, group=None
        )
      )
  variables = jax.device_get(scored_variables(state, stats))
  return jax.tree.map(lambda x: np.array(x[0]), variables)
