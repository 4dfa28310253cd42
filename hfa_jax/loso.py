"""Leave-one-subject-out (LOSO) training, all folds in parallel, resumable.

Every fold (one test subject) is an independent model. The train states of a group
of folds are stacked along a leading fold axis and trained together: `jax.vmap` over
the folds, `jax.jit` with the fold axis sharded over a `('folds',)` mesh of all
devices. The whole dataset lives on every device; at each step every fold draws a
fixed-size batch from its own training subjects, so one compiled program serves
every fold, group and epoch.

    from hfa_jax.loso import LosoConfig, run_loso
    result = run_loso(images, labels, subjects, LosoConfig(epochs=10), model=model)
    result['metrics']['uf1']

Randomness is a pure function of (seed, fold, epoch, step): the fold key is
`fold_in(PRNGKey(seed), index of the subject among all subjects)`, so a fold gives
the same result whether it trains alone, with others, or after a resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import signal
import threading
import time
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from hfa_jax import metrics as metrics_lib
from hfa_jax import settings
from hfa_jax.settings import setting
from hfa_jax import train as train_lib


SELECT_EPOCH = ('last', 'validation', 'best_test')
BALANCE = ('none', 'loss', 'sampling')


@dataclasses.dataclass(frozen=True)
class LosoConfig:
  """Training settings of a LOSO run, each declared once (every field is saved with
  the results; `python -m experiments.loso --help` lists them)."""

  epochs: int = setting(20, 'epochs per fold', minimum=1)
  batch_size: int = setting(32, 'training batch per fold', minimum=1)
  steps_per_epoch: int = setting(
    0, 'steps per epoch (0: one pass over the largest training set)', minimum=0
  )
  learning_rate: float = setting(1e-3, 'peak learning rate', above=0, flag='lr')
  schedule: str = setting(
    'cosine', 'learning-rate schedule after warmup', choices=('cosine', 'constant')
  )
  warmup_epochs: float = setting(0.0, 'linear warmup from 0, in epochs', minimum=0)
  optimizer: str = setting(
    'adamw', "'adamw' (decoupled weight decay) or 'adam' (+ L2)", choices=('adamw', 'adam')
  )
  weight_decay: float = setting(1e-4, 'weight decay', minimum=0)
  grad_clip: float = setting(0.0, 'global-norm gradient clipping (0: off)', minimum=0)
  label_smoothing: float = setting(0.0, 'label smoothing', minimum=0, below=1)
  augment: str = setting(
    'flip',
    "'none', or a '+'-joined subset of flip, shift (a flip negates u; a shift replicates the edge)",
  )
  max_shift: int = setting(2, 'pixels, with --augment shift', minimum=0)
  mixup: float = setting(0.0, 'mixup Beta(a, a) parameter (0: off)', minimum=0)
  ema_decay: float = setting(
    0.0,
    'evaluate an exponential moving average of the weights '
    'with this decay per step (0: the weights themselves)',
    minimum=0,
    below=1,
  )
  ensemble: int = setting(
    1, 'models per fold, each from its own seed; their class probabilities are averaged', minimum=1
  )
  test_flip: bool = setting(
    False, 'evaluate each image and its mirror (u negated) and average their logits'
  )
  balance: str = setting(
    'none',
    "classes: 'loss' weighs each class equally in the loss, 'sampling' draws them equally often",
    choices=BALANCE,
  )
  seed: int = setting(0, 'seed of initialisation, order, augmentation and splits')
  folds_in_parallel: int | None = setting(
    None,
    'folds (models, with an ensemble) trained at once; none: chosen by the device and the '
    'input side (loso.folds_at_once); 0: all; rounded up to a multiple of the device count',
    minimum=0,
  )
  eval_batch_size: int = setting(64, 'evaluation batch', minimum=1)
  select_epoch: str = setting(
    'last',
    "the epoch scored per fold: 'last'; 'validation' (best UF1 on subjects held "
    "out of the fold's training subjects; honest); 'best_test' (its own test subject's "
    'best: NOT honest, reported as such)',
    choices=SELECT_EPOCH,
  )
  val_fraction: float = setting(
    0.2, "with validation: share of each database's training subjects held out", above=0, below=1
  )
  retrain: bool = setting(
    False, 'with validation: retrain on all training subjects for the chosen number of epochs'
  )
  group_folds: int = setting(
    0, '>0: subject-grouped K-fold cross-validation instead of LOSO (quick experiments)', minimum=0
  )
  eval_every_epoch: bool = setting(
    True, 'evaluate after every epoch (curves) or only after the last'
  )
  precise_bn: int = setting(
    0,
    'evaluate with BatchNorm statistics recomputed on this many '
    'training samples (0: running averages)',
    minimum=0,
  )
  checkpoint_minutes: float = setting(
    10.0,
    'minutes of training between checkpoints of the folds in training (0: after every '
    'epoch); finished folds are always saved. A checkpoint of HFA-Net holds ~0.3 GB per fold',
    minimum=0,
  )

  def validate(self):
    """Raises ValueError naming the first bad field."""
    settings.check(self)
    if self.retrain and self.select_epoch != 'validation':
      raise ValueError(
        "retrain needs select_epoch 'validation' (it retrains for the epoch that validation chose)"
      )
    if self.group_folds == 1:
      raise ValueError('group_folds must be 0 (LOSO) or >= 2')
    self.augmentations()

  def augmentations(self) -> tuple[bool, int]:
    """(flip, shift pixels) from `augment`."""
    parts = {p for p in re.split(r'[+,]', self.augment.strip().lower()) if p} - {'none'}
    unknown = parts - {'flip', 'shift'}
    if unknown:
      raise ValueError(
        f"augment must be 'none' or a '+'-joined subset of flip, shift; got {self.augment!r}"
      )
    return 'flip' in parts, (self.max_shift if 'shift' in parts else 0)

  def protocol(self) -> str:
    """In words: how the folds are made and which epoch of each fold is scored."""
    folds = (
      f'subject-grouped {self.group_folds}-fold cross-validation (NOT leave-one-subject-'
      'out; for quick experiments)'
      if self.group_folds
      else 'leave one subject out'
    )
    if self.ensemble > 1:
      folds += f', {self.ensemble} models per fold (mean of their probabilities)'
    if self.test_flip:
      folds += ', each test image averaged with its mirror'
    if self.select_epoch == 'best_test':
      return (
        f'{folds}; BEST EPOCH PER FOLD SELECTED BY ITS OWN TEST ACCURACY (optimistic, '
        'not comparable to honest results)'
      )
    if self.select_epoch == 'validation':
      how = (
        f"{folds}; each fold's epoch chosen by the UF1 of validation subjects held out "
        f"of its training subjects ({self.val_fraction:.0%} of each database's), "
        'the test subject never seen'
      )
      return how + (
        ', then retrained on all its training subjects for that many epochs (honest)'
        if self.retrain
        else ' (honest)'
      )
    return f'{folds}; each fold evaluated after its last epoch (honest)'


def natural_key(s: str):
  """Sort key that orders 's2' before 's10'."""
  return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', str(s))]


def fold_mesh(devices=None) -> Mesh:
  """A 1-D mesh ('folds',) over all devices (auto axis type, unlike jax.make_mesh)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ('folds',))


# Folds trained together when `folds_in_parallel` is None. On a CPU, by input side: the
# fastest in experiments.benchmark's loso rows (epochs of 8 steps) on a 2-core Intel Xeon
# (docs/performance.md); larger sides train one fold at a time.
CPU_FOLDS_BY_SIDE = ((32, 4), (64, 1))  # (largest side, folds)
# Elsewhere, as many as fit in half of each device's memory by an estimate of HFA-Net's
# training program (XLA's float32 figures at sides 32-224, batch 16): a fixed part (the
# parameters, their gradients and AdamW's moments) and a part per pixel of each sample.
FOLD_FIXED_BYTES = 380 * 2**20
FOLD_BYTES_PER_PIXEL = 4096


def folds_at_once(
  requested: int | None, n_models: int, side: int, batch: int, devices: list
) -> int:
  """Models (folds, or fold x ensemble member) per training program, at most n_models:
  `requested` (0: all), or where None, chosen for `devices` and the input side: on CPU by
  CPU_FOLDS_BY_SIDE; on a GPU/TPU all that fit (the memory estimate above against each
  device's bytes_limit; all where the device does not say). Rounded up to a multiple of
  len(devices) (the groups are padded with dummy folds)."""
  n_dev = len(devices)
  if requested is not None:
    width = requested or n_models
  elif devices[0].platform == 'cpu':
    width = next((k for largest, k in CPU_FOLDS_BY_SIDE if side <= largest), 1)
  else:
    limit = (devices[0].memory_stats() or {}).get('bytes_limit')
    per_fold = FOLD_FIXED_BYTES + FOLD_BYTES_PER_PIXEL * batch * side * side
    width = n_models if not limit else max(1, int(limit // 2 // per_fold)) * n_dev
  width = max(1, min(width, n_models))
  return -(-width // n_dev) * n_dev


# --------------------------------------------------------------------------- plan


@dataclasses.dataclass
class FoldPlan:
  """Host-side index tables of every selected fold (shapes shared by all folds).

  A fold tests the samples of its subjects (one for LOSO) and trains on the others,
  except, with validation selection, the validation subjects held out of them.
  Index tables are padded with their first index; `*_count` says how many are real.
  """

  folds: list  # name of each selected fold (its test subject for LOSO), run order
  fold_ids: list  # index of each among all folds (drives the RNG)
  members: list  # test subjects of each selected fold
  val_subjects: list  # validation subjects of each selected fold (empty: none)
  train_idx: np.ndarray  # (folds, max_rest) int32: training samples (no validation)
  train_count: np.ndarray  # (folds,) int32
  rest_idx: np.ndarray  # (folds, max_rest) int32: every non-test sample (to retrain)
  rest_count: np.ndarray  # (folds,) int32
  test_idx: np.ndarray  # (folds, test_width) int32
  test_count: np.ndarray  # (folds,) int32
  val_idx: np.ndarray  # (folds, val_width) int32 (val_width 0 without validation)
  val_count: np.ndarray  # (folds,) int32
  eval_batch: int
  steps_per_epoch: int

  @property
  def eval_idx(self) -> np.ndarray:
    """(folds, test_width + val_width): what every evaluation runs, test then validation."""
    return np.concatenate([self.test_idx, self.val_idx], axis=1)


def subject_groups(subjects, strata, k: int, seed: int) -> list[list[str]]:
  """`subjects` dealt into k groups, each database's spread evenly (deterministic from seed)."""
  by_stratum = {}
  for s in sorted(set(subjects), key=natural_key):
    by_stratum.setdefault(strata[s], []).append(s)
  rng = np.random.default_rng([seed, k])
  groups, turn = [[] for _ in range(k)], 0
  for stratum in sorted(by_stratum):
    names = by_stratum[stratum]
    for s in (names[i] for i in rng.permutation(len(names))):
      groups[turn % k].append(s)
      turn += 1
  return [sorted(g, key=natural_key) for g in groups]


def validation_subjects(candidates, strata, fraction: float, seed: int, fold_id: int) -> list:
  """Subjects held out of a fold's training subjects for validation.

  From each database (stratum), round(fraction * its subjects) of them, at least one
  and never all; drawn with a generator seeded by (seed, fold), so the split is
  fixed for a fold whatever else runs.
  """
  rng = np.random.default_rng([seed, fold_id, 1])
  by_stratum = {}
  for s in sorted(set(candidates), key=natural_key):
    by_stratum.setdefault(strata[s], []).append(s)
  chosen = []
  for stratum in sorted(by_stratum):
    names = by_stratum[stratum]
    n = min(max(1, round(fraction * len(names))), len(names) - 1)
    chosen += [names[i] for i in sorted(rng.choice(len(names), n, replace=False))]
  return sorted(chosen, key=natural_key)


def make_plan(labels, subjects, config: LosoConfig, only_subjects=None, strata=None) -> FoldPlan:
  """Splits the samples into folds: LOSO (every subject, or `only_subjects`), or with
  `config.group_folds` subject-grouped folds ('fold1'...; `only_subjects` then names folds).

  strata: (N,) the database of each sample (default one for all): validation
  subjects and grouped folds are drawn per database.
  """
  subjects = np.asarray(subjects).astype(str)
  strata = np.zeros(len(subjects), str) if strata is None else np.asarray(strata).astype(str)
  stratum_of = dict(zip(subjects.tolist(), strata.tolist()))
  everyone = sorted(set(subjects.tolist()), key=natural_key)
  if len(everyone) < 2:
    raise ValueError(f'LOSO needs at least 2 subjects, got {everyone}')
  if config.group_folds:
    if config.group_folds > len(everyone):
      raise ValueError(f'group_folds={config.group_folds} but only {len(everyone)} subjects')
    members = subject_groups(everyone, stratum_of, config.group_folds, config.seed)
    names = [f'fold{i + 1}' for i in range(config.group_folds)]
  else:
    members, names = [[s] for s in everyone], everyone
  chosen = names if not only_subjects else [str(s) for s in only_subjects]
  unknown = [s for s in chosen if s not in names]
  if unknown:
    what = 'folds' if config.group_folds else 'subjects'
    raise ValueError(f'unknown {what} {unknown}; the data has {names}')
  if len(set(chosen)) != len(chosen):
    raise ValueError(f'subjects listed twice: {chosen}')
  # Tables of ALL folds: their shapes (hence the random draws and steps of a fold) are
  # the same in a partial run as in the whole one.
  tests, rests, trains, vals, val_subjects = [], [], [], [], []
  for f, group in enumerate(members):
    test = np.isin(subjects, group)
    held = []
    if config.select_epoch == 'validation':
      held = validation_subjects(
        sorted(set(subjects[~test].tolist())), stratum_of, config.val_fraction, config.seed, f
      )
    val = np.isin(subjects, held)
    tests.append(np.flatnonzero(test))
    rests.append(np.flatnonzero(~test))
    trains.append(np.flatnonzero(~test & ~val))
    vals.append(np.flatnonzero(val))
    val_subjects.append(held)
  max_rest = max(len(r) for r in rests)
  max_test = max(len(t) for t in tests)
  eval_batch = min(config.eval_batch_size, max_test)
  width = lambda n: -(-n // eval_batch) * eval_batch
  max_val = max(len(v) for v in vals)

  def table(rows, n):
    pad = lambda idx: np.concatenate([idx, np.full(n - len(idx), idx[0] if len(idx) else 0)])
    return np.stack([pad(r) for r in rows]).astype(np.int32).reshape(len(rows), n)

  sel = [names.index(c) for c in chosen]
  pick = lambda rows: [rows[i] for i in sel]
  count = lambda rows: np.array([len(rows[i]) for i in sel], np.int32)
  steps = config.steps_per_epoch or -(-max_rest // config.batch_size)
  return FoldPlan(
    folds=chosen,
    fold_ids=sel,
    members=pick(members),
    val_subjects=pick(val_subjects),
    train_idx=table(pick(trains), max_rest),
    train_count=count(trains),
    rest_idx=table(pick(rests), max_rest),
    rest_count=count(rests),
    test_idx=table(pick(tests), width(max_test)),
    test_count=count(tests),
    val_idx=table(pick(vals), width(max_val) if max_val else 0),
    val_count=count(vals),
    eval_batch=eval_batch,
    steps_per_epoch=steps,
  )


def fold_key(seed: int, fold_id: int, replica: int = 0) -> np.ndarray:
  """The raw uint32[2] key of a fold's model: a pure function of (seed, fold, replica)."""
  key = jax.random.fold_in(jax.random.PRNGKey(seed), fold_id)
  return np.asarray(jax.random.fold_in(key, replica) if replica else key)


# ------------------------------------------------------------------ device programs


def optim_config(config: LosoConfig, steps_per_epoch: int) -> train_lib.OptimConfig:
  return train_lib.OptimConfig(
    optimizer=config.optimizer,
    learning_rate=config.learning_rate,
    schedule=config.schedule,
    warmup_steps=round(config.warmup_epochs * steps_per_epoch),
    total_steps=config.epochs * steps_per_epoch,
    weight_decay=config.weight_decay,
    grad_clip=config.grad_clip,
    label_smoothing=config.label_smoothing,
  )


def fold_program(
  model: nn.Module,
  config: LosoConfig,
  steps_per_epoch: int,
  eval_batch: int,
  input_shape: tuple,
  num_classes: int,
  mesh: Mesh,
):
  """run_loso's (init_fn, epoch_fn) for `config` (see make_fold_fns for their signatures).

  The fields of `config` that do not change the compiled programs (seed, fold grouping,
  checkpointing, epoch selection, ...) are normalised first, so that runs differing only in
  them share make_fold_fns' cache.
  """
  program_config = dataclasses.replace(
    config,
    seed=0,
    folds_in_parallel=0,
    checkpoint_minutes=0.0,
    select_epoch='last',
    val_fraction=0.2,
    retrain=False,
    group_folds=0,
    steps_per_epoch=0,
    ensemble=1,
    eval_every_epoch=True,
    eval_batch_size=1,
  )
  return make_fold_fns(
    model, program_config, steps_per_epoch, eval_batch, input_shape, num_classes, mesh
  )


@functools.lru_cache(maxsize=8)
def make_fold_fns(
  model: nn.Module,
  config: LosoConfig,
  steps_per_epoch: int,
  eval_batch: int,
  input_shape: tuple,
  num_classes: int,
  mesh: Mesh,
):
  """(init_fn, epoch_fn) over a stacked fold axis sharded on `mesh`.

  init_fn(keys (F, 2) uint32) -> stacked TrainState, sharded over the folds. It
  runs one jitted single-fold init per fold (one compile whatever F) and stacks.
  epoch_fn(state, images (N,S,S,3), labels (N,), train_idx (F,T), train_count (F,),
           eval_idx (F,Te), epoch (), evaluate () bool)
      -> (state, {'loss','accuracy'} (F,), logits (F,Te,C))
  runs one epoch of `steps_per_epoch` steps per fold (a lax.scan), then, if
  `evaluate`, evaluates every fold on its eval samples (test, then validation) in
  batches of `eval_batch` (else the logits are zeros). The state is donated.
  Cached: a second run with the same arguments reuses the compiled programs.
  """
  tx = train_lib.make_optimizer(optim_config(config, steps_per_epoch))
  flip, shift = config.augmentations()
  batch, steps = config.batch_size, steps_per_epoch
  folds = NamedSharding(mesh, P('folds'))
  replicated = NamedSharding(mesh, P())

  init_one = jax.jit(
    lambda k: train_lib.create_train_state(k, model, input_shape, tx, ema=config.ema_decay > 0)
  )

  def init_fn(keys):
    states = [jax.device_get(init_one(k)) for k in np.asarray(keys)]
    return jax.tree.map(lambda *xs: put(np.stack(xs), folds), *states)

  def evaluate_one(state, images, order, train_count, eval_idx):
    state = train_lib.averaged(state)
    if config.precise_bn:
      idx = order[jnp.arange(config.precise_bn) % train_count]
      state = state.replace(batch_stats=train_lib.precise_batch_stats(state, images[idx]))

    def batch_logits(idx):
      x = images[idx]
      logits = train_lib.eval_step(state, x)
      if config.test_flip:
        logits = (logits + train_lib.eval_step(state, train_lib.mirror(x))) / 2
      return logits

    logits = jax.lax.map(batch_logits, eval_idx.reshape(-1, eval_batch))
    return logits.reshape(-1, num_classes)

  def epoch_one(state, images, labels, train_idx, train_count, eval_idx, epoch, evaluate):
    perm_key, aug_key = jax.random.split(jax.random.fold_in(state.rng, epoch))
    # A random order of this fold's training samples (padding sorted last).
    real = jnp.arange(train_idx.shape[0]) < train_count
    u = jnp.where(real, jax.random.uniform(perm_key, train_idx.shape), 2.0)
    order = train_idx[jnp.argsort(u)]
    counts = jnp.zeros(num_classes).at[labels[train_idx]].add(real)  # this fold's classes
    class_weights = None
    if config.balance == 'loss':  # each class weighs as much in total
      class_weights = jnp.where(counts > 0, 1.0 / jnp.maximum(counts, 1), 0.0)
    draw_logits = jnp.where(real, -jnp.log(jnp.maximum(counts, 1))[labels[train_idx]], -jnp.inf)

    def step(state, s):
      key = jax.random.fold_in(aug_key, s)
      draw_key, mix_key, drop_key = jax.random.split(jax.random.fold_in(key, 1), 3)
      if config.balance == 'sampling':  # every class equally likely in every draw
        idx = train_idx[jax.random.categorical(draw_key, draw_logits, shape=(batch,))]
      else:
        idx = order[(s * batch + jnp.arange(batch)) % train_count]
      x = train_lib.augment(key, images[idx], flip, shift)
      y = labels[idx]
      if config.mixup > 0:
        x, y = train_lib.mixup(mix_key, x, jax.nn.one_hot(y, num_classes), config.mixup)
      state, m = train_lib.train_step(
        state, x, y, config.label_smoothing, rng=drop_key, class_weights=class_weights
      )
      if config.ema_decay > 0:
        state = train_lib.update_ema(state, config.ema_decay)
      return state, m

    state, m = jax.lax.scan(step, state, jnp.arange(steps))
    logits = jax.lax.cond(
      evaluate,
      evaluate_one,
      lambda *_: jnp.zeros((eval_idx.shape[0], num_classes), jnp.float32),
      state,
      images,
      order,
      train_count,
      eval_idx,
    )
    return state, jax.tree.map(jnp.mean, m), logits

  epoch_fn = jax.jit(
    over_folds(epoch_one, in_axes=(0, None, None, 0, 0, 0, None, None)),
    out_shardings=(folds, replicated, replicated),
    donate_argnums=0,
  )
  return init_fn, epoch_fn


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

  return call


def put(x, sharding):
  """Host array -> global jax.Array with `sharding` (works across hosts)."""
  x = np.asarray(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])


# --------------------------------------------------------------------- run files


class _RunFiles:
  """The run folder: run.json, checkpoints/ (orbax), folds/<fold>.json."""

  def __init__(self, out_dir, settings: dict):
    import orbax.checkpoint as ocp

    self.ocp = ocp
    self.dir = os.path.abspath(out_dir)
    os.makedirs(os.path.join(self.dir, 'folds'), exist_ok=True)
    self._lock = _lock(os.path.join(self.dir, '.lock'))
    try:
      self._check_or_write(settings)
    except BaseException:
      self._lock.close()
      raise
    self.manager = ocp.CheckpointManager(
      os.path.join(self.dir, 'checkpoints'),
      options=ocp.CheckpointManagerOptions(
        max_to_keep=1, cleanup_tmp_directories=True, enable_async_checkpointing=False
      ),
    )

  def _check_or_write(self, settings: dict):
    """Writes run.json, or checks that the run there has these settings and data."""
    run_json = os.path.join(self.dir, 'run.json')
    if os.path.exists(run_json):
      with open(run_json) as f:
        old = json.load(f)
      old, settings = json.loads(json.dumps(old)), json.loads(json.dumps(settings))
      diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
      if set(diff) == {'data'}:
        was, now = diff['data']
        what = [k for k in now if was.get(k) != now.get(k)]
        raise ValueError(
          f'{self.dir} holds a run on other data: the {", ".join(what)} differ (the dataset '
          f'was rebuilt or changed: {was.get("n")} samples then, {now.get("n")} now). '
          'Its finished folds do not apply to these data: choose another output folder, '
          'or delete this one to start again.'
        )
      if diff:
        lines = '\n'.join(f'  {k}: saved {a!r}, now {b!r}' for k, (a, b) in diff.items())
        raise ValueError(
          f'{self.dir} holds a run with other settings:\n{lines}\n'
          'Resume with the same settings, or choose another output folder.'
        )
    elif jax.process_index() == 0:
      _write_json(run_json, settings)

  def fold_path(self, fold_id, replica=0):
    return os.path.join(
      self.dir, 'folds', f'fold_{fold_id:04d}' + (f'_model{replica}' if replica else '') + '.json'
    )

  def load_fold(self, fold_id, replica=0):
    path = self.fold_path(fold_id, replica)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return json.load(f)

  def save_fold(self, record):
    if jax.process_index() == 0:
      _write_json(self.fold_path(record['fold_id'], record.get('replica', 0)), record)

  def restore(self, group_subjects, state):
    """(state, history) of the latest checkpoint if it belongs to this group, else None."""
    step = self.manager.latest_step()
    if step is None:
      return None
    ocp = self.ocp
    meta = self.manager.restore(step, args=ocp.args.Composite(history=ocp.args.JsonRestore()))
    if meta['history']['subjects'] != list(group_subjects):
      return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    restored = self.manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), history=ocp.args.JsonRestore()
      ),
    )
    return restored['state'], restored['history']

  def save(self, step, state, history):
    """Writes the checkpoint; a Ctrl-C meanwhile stops the run after the write, not
    inside it (orbax's writer threads would be left half-done)."""
    ocp = self.ocp
    with _interrupts_deferred():
      self.manager.save(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), history=ocp.args.JsonSave(history)
        ),
        force=True,
      )
      self.manager.wait_until_finished()

  def close(self):
    self.manager.close()
    self._lock.close()  # releases the lock (as the end of the process would)


@contextlib.contextmanager
def _interrupts_deferred():
  """Holds back SIGINT (Ctrl-C) until the block ends, then delivers it to the handler that
  was there before (Python's raises KeyboardInterrupt)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  caught = []
  previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)
  if caught:
    signal.raise_signal(signal.SIGINT)


class RunInUseError(RuntimeError):
  """Another process is training into the same output folder."""


def _lock(path: str):
  """An exclusive lock on `path`, held while the returned file is open (the system
  drops it when the process ends, also on a kill); RunInUseError if another holds it."""
  import fcntl

  f = open(path, 'a+')
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError:
    f.seek(0)
    owner = f.read().strip() or 'another process'
    f.close()
    raise RunInUseError(
      f'{os.path.dirname(path)} is in use by a run still going '
      f'({owner}): wait for it, stop it, or choose another output folder.'
    )
  f.seek(0)
  f.truncate()
  f.write(f'pid {os.getpid()}')
  f.flush()
  return f


def _write_json(path, obj):
  """Atomic write: a killed process leaves the old file or the new one, never half."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(obj, f)
  os.replace(tmp, path)


# ------------------------------------------------------------------------ run_loso


class NonFiniteError(RuntimeError):
  """A fold's model gave logits that are not finite (diverged training)."""


def run_loso(
  images,
  labels,
  subjects,
  config: LosoConfig = LosoConfig(),
  model=None,
  *,
  num_classes: int | None = None,
  only_subjects=None,
  strata=None,
  out_dir=None,
  progress: bool = True,
  on_epoch: Callable | None = None,
  devices=None,
  run_record: dict | None = None,
) -> dict:
  """Leave-one-subject-out training and evaluation on in-memory arrays.

  Args:
    images: (N, S, S, 3) float32 flow images (u, v, strain); S a multiple of 32 for HFANet.
    labels: (N,) int class indices in [0, num_classes).
    subjects: (N,) subject of each sample (str or int).
    config: LosoConfig.
    model: a linen module called as `model(x, train)` with BatchNorm statistics (and,
      if it has dropout, the 'dropout' rng); default `hfa_jax.HFANet(num_classes)`.
    num_classes: default labels.max() + 1.
    only_subjects: test only these subjects (part of a LOSO; training still uses
      every other subject), or with `config.group_folds` these folds ('fold1', ...).
    strata: (N,) database of each sample: validation subjects and grouped folds are
      drawn from each database in proportion (default: one stratum).
    out_dir: if given, checkpoints the stacked fold states (orbax) after the first epoch
      that ends `config.checkpoint_minutes` after the group's start or its last
      checkpoint, and saves every finished fold; a rerun with the same out_dir resumes
      and gives the same results as an uninterrupted run.
    progress: show a tqdm bar.
    on_epoch: called as on_epoch(group_index, epoch, info) after each epoch (and its
      checkpoint); may raise to stop the run (tests use it to simulate a kill).
    devices: devices of the fold mesh (default all).
    run_record: more JSON settings that identify the run (e.g. the dataset's name),
      saved in out_dir/run.json with the config and compared on a resume.

  Returns a dict: 'metrics' (pooled UF1, UAR, accuracy, confusion matrix),
  'per_subject', 'predictions' (per test sample: 'index', 'subject', 'fold', 'label',
  'pred', 'probs' (n, C), 'epoch'), 'history' per fold (train loss/accuracy, test
  accuracy and validation UF1 per epoch), 'selected_epoch' per fold, 'protocol'.
  With `config.ensemble` K > 1, each fold trains K models from their own seeds and
  scores the mean of their class probabilities; 'history' and 'epoch' are the first
  model's, 'selected_epoch' lists all K.

  Which epoch of a fold is scored (`config.select_epoch`):
  - 'last' (default): the model after the last epoch (honest);
  - 'validation': the epoch with the best UF1 on validation subjects held out of the
    fold's training subjects (ties: the later epoch); with `config.retrain`, a model
    retrained on all training subjects for that many epochs. The test subject never
    influences training or the choice (honest);
  - 'best_test': the epoch with the best accuracy on the fold's own test subject: this
    peeks at the test data and inflates the numbers; the result says so.

  Raises NonFiniteError if a fold's scored logits are not finite.
  """
  config.validate()
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels).astype(np.int32)
  subjects = np.asarray(subjects).astype(str)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'images must be (N, S, S, 3), got {images.shape}')
  if not len(images) == len(labels) == len(subjects):
    raise ValueError(f'{len(images)} images, {len(labels)} labels, {len(subjects)} subjects')
  if strata is not None and len(strata) != len(labels):
    raise ValueError(f'{len(strata)} strata for {len(labels)} samples')
  num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f'labels must lie in 0..{num_classes - 1}')
  if model is None:
    import hfa_jax

    model = hfa_jax.HFANet(num_classes=num_classes)

  plan = make_plan(labels, subjects, config, only_subjects, strata)
  mesh = fold_mesh(devices)
  width = folds_at_once(
    config.folds_in_parallel,
    len(plan.folds) * config.ensemble,
    images.shape[1],
    config.batch_size,
    list(mesh.devices.flat),
  )
  epochs = config.epochs

  files = None
  if out_dir is not None:
    data = dict(
      n=len(labels),
      shape=list(images.shape),
      labels=_digest(labels),
      subjects=_digest(subjects),
      images=_digest(images),
    )
    if strata is not None:
      data['strata'] = _digest(np.asarray(strata).astype(str))
    files = _RunFiles(
      out_dir,
      dict(
        config={
          k: v
          for k, v in dataclasses.asdict(config).items()
          if k not in ('folds_in_parallel', 'checkpoint_minutes')
        },
        model=repr(model),
        num_classes=num_classes,
        data=data,
        **({'run': run_record} if run_record else {}),
      ),
    )

  # A unit is one model: (fold, replica); an ensemble trains `config.ensemble` per fold.
  units = [(i, r) for i in range(len(plan.folds)) for r in range(config.ensemble)]
  records = {}  # (fold_id, replica) -> record (JSON-compatible)
  todo = []
  for u, (i, r) in enumerate(units):
    rec = files.load_fold(plan.fold_ids[i], r) if files else None
    if rec is not None:
      records[plan.fold_ids[i], r] = rec
    else:
      todo.append(u)
  groups = [todo[i : i + width] for i in range(0, len(todo), width)]
  unit_name = lambda u: plan.folds[units[u][0]] + (f'#{units[u][1]}' if units[u][1] else '')

  folds = NamedSharding(mesh, P('folds'))
  replicated = NamedSharding(mesh, P())
  init_fn, epoch_fn = fold_program(
    model,
    config,
    plan.steps_per_epoch,
    plan.eval_batch,
    (1,) + images.shape[1:],
    num_classes,
    mesh,
  )
  images_d, labels_d = put(images, replicated), put(labels, replicated)
  eval_idx = plan.eval_idx
  phases_per_group = 2 if config.retrain else 1

  bar = None
  if progress and groups:
    from tqdm.auto import tqdm

    bar = tqdm(
      total=len(groups) * epochs * phases_per_group,
      unit='epoch',
      dynamic_ncols=True,
      desc=f'LOSO {len(plan.folds)} folds'
      + (f' x {config.ensemble} models' if config.ensemble > 1 else '')
      + f', {width} at a time',
    )
  try:
    for g, group in enumerate(groups):
      # Pad the group with copies of its last unit; their results are dropped.
      members = [units[u][0] for u in group]  # plan index of each unit's fold
      padded = group + [group[-1]] * (width - len(group))
      rows = [units[u][0] for u in padded]
      n = len(members)
      keys = np.stack(
        [fold_key(config.seed, plan.fold_ids[units[u][0]], units[u][1]) for u in padded]
      )
      tables = dict(
        train=[put(t[rows], folds) for t in (plan.train_idx, plan.train_count)],
        retrain=[put(t[rows], folds) for t in (plan.rest_idx, plan.rest_count)],
      )
      eval_table = put(eval_idx[rows], folds)
      state = init_fn(keys)
      history = dict(
        subjects=[unit_name(u) for u in group], chosen=None, phases=[_new_phase('train', epochs)]
      )
      restored = files.restore(history['subjects'], state) if files else None
      if restored is not None:
        state, history = restored
        if history['phases'][-1]['epochs_done'] == 0:  # a phase that has not begun
          state = init_fn(keys)
      last_save = time.perf_counter()
      first = True
      while True:
        phase = history['phases'][-1]
        p_index = len(history['phases']) - 1
        done_before = p_index * epochs + phase['epochs_done']
        if bar is not None:
          bar.set_description(
            f'models {group[0] + 1}-{group[-1] + 1}/{len(units)}'
            + (' retrain' if phase['name'] == 'retrain' else '')
          )
          if first:
            bar.update(done_before)
        first = False
        want = set(history['chosen'] or [])
        start = phase['epochs_done']
        for epoch in range(start, phase['epochs']):
          t0 = time.perf_counter()
          if phase['name'] == 'retrain':
            evaluate = epoch + 1 in want
          else:
            evaluate = (
              config.eval_every_epoch or config.select_epoch != 'last' or epoch + 1 == epochs
            )
          if bar is not None and g == 0 and epoch == start and p_index == 0:
            bar.set_postfix_str('compiling (once; cached for later runs)')
          state, m, logits = epoch_fn(
            state,
            images_d,
            labels_d,
            *tables[phase['name']],
            eval_table,
            np.int32(epoch),
            np.bool_(evaluate),
          )
          m, logits = jax.device_get((m, logits))
          phase['train_loss'].append(np.asarray(m['loss'][:n], np.float64).tolist())
          phase['train_accuracy'].append(np.asarray(m['accuracy'][:n], np.float64).tolist())
          phase['eval_logits'].append(
            np.asarray(logits[:n], np.float64).tolist() if evaluate else None
          )
          phase['epochs_done'] = epoch + 1
          # (after a phase's last epoch, the fold records or the retrain checkpoint below
          # are the checkpoint)
          due = time.perf_counter() - last_save >= 60 * config.checkpoint_minutes
          if files and due and epoch + 1 < phase['epochs']:
            # Steps grow along the plan, whatever the grouping of a resumed run.
            files.save((group[0] * phases_per_group + p_index) * epochs + epoch + 1, state, history)
            last_save = time.perf_counter()
          dt = time.perf_counter() - t0
          if bar is not None:
            bar.set_postfix(
              loss=f'{np.mean(m["loss"][:n]):.3f}',
              samples_s=f'{n * plan.steps_per_epoch * config.batch_size / dt:.0f}',
            )
            bar.update(1)
          if on_epoch is not None:
            on_epoch(
              g,
              epoch,
              dict(loss=m['loss'][:n], accuracy=m['accuracy'][:n], seconds=dt, phase=phase['name']),
            )
        if phase['name'] == 'retrain' or not config.retrain:
          break
        # Validation chose each fold's epoch; retrain on all training subjects that long.
        history['chosen'] = [
          _validation_choice(plan, i, phase, j, labels, num_classes) for j, i in enumerate(members)
        ]
        history['phases'].append(_new_phase('retrain', max(history['chosen'])))
        if bar is not None:
          bar.total -= epochs - max(history['chosen'])
          bar.refresh()
        if files:
          files.save((group[0] * phases_per_group + 1) * epochs, state, history)
          last_save = time.perf_counter()
        state = init_fn(keys)
      for j, u in enumerate(group):
        i, r = units[u]
        rec = _fold_record(plan, i, history, j, labels, num_classes, config) | dict(replica=r)
        records[rec['fold_id'], r] = rec
        if files:
          files.save_fold(rec)
  finally:
    if bar is not None:
      bar.close()
    if files:
      files.close()
  return _results(plan, records, labels, subjects, num_classes, config)


def _new_phase(name: str, epochs: int) -> dict:
  return dict(
    name=name, epochs=epochs, epochs_done=0, train_loss=[], train_accuracy=[], eval_logits=[]
  )


def _digest(x) -> str:
  import hashlib

  x = np.ascontiguousarray(x)
  return hashlib.sha1(x.tobytes() + str(x.dtype).encode()).hexdigest()[:16]


def _split_eval(plan: FoldPlan, i: int, logits):
  """Test and validation logits (n_test, C), (n_val, C) of fold i from an eval row."""
  if logits is None:
    return None, None
  width = plan.test_idx.shape[1]
  test = logits[: int(plan.test_count[i])]
  val = logits[width : width + int(plan.val_count[i])]
  return test, val


def _validation_uf1(plan: FoldPlan, i: int, phase: dict, j: int, labels, num_classes) -> list:
  """Validation UF1 of fold i (column j of its group) after every epoch (None: not
  evaluated); [] without validation subjects."""
  if not plan.val_count[i]:
    return []
  y = labels[plan.val_idx[i, : plan.val_count[i]]]
  out = []
  for e in phase['eval_logits']:
    _, val = _split_eval(plan, i, None if e is None else e[j])
    out.append(None if val is None else metrics_lib.uf1(y, np.asarray(val).argmax(-1), num_classes))
  return out


def _validation_choice(plan, i, phase, j, labels, num_classes) -> int:
  """The epoch (1-based) of best validation UF1, the later one on ties."""
  uf1 = np.array(
    [-1.0 if u is None else u for u in _validation_uf1(plan, i, phase, j, labels, num_classes)]
  )
  return int(len(uf1) - np.argmax(uf1[::-1]))


def _fold_record(
  plan: FoldPlan, i: int, history: dict, j: int, labels, num_classes, config: LosoConfig
) -> dict:
  """Everything kept of finished fold i (column j of its group's history).

  Raises NonFiniteError if the logits that will be scored are not finite.
  """
  train = history['phases'][0]
  split = [_split_eval(plan, i, None if e is None else e[j]) for e in train['eval_logits']]
  rec = dict(
    fold=plan.folds[i],
    subjects=plan.members[i],
    fold_id=plan.fold_ids[i],
    test_index=plan.test_idx[i, : plan.test_count[i]].tolist(),
    val_subjects=plan.val_subjects[i],
    val_index=plan.val_idx[i, : plan.val_count[i]].tolist(),
    train_loss=[e[j] for e in train['train_loss']],
    train_accuracy=[e[j] for e in train['train_accuracy']],
    test_logits=[t for t, _ in split],
    val_uf1=_validation_uf1(plan, i, train, j, labels, num_classes),
    selected_epoch=None,
    retrain=None,
  )
  if config.select_epoch == 'validation':
    rec['selected_epoch'] = (
      history['chosen'][j]
      if history['chosen'] is not None
      else _validation_choice(plan, i, train, j, labels, num_classes)
    )
  if config.retrain:
    phase = history['phases'][1]
    e = rec['selected_epoch']
    rec['retrain'] = dict(
      train_loss=[x[j] for x in phase['train_loss']],
      train_accuracy=[x[j] for x in phase['train_accuracy']],
      test_logits=_split_eval(plan, i, phase['eval_logits'][e - 1][j])[0],
    )
  epoch, logits = _scored(rec, labels, config)
  if not np.isfinite(np.asarray(logits, np.float64)).all():
    losses = np.asarray(rec['train_loss'], np.float64)
    bad = np.flatnonzero(~np.isfinite(losses))
    when = f'; its training loss is not finite from epoch {bad[0] + 1}' if len(bad) else ''
    raise NonFiniteError(
      f"fold {rec['fold']}: the logits of epoch {epoch} are not finite{when}. The training "
      'diverged: lower the learning rate, or set grad_clip.'
    )
  return rec


def _scored(rec: dict, labels, config: LosoConfig) -> tuple[int, list]:
  """(epoch, test logits (n, C)) of a fold record under config.select_epoch."""
  logits = rec['test_logits']
  if config.select_epoch == 'validation':
    e = rec['selected_epoch']
    return e, (rec['retrain']['test_logits'] if rec['retrain'] else logits[e - 1])
  if config.select_epoch == 'best_test':
    y = labels[np.asarray(rec['test_index'], np.int64)]
    acc = [-1.0 if l is None else float((np.asarray(l).argmax(-1) == y).mean()) for l in logits]
    e = int(np.argmax(acc)) + 1
    return e, logits[e - 1]
  return len(logits), logits[-1]


def _softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def _results(plan, records, labels, subjects, num_classes, config) -> dict:
  """Pooled metrics, per-subject metrics and per-sample predictions from the fold records."""
  idx, fold_of, pred, probs, epoch_used = [], [], [], [], []
  history, selected = {}, {}
  for name, fid in zip(plan.folds, plan.fold_ids):
    models = [records[fid, r] for r in range(config.ensemble)]
    rec = models[0]
    test_index = np.asarray(rec['test_index'], np.int64)
    y = labels[test_index]
    scored = [_scored(m, labels, config) for m in models]
    logits = [np.asarray(l, np.float64) for _, l in scored]
    p_mean = np.mean([_softmax(l) for l in logits], axis=0)  # an ensemble averages probabilities
    p = logits[0].argmax(-1) if len(logits) == 1 else p_mean.argmax(-1)
    e = scored[0][0]
    idx.append(test_index)
    fold_of += [name] * len(y)
    pred.append(p)
    probs.append(p_mean)
    epoch_used += [e] * len(y)
    selected[name] = e if len(scored) == 1 else [e for e, _ in scored]
    test_acc = [
      float('nan') if l is None else float((np.asarray(l).argmax(-1) == y).mean())
      for l in rec['test_logits']
    ]
    history[name] = dict(
      train_loss=rec['train_loss'],
      train_accuracy=rec['train_accuracy'],
      test_accuracy=test_acc,
      val_uf1=rec['val_uf1'],
      val_subjects=rec['val_subjects'],
    )
    if rec['retrain']:
      history[name]['retrain_loss'] = rec['retrain']['train_loss']
  idx = np.concatenate(idx)
  order = np.argsort(idx, kind='stable')
  predictions = dict(
    index=idx[order],
    subject=subjects[idx][order],
    fold=np.asarray(fold_of)[order],
    label=labels[idx][order],
    pred=np.concatenate(pred)[order],
    probs=np.concatenate(probs)[order],
    epoch=np.asarray(epoch_used)[order],
  )
  per_subject = {}
  for s in sorted(set(predictions['subject'].tolist()), key=natural_key):
    at = predictions['subject'] == s
    y, p = predictions['label'][at], predictions['pred'][at]
    per_subject[s] = dict(
      n=int(at.sum()),
      accuracy=metrics_lib.accuracy(y, p),
      uf1=metrics_lib.uf1(y, p, num_classes),
      uar=metrics_lib.uar(y, p, num_classes),
      fold=str(predictions['fold'][at][0]),
      epoch=int(predictions['epoch'][at][0]),
    )
  return dict(
    metrics=metrics_lib.summarize(predictions['label'], predictions['pred'], num_classes),
    per_subject=per_subject,
    predictions=predictions,
    history=history,
    selected_epoch=selected,
    num_classes=num_classes,
    select_epoch=config.select_epoch,
    protocol=config.protocol(),
    steps_per_epoch=plan.steps_per_epoch,
  )
