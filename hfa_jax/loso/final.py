"""The deployable model: a recipe trained on EVERY subject (no test subject), with the same
compiled fold program, batch draws and augmentation as each LOSO fold. Its expected
accuracy is the LOSO result of the same recipe, which a final model cannot measure itself."""

from __future__ import annotations

import time

import jax
import numpy as np
from tqdm.auto import tqdm

from hfa_jax.loso import callbacks as cb
from hfa_jax.loso.callbacks import perf_clock
from hfa_jax.loso.config import LosoConfig
from hfa_jax.loso.data import LosoData
from hfa_jax.loso.keep import scored_variables
from hfa_jax.loso.keys import fold_key
from hfa_jax.loso.program import ProgramShape, fold_mesh, fold_program, put
from hfa_jax.loso.records import GroupHistory
from hfa_jax.loso.run import open_store


def final_shape(config: LosoConfig, n: int, sample_shape: tuple, num_classes: int) -> ProgramShape:
  """The fold program's shape of a final model trained on `n` samples of `sample_shape` (S, S, 3):
  one fold whose training and evaluation tables are the whole dataset."""
  steps = config.steps_per_epoch or -(-n // config.batch_size)
  eval_batch = min(config.eval_batch_size, n)
  return ProgramShape(config.training, steps, eval_batch, (1, *sample_shape), num_classes)


def train_final(  # noqa: PLR0913
  data: LosoData,
  config: LosoConfig,
  model,
  progress: bool = True,
  log=None,
  out_dir=None,
  run_record: dict | None = None,
  callbacks=(),
) -> dict:
  """The variables {'params', 'batch_stats'} (NumPy) of `model` trained on all of `data`
  with `config`'s recipe, as its LOSO folds would evaluate them (the weight average where
  kept, BatchNorm statistics recomputed with precise_bn). Its key is fold_key(seed, number
  of subjects): the model after the LOSO folds' own. `log` and `callbacks`: callbacks
  (hfa_jax.loso.callbacks; experiments.run_log.EpochLog(what='final model'): plain lines for
  logs) of a run of one group of one model, named 'final model'.

  `out_dir`: a run folder (hfa_jax.loso.store: its run.json says what is trained, with
  `run_record`) where it checkpoints every `config.checkpoint_minutes` and at an epoch end where
  a callback stops it (`callbacks`: StopAtEpochEnd), and from whose checkpoint a rerun goes
  on; the caller deletes it once the model is saved."""
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
  record = dict(final_model=True) | (run_record or {})
  store = open_store(out_dir, config, model, data, record) if out_dir is not None else None
  try:
    tables = (images, labels, train_idx, train_count, eval_idx)
    samples = shape.steps_per_epoch * config.batch_size  # an epoch's
    return _train(program, config, key, store, tables, samples, progress, [log, *callbacks])
  finally:
    if store is not None:
      store.close()


def _train(program, config, key, store, tables, samples, progress, callbacks) -> dict:  # noqa: PLR0913
  """train_final's epochs, from the store's checkpoint where it has one."""
  group = cb.Group(0, 0, 0, 1, ['final model'])
  state = program.init(key[None])
  history = GroupHistory.new(group.names, config.epochs)
  restored = store.restore(group.names, state) if store is not None else None
  if restored is not None:
    state, history, _ = restored
  group.history, phase = history, history.phase
  saver = None
  if store is not None:
    saver = cb.Checkpointer(store, config.checkpoint_minutes, config.epochs, 1, perf_clock)
  calls = cb.Callbacks([saver, *callbacks])
  # EpochLog's time left: one group of one phase; it names the model as told
  calls.on_run_start(cb.RunStart(1, 1, 1, 1, config.epochs, 1, 1))
  calls.on_group_start(group)
  desc = 'final model, compiling (once; cached for later runs)'
  bar = tqdm(
    total=config.epochs, initial=phase.epochs_done, unit='epoch', desc=desc, disable=not progress
  )
  stats = {}
  for epoch in range(phase.epochs_done, config.epochs):
    calls.on_epoch_start(group, phase, epoch)
    start = time.perf_counter()
    last = np.bool_(epoch + 1 == config.epochs)  # evaluating: the precise statistics, once
    state, m, _, stats = program.epoch(state, *tables, np.int32(epoch), last)
    loss, accuracy = (np.asarray(m[k])[:1] for k in ('loss', 'accuracy'))
    phase.add_epoch(loss, accuracy, None)
    bar.set_description('final model', refresh=False)
    bar.set_postfix(loss=f'{float(loss[0]):.3f}')
    bar.update(1)
    models = [
      dict(
        name='final model',
        fold='every subject',
        replica=0,
        train_loss=float(loss[0]),
        train_accuracy=float(accuracy[0]),
      )
    ]
    seconds = time.perf_counter() - start
    end = cb.EpochEnd(group, phase, epoch, models, seconds, samples, state, history, stats)
    calls.on_epoch_end(end)
    if end.stop:  # a callback stops the training here (StopAtEpochEnd), saved first
      calls.on_stop(end)
  bar.close()
  calls.on_run_end()
  variables = jax.device_get(scored_variables(state, stats))
  return jax.tree.map(lambda x: np.array(x[0]), variables)
