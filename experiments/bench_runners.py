"""The benchmark's runners: HFA-Net's training step, evaluation and the LOSO trainer's own fold
program (any registered network), compiled, with a `run()` that takes one step or epoch.

Used by experiments.benchmark (its train, eval and loso rows), experiments.bench_baselines
(the baselines' rows), experiments.profile_step and experiments.accelerator_sweep.
"""

from __future__ import annotations

import math
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments.timing import compile_fn, random_variables, time_steps, xla_bytes
from hfa_jax import loso, optimiser
from hfa_jax import train as train_lib
from hfa_jax.models import HFANet

NUM_CLASSES = 3


def train_state(model: nn.Module, side: int, seed: int = 0) -> train_lib.TrainState:
  """A TrainState of `model` for (B, side, side, 3) inputs with the library's default optimiser
  (AdamW, `optimiser.OptimConfig()`) and random weights drawn with numpy (no init compile)."""
  variables = random_variables(model, np.zeros((1, side, side, 3), np.float32), seed=seed)
  return train_lib.TrainState.create(
    apply_fn=model.apply,
    params=jax.tree.map(jnp.asarray, variables['params']),
    batch_stats=jax.tree.map(jnp.asarray, variables['batch_stats']),
    tx=optimiser.make_optimizer(optimiser.OptimConfig()),
  )


def random_batch(batch: int, side: int, seed: int = 0):
  """images (batch, side, side, 3) float32, labels (batch,) int32."""
  rng = np.random.default_rng(seed)
  images = jnp.asarray(rng.normal(size=(batch, side, side, 3)).astype(np.float32))
  labels = jnp.asarray(rng.integers(0, NUM_CLASSES, batch).astype(np.int32))
  return images, labels


def _row(kind, side, batch, folds, dtype, compile_s, times, compiled) -> dict:
  """One table row: the median step time of `times` and (fold-)samples per second."""
  t = statistics.median(times)
  return {
    'kind': kind,
    'side': side,
    'batch': batch,
    'folds': folds,
    'dtype': str(dtype),
    'compile_s': compile_s,
    'step_s': t,
    'step_s_all': times,
    'samples_per_s': folds * batch / t,
    'xla_bytes': xla_bytes(compiled),
  }


def train_runner(side, batch, dtype, seed=0):
  """(run, compiled, compile s): run() takes one hfa_jax.train.train_step of one model (state
  donated) and returns its loss."""
  state = train_state(HFANet(NUM_CLASSES, dtype=dtype), side, seed)
  images, labels = random_batch(batch, side, seed)
  compiled, compile_s = compile_fn(train_lib.train_step, (state, images, labels), donate=(0,))
  holder = {'state': state}

  def run():
    holder['state'], metrics = compiled(holder['state'], images, labels)
    return metrics['loss']

  return run, compiled, compile_s


def fold_runner(side, batch, folds, dtype, seed=0, epoch_steps=1, model=None, training=None):
  """(run, compiled, compile s): run() takes one epoch of `epoch_steps` steps of the LOSO fold
  program (loso.fold_program) of `folds` models and returns their losses (folds,). `model`:
  default HFANet(NUM_CLASSES, dtype=dtype); another module computes in its own dtype.
  `training`: the program's settings (a loso.config.Training, e.g. a recipe's), default the
  declared defaults with `batch` and `seed`.

  Every fold draws its batches from the same 2 * batch random samples; evaluation is off.
  The program's per-epoch work (the state entering and leaving the epoch's loop, the
  schedule) is shared by the epoch's steps, as in a LOSO run.
  """
  model = HFANet(NUM_CLASSES, dtype=dtype) if model is None else model
  config = loso.LosoConfig(batch_size=batch, seed=seed)
  training = config.training if training is None else training
  devices = jax.devices()
  mesh = loso.fold_mesh(devices[: math.gcd(folds, len(devices))])
  shape = loso.ProgramShape(training, epoch_steps, batch, (1, side, side, 3), NUM_CLASSES)
  program = loso.fold_program(model, shape, mesh)
  by_fold, replicated = program.by_fold, program.replicated
  n = 2 * batch
  rng = np.random.default_rng(seed)
  images = loso.put(rng.normal(size=(n, side, side, 3)).astype(np.float32), replicated)
  labels = loso.put(rng.integers(0, NUM_CLASSES, n).astype(np.int32), replicated)
  train_idx = loso.put(np.tile(np.arange(n, dtype=np.int32), (folds, 1)), by_fold)
  train_count = loso.put(np.full(folds, n, np.int32), by_fold)
  eval_idx = loso.put(np.tile(np.arange(batch, dtype=np.int32), (folds, 1)), by_fold)
  state = program.init(np.stack([loso.fold_key(seed, i) for i in range(folds)]))
  rest = (images, labels, train_idx, train_count, eval_idx)
  holder = {'state': state, 'epoch': 0}
  compiled, compile_s = compile_fn(program.epoch, (state, *rest, np.int32(0), np.bool_(False)))

  def run():
    epoch = np.int32(holder['epoch'])
    holder['state'], metrics, _, _ = compiled(holder['state'], *rest, epoch, np.bool_(False))
    holder['epoch'] += 1
    return metrics['loss']

  return run, compiled, compile_s


def _timed(run, steps) -> list[float]:
  """Seconds of `steps` calls of run() after 2 warm-ups (the allocator reaches its steady
  state); checks that the last loss is finite."""
  losses = []

  def step():
    losses.append(run())
    return losses[-1]

  times = time_steps(step, steps, warmup=2)
  loss = np.asarray(losses[-1])
  assert np.all(np.isfinite(loss)), f'non-finite loss {loss}'
  return times


def bench_train(side, batch, steps, dtype, seed=0) -> dict:
  """hfa_jax.train.train_step of one model, state donated."""
  run, compiled, compile_s = train_runner(side, batch, dtype, seed)
  return _row('train', side, batch, 1, dtype, compile_s, _timed(run, steps), compiled)


def bench_folds(side, batch, folds, steps, dtype, seed=0, epoch_steps=8, model=None) -> dict:
  """The LOSO fold program of `folds` models (fold_runner; `model` default HFANet): `steps`
  epochs of `epoch_steps` steps each, timed per step."""
  run, compiled, compile_s = fold_runner(side, batch, folds, dtype, seed, epoch_steps, model)
  times = [t / epoch_steps for t in _timed(run, steps)]
  row = _row('loso', side, batch, folds, dtype, compile_s, times, compiled)
  return {**row, 'epoch_steps': epoch_steps}


def bench_eval(side, batch, steps, dtype, seed=0) -> dict:
  """hfa_jax.train.eval_step: the forward pass with BatchNorm running statistics."""
  state = train_state(HFANet(NUM_CLASSES, dtype=dtype), side, seed).replace(opt_state=None)
  images, _ = random_batch(batch, side, seed)
  compiled, compile_s = compile_fn(train_lib.eval_step, (state, images))
  times = time_steps(lambda: compiled(state, images), steps)
  return _row('eval', side, batch, 1, dtype, compile_s, times, compiled)
