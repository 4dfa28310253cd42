"""The compiled programs of a LOSO run: init and one epoch of a stack of folds.

The train states of a group of folds are stacked along a leading fold axis and trained
together: `jax.vmap` over the folds, `jax.jit` with the fold axis sharded over a
`('folds',)` mesh of all devices. The whole dataset lives on every device; at each step
every fold draws a fixed-size batch from its own training subjects, so one compiled
program serves every fold, group and epoch. The functions below are the per-fold
computations; `fold_program` binds them with `functools.partial` and compiles.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from hfa_jax import augment, evaluation, optimiser
from hfa_jax import train as train_lib
from hfa_jax.loso import memory
from hfa_jax.loso.config import Training

# Folds trained together when `folds_in_parallel` is None. On a CPU, by input side: the
# fastest in experiments.benchmark's loso rows (epochs of 8 steps) on a 2-core Intel Xeon
# (docs/performance.md); larger sides train one fold at a time.
CPU_FOLDS_BY_SIDE = ((32, 4), (64, 1))  # (largest side, folds)
# Elsewhere, as many as fit in a device's memory by the measured plan of hfa_jax.loso.memory.


def fold_mesh(devices=None) -> Mesh:
  """A 1-D mesh ('folds',) over all devices (auto axis type, unlike jax.make_mesh)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ('folds',))


def folds_at_once(
  requested: int | None,
  n_models: int,
  side: int,
  batch: int,
  devices: list,
  model: nn.Module | None = None,
  training: Training | None = None,
  samples: int = 0,
  eval_batch: int = memory.EVAL_BATCH,
) -> int:
  """Models (folds, or fold x ensemble member) per training program, at most n_models:
  `requested` (0: all), or where None, chosen for `devices` and the input side: on CPU by
  CPU_FOLDS_BY_SIDE; on a GPU/TPU all that fit by hfa_jax.loso.memory's plan for `model`
  (default HFA-Net) trained with `training` and evaluated in batches of `eval_batch`, beside
  a dataset of `samples` images, against each device's bytes_limit (all where the device
  does not say). Rounded up to a multiple of len(devices) (the groups are padded with dummy
  folds)."""
  n_dev = len(devices)
  if requested is not None:
    width = requested or n_models
  elif devices[0].platform == 'cpu':
    width = next((k for largest, k in CPU_FOLDS_BY_SIDE if side <= largest), 1)
  else:  # a device of this process: another process's does not say its memory
    here = jax.process_index()
    local = [d for d in devices if getattr(d, 'process_index', here) == here] or devices
    limit = (local[0].memory_stats() or {}).get('bytes_limit')
    width = n_models
    if limit:
      if model is None:
        from hfa_jax.models.hfanet import HFANet

        model = HFANet(num_classes=3)
      fit = memory.folds_per_device(limit, model, side, batch, training, samples, eval_batch)
      width = fit * n_dev
  width = max(1, min(width, n_models))
  return -(-width // n_dev) * n_dev


def put(x, sharding):
  """Host array -> global jax.Array with `sharding` (works across hosts)."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])


def over_folds(fn: Callable, in_axes: tuple) -> Callable:
  """jax.vmap(fn) over the leading fold axis; a single fold runs without vmap.

  vmap over stacked parameters turns every convolution into a grouped one, which
  XLA:CPU runs more slowly even for one fold (docs/performance.md), so a fold axis of
  size 1 is squeezed instead.
  """
  batched = jax.vmap(fn, in_axes=in_axes)

  def call(*args):
    sizes = {jax.tree.leaves(a)[0].shape[0] for a, ax in zip(args, in_axes) if ax == 0}
    if sizes != {1}:
      return batched(*args)
    squeeze = lambda a, ax: a if ax is None else jax.tree.map(lambda t: t[0], a)
    out = fn(*(squeeze(a, ax) for a, ax in zip(args, in_axes)))
    return jax.tree.map(lambda t: t[None], out)

  call.__name__ = call.__qualname__ = getattr(fn, '__name__', None) or fn.func.__name__
  return call


@dataclasses.dataclass(frozen=True)
class ProgramShape:
  """Everything besides the model that a fold program is compiled for (hashable)."""

  training: Training
  steps_per_epoch: int
  eval_batch: int
  input_shape: tuple  # (1, S, S, 3)
  num_classes: int


# ------------------------------------------------------------------ one fold's epoch


def evaluated_stats(state, images, order, train_count, *, shape: ProgramShape):
  """The BatchNorm statistics an evaluation of the (averaged) `state` uses with precise_bn:
  recomputed on the first samples of this epoch's `order`; {} without (the state's own)."""
  if not shape.training.precise_bn:
    return {}
  idx = order[jnp.arange(shape.training.precise_bn) % train_count]
  return train_lib.precise_batch_stats(state, images[idx])


def evaluate(state, images, order, train_count, eval_idx, *, shape: ProgramShape):
  """(logits (Te, C) of one fold on its eval samples `eval_idx` (Te,), in batches; the
  precise BatchNorm statistics used, {} without precise_bn)."""
  training = shape.training
  state = train_lib.averaged(state)
  stats = evaluated_stats(state, images, order, train_count, shape=shape)
  if training.precise_bn:
    state = state.replace(batch_stats=stats)

  def batch_logits(idx):
    apply = functools.partial(train_lib.eval_step, state)
    return evaluation.scored_logits(apply, images[idx], training.test_flip)

  logits = jax.lax.map(batch_logits, eval_idx.reshape(-1, shape.eval_batch))
  return logits.reshape(-1, shape.num_classes), stats


class EpochDraw(NamedTuple):
  """How one fold draws its batches in an epoch."""

  order: jax.Array  # (T,) its training samples in this epoch's random order (padding last)
  train_idx: jax.Array  # (T,) its training samples
  train_count: jax.Array  # () how many of train_idx are real
  class_draw: jax.Array  # (T,) log-weights that draw every class equally often
  class_weights: jax.Array | None  # (C,) loss weights that weigh every class equally
  aug_key: jax.Array  # the epoch's augmentation key


def epoch_draw(state, labels, train_idx, train_count, epoch, *, shape: ProgramShape) -> EpochDraw:
  """The epoch's random order of one fold's training samples and its class tables."""
  perm_key, aug_key = jax.random.split(jax.random.fold_in(state.rng, epoch))
  real = jnp.arange(train_idx.shape[0]) < train_count  # padding sorted last
  u = jnp.where(real, jax.random.uniform(perm_key, train_idx.shape), 2.0)
  order = train_idx[jnp.argsort(u)]
  counts = jnp.zeros(shape.num_classes).at[labels[train_idx]].add(real)  # this fold's classes
  class_weights = None
  if shape.training.balance == 'loss':  # each class weighs as much in total
    class_weights = jnp.where(counts > 0, 1.0 / jnp.maximum(counts, 1), 0.0)
  class_draw = jnp.where(real, -jnp.log(jnp.maximum(counts, 1))[labels[train_idx]], -jnp.inf)
  return EpochDraw(order, train_idx, train_count, class_draw, class_weights, aug_key)


def train_batch(state, s, *, images, labels, draw: EpochDraw, shape: ProgramShape):
  """Step `s` of an epoch: draws one fold's batch, augments it and takes an optimiser step."""
  training, batch = shape.training, shape.training.batch_size
  flip, shift = training.augmentations()
  key = jax.random.fold_in(draw.aug_key, s)
  draw_key, mix_key, drop_key = jax.random.split(jax.random.fold_in(key, 1), 3)
  if training.balance == 'sampling':  # every class equally likely in every draw
    idx = draw.train_idx[jax.random.categorical(draw_key, draw.class_draw, shape=(batch,))]
  else:
    idx = draw.order[(s * batch + jnp.arange(batch)) % draw.train_count]
  x = augment.augment(key, images[idx], flip, shift)
  rotation, scale = training.warps()
  if rotation or scale:
    x = augment.warp(jax.random.fold_in(key, 2), x, rotation, scale)
  if 'halves' in training.augment_parts():
    x = augment.mirrored_halves(jax.random.fold_in(key, 3), x)
  y = labels[idx]
  if training.mixup > 0:
    x, y = augment.mixup(mix_key, x, jax.nn.one_hot(y, shape.num_classes), training.mixup)
  state, m = train_lib.train_step(
    state, x, y, training.label_smoothing, rng=drop_key, class_weights=draw.class_weights
  )
  if training.ema_decay > 0:
    state = train_lib.update_ema(state, training.ema_decay)
  return state, m


def epoch_one(
  state, images, labels, train_idx, train_count, eval_idx, epoch, evaluating, *, shape: ProgramShape
):
  """One epoch of one fold: `steps_per_epoch` steps (a lax.scan) over a random order of
  its training samples train_idx[:train_count], then, if `evaluating`, its logits on
  eval_idx (else zeros). Returns (state, {'loss', 'accuracy'} epoch means, logits, the
  precise BatchNorm statistics of the evaluation ({} without precise_bn))."""
  images = evaluation.model_input(images, shape.training.flow_norm)  # not batched over folds
  draw = epoch_draw(state, labels, train_idx, train_count, epoch, shape=shape)
  step = functools.partial(train_batch, images=images, labels=labels, draw=draw, shape=shape)
  state, m = jax.lax.scan(step, state, jnp.arange(shape.steps_per_epoch))
  not_evaluated = lambda state, *_: (
    jnp.zeros((eval_idx.shape[0], shape.num_classes), jnp.float32),
    jax.tree.map(jnp.zeros_like, state.batch_stats) if shape.training.precise_bn else {},
  )
  logits, stats = jax.lax.cond(
    evaluating,
    functools.partial(evaluate, shape=shape),
    not_evaluated,
    state,
    images,
    draw.order,
    train_count,
    eval_idx,
  )
  return state, jax.tree.map(jnp.mean, m), logits, stats


# --------------------------------------------------------------------- the programs


@dataclasses.dataclass(frozen=True)
class FoldProgram:
  """init(keys (F, 2) uint32) -> stacked TrainState, sharded over the folds (init_one, the
  jitted single-fold init (key uint32[2]) -> TrainState, once per fold: one compile whatever F).
  epoch(state, images (N,S,S,3), labels (N,), train_idx (F,T), train_count (F,),
        eval_idx (F,Te), epoch (), evaluating () bool)
      -> (state, {'loss','accuracy'} (F,), logits (F,Te,C), precise BatchNorm statistics
          of the evaluation (F, ...) or {}); the state is donated."""

  init: Callable
  epoch: Callable
  mesh: Mesh
  init_one: Callable

  @property
  def by_fold(self) -> NamedSharding:
    return NamedSharding(self.mesh, P('folds'))

  @property
  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, P())


def optim_config(training: Training, steps_per_epoch: int) -> optimiser.OptimConfig:
  """The optimiser of one fold: the Optimiser settings and the run's length in steps."""
  return optimiser.OptimConfig.of(
    training,
    warmup_steps=round(training.warmup_epochs * steps_per_epoch),
    total_steps=training.epochs * steps_per_epoch,
  )


@functools.lru_cache(maxsize=8)
def fold_program(model: nn.Module, shape: ProgramShape, mesh: Mesh) -> FoldProgram:
  """The FoldProgram of `model` for `shape` on `mesh`. Cached: runs that differ only in
  settings outside `Training` (seed, folds, protocol, execution) share it."""
  tx = optimiser.make_optimizer(optim_config(shape.training, shape.steps_per_epoch))
  folds = NamedSharding(mesh, P('folds'))
  replicated = NamedSharding(mesh, P())
  init_one = jax.jit(
    functools.partial(
      train_lib.create_train_state,
      model=model,
      input_shape=shape.input_shape,
      tx=tx,
      ema=shape.training.ema_decay > 0,
    )
  )

  def init(keys):
    states = [jax.device_get(init_one(k)) for k in np.asarray(keys)]
    return jax.tree.map(lambda *xs: put(np.stack(xs), folds), *states)

  epoch = jax.jit(
    over_folds(
      functools.partial(epoch_one, shape=shape), in_axes=(0, None, None, 0, 0, 0, None, None)
    ),
    out_shardings=(folds, replicated, replicated, folds),
    donate_argnums=0,
  )
  return FoldProgram(init=init, epoch=epoch, mesh=mesh, init_one=init_one)
