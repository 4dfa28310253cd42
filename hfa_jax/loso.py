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

import dataclasses
import functools
import json
import os
import re
import time
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from hfa_jax import metrics as metrics_lib
from hfa_jax import train as train_lib


@dataclasses.dataclass(frozen=True)
class LosoConfig:
  """Training settings of a LOSO run (every field is saved with the results)."""
  epochs: int = 20
  batch_size: int = 32
  steps_per_epoch: int = 0          # 0: ceil(largest training set / batch_size)
  learning_rate: float = 1e-3
  schedule: str = 'cosine'          # 'cosine' | 'constant'
  warmup_epochs: float = 0.0
  optimizer: str = 'adamw'          # 'adamw' | 'adam'
  weight_decay: float = 1e-4
  grad_clip: float = 0.0
  label_smoothing: float = 0.0
  augment: str = 'flip'             # '+'-joined subset of {flip, shift}, or 'none'
  max_shift: int = 2                # pixels, with 'shift'
  seed: int = 0
  folds_in_parallel: int = 0        # 0: every fold at once (rounded up to the device count)
  eval_batch_size: int = 64
  select_best_epoch_by_test: bool = False   # NOT honest: see run_loso
  eval_every_epoch: bool = True     # test curves; False evaluates after the last epoch only
  precise_bn: int = 0               # >0: evaluate with BatchNorm statistics recomputed on
                                    # this many training samples (train.precise_batch_stats)
  checkpoint_every: int = 1         # epochs between checkpoints (with out_dir)

  def validate(self):
    """Raises ValueError naming the first bad field."""
    positive = ('epochs', 'batch_size', 'eval_batch_size', 'checkpoint_every')
    for name in positive:
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
    for name in ('steps_per_epoch', 'folds_in_parallel', 'max_shift', 'weight_decay', 'precise_bn',
                 'grad_clip', 'warmup_epochs'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
    if not self.learning_rate > 0:
      raise ValueError(f'learning_rate must be > 0, got {self.learning_rate}')
    if not 0 <= self.label_smoothing < 1:
      raise ValueError(f'label_smoothing must be in [0, 1), got {self.label_smoothing}')
    if self.schedule not in ('cosine', 'constant'):
      raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
    if self.optimizer not in ('adamw', 'adam'):
      raise ValueError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
    self.augmentations()

  def augmentations(self) -> tuple[bool, int]:
    """(flip, shift pixels) from `augment`."""
    parts = {p for p in re.split(r'[+,]', self.augment.strip().lower()) if p} - {'none'}
    unknown = parts - {'flip', 'shift'}
    if unknown:
      raise ValueError(f"augment must be 'none' or a '+'-joined subset of flip, shift; "
                       f'got {self.augment!r}')
    return 'flip' in parts, (self.max_shift if 'shift' in parts else 0)


def natural_key(s: str):
  """Sort key that orders 's2' before 's10'."""
  return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', str(s))]


def fold_mesh(devices=None) -> Mesh:
  """A 1-D mesh ('folds',) over all devices (auto axis type, unlike jax.make_mesh)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), ('folds',))


# --------------------------------------------------------------------------- plan


@dataclasses.dataclass
class FoldPlan:
  """Host-side index tables of every selected fold (shapes shared by all folds)."""
  subjects: list          # the test subject of each selected fold, in run order
  fold_ids: list          # index of each among all subjects (drives the RNG)
  train_idx: np.ndarray   # (folds, max_train) int32, padded with the first index
  train_count: np.ndarray  # (folds,) int32
  test_idx: np.ndarray    # (folds, max_test_padded) int32, padded
  test_count: np.ndarray  # (folds,) int32
  eval_batch: int
  steps_per_epoch: int


def make_plan(labels, subjects, config: LosoConfig, only_subjects=None) -> FoldPlan:
  """Splits the samples into LOSO folds (all subjects, or `only_subjects`)."""
  subjects = np.asarray(subjects).astype(str)
  everyone = sorted(set(subjects.tolist()), key=natural_key)
  if len(everyone) < 2:
    raise ValueError(f'LOSO needs at least 2 subjects, got {everyone}')
  chosen = everyone if not only_subjects else [str(s) for s in only_subjects]
  unknown = [s for s in chosen if s not in everyone]
  if unknown:
    raise ValueError(f'unknown subjects {unknown}; the data has {everyone}')
  if len(set(chosen)) != len(chosen):
    raise ValueError(f'subjects listed twice: {chosen}')
  trains = [np.flatnonzero(subjects != s) for s in chosen]
  tests = [np.flatnonzero(subjects == s) for s in chosen]
  # Shapes (hence the random draws and steps of a fold) come from ALL subjects, so a
  # fold gives the same result in a partial LOSO as in the whole one.
  counts = [int((subjects == s).sum()) for s in everyone]
  max_train = len(subjects) - min(counts)
  max_test = max(counts)
  eval_batch = min(config.eval_batch_size, max_test)
  max_test = -(-max_test // eval_batch) * eval_batch
  pad = lambda idx, n: np.concatenate([idx, np.full(n - len(idx), idx[0])]).astype(np.int32)
  steps = config.steps_per_epoch or -(-max_train // config.batch_size)
  return FoldPlan(
      subjects=chosen, fold_ids=[everyone.index(s) for s in chosen],
      train_idx=np.stack([pad(t, max_train) for t in trains]),
      train_count=np.array([len(t) for t in trains], np.int32),
      test_idx=np.stack([pad(t, max_test) for t in tests]),
      test_count=np.array([len(t) for t in tests], np.int32),
      eval_batch=eval_batch, steps_per_epoch=steps)


def fold_key(seed: int, fold_id: int) -> np.ndarray:
  """The raw uint32[2] key of a fold: a pure function of (seed, fold)."""
  return np.asarray(jax.random.fold_in(jax.random.PRNGKey(seed), fold_id))


# ------------------------------------------------------------------ device programs


def optim_config(config: LosoConfig, steps_per_epoch: int) -> train_lib.OptimConfig:
  return train_lib.OptimConfig(
      optimizer=config.optimizer, learning_rate=config.learning_rate,
      schedule=config.schedule, warmup_steps=round(config.warmup_epochs * steps_per_epoch),
      total_steps=config.epochs * steps_per_epoch, weight_decay=config.weight_decay,
      grad_clip=config.grad_clip, label_smoothing=config.label_smoothing)


@functools.lru_cache(maxsize=8)
def make_fold_fns(model: nn.Module, config: LosoConfig, steps_per_epoch: int, eval_batch: int,
                  input_shape: tuple, num_classes: int, mesh: Mesh):
  """(init_fn, epoch_fn) over a stacked fold axis sharded on `mesh`.

  init_fn(keys (F, 2) uint32) -> stacked TrainState, sharded over the folds. It
  runs one jitted single-fold init per fold (one compile whatever F) and stacks.
  epoch_fn(state, images (N,S,S,3), labels (N,), train_idx (F,T), train_count (F,),
           test_idx (F,Tt), epoch (), evaluate () bool)
      -> (state, {'loss','accuracy'} (F,), logits (F,Tt,C))
  runs one epoch of `steps_per_epoch` steps per fold (a lax.scan), then, if
  `evaluate`, evaluates every fold on its test subject in batches of `eval_batch`
  (else the logits are zeros). The state is donated.
  Cached: a second run with the same arguments reuses the compiled programs.
  """
  tx = train_lib.make_optimizer(optim_config(config, steps_per_epoch))
  flip, shift = config.augmentations()
  batch, steps = config.batch_size, steps_per_epoch
  folds = NamedSharding(mesh, P('folds'))
  replicated = NamedSharding(mesh, P())

  init_one = jax.jit(lambda k: train_lib.create_train_state(k, model, input_shape, tx))

  def init_fn(keys):
    states = [jax.device_get(init_one(k)) for k in np.asarray(keys)]
    return jax.tree.map(lambda *xs: put(np.stack(xs), folds), *states)

  def evaluate_one(state, images, order, train_count, test_idx):
    if config.precise_bn:
      idx = order[jnp.arange(config.precise_bn) % train_count]
      state = state.replace(batch_stats=train_lib.precise_batch_stats(state, images[idx]))
    logits = jax.lax.map(lambda idx: train_lib.eval_step(state, images[idx]),
                         test_idx.reshape(-1, eval_batch))
    return logits.reshape(-1, num_classes)

  def epoch_one(state, images, labels, train_idx, train_count, test_idx, epoch, evaluate):
    perm_key, aug_key = jax.random.split(jax.random.fold_in(state.rng, epoch))
    # A random order of this fold's training samples (padding sorted last).
    u = jax.random.uniform(perm_key, train_idx.shape)
    u = jnp.where(jnp.arange(train_idx.shape[0]) < train_count, u, 2.0)
    order = train_idx[jnp.argsort(u)]

    def step(state, s):
      idx = order[(s * batch + jnp.arange(batch)) % train_count]
      x = train_lib.augment(jax.random.fold_in(aug_key, s), images[idx], flip, shift)
      return train_lib.train_step(state, x, labels[idx], config.label_smoothing)

    state, m = jax.lax.scan(step, state, jnp.arange(steps))
    logits = jax.lax.cond(
        evaluate, evaluate_one,
        lambda *_: jnp.zeros((test_idx.shape[0], num_classes), jnp.float32),
        state, images, order, train_count, test_idx)
    return state, jax.tree.map(jnp.mean, m), logits

  epoch_fn = jax.jit(
      over_folds(epoch_one, in_axes=(0, None, None, 0, 0, 0, None, None)),
      out_shardings=(folds, replicated, replicated), donate_argnums=0)
  return init_fn, epoch_fn


def over_folds(fn: Callable, in_axes: tuple) -> Callable:
  """jax.vmap(fn) over the leading fold axis; a single fold runs without vmap.

  vmap over stacked parameters turns every convolution into a grouped one, which
  XLA:CPU runs about 1.5x slower even for one fold (HFANet, side 32, batch 16:
  1.13 s vs 0.73 s per step), so a fold axis of size 1 is squeezed instead.
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
    run_json = os.path.join(self.dir, 'run.json')
    if os.path.exists(run_json):
      with open(run_json) as f:
        old = json.load(f)
      diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
      if diff:
        lines = '\n'.join(f'  {k}: saved {a!r}, now {b!r}' for k, (a, b) in diff.items())
        raise ValueError(f'{self.dir} holds a run with other settings:\n{lines}\n'
                         'Resume with the same settings, or choose another output folder.')
    elif jax.process_index() == 0:
      _write_json(run_json, settings)
    self.manager = ocp.CheckpointManager(
        os.path.join(self.dir, 'checkpoints'),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, cleanup_tmp_directories=True,
                                             enable_async_checkpointing=False))

  def fold_path(self, fold_id):
    return os.path.join(self.dir, 'folds', f'fold_{fold_id:04d}.json')

  def load_fold(self, fold_id):
    path = self.fold_path(fold_id)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return json.load(f)

  def save_fold(self, record):
    if jax.process_index() == 0:
      _write_json(self.fold_path(record['fold_id']), record)

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
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), history=ocp.args.JsonRestore()))
    return restored['state'], restored['history']

  def save(self, step, state, history):
    ocp = self.ocp
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), history=ocp.args.JsonSave(history)), force=True)
    self.manager.wait_until_finished()

  def close(self):
    self.manager.close()


def _write_json(path, obj):
  """Atomic write: a killed process leaves the old file or the new one, never half."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(obj, f)
  os.replace(tmp, path)


# ------------------------------------------------------------------------ run_loso


def run_loso(images, labels, subjects, config: LosoConfig = LosoConfig(), model=None, *,
             num_classes: int | None = None, only_subjects=None, out_dir=None,
             progress: bool = True, on_epoch: Callable | None = None,
             devices=None) -> dict:
  """Leave-one-subject-out training and evaluation on in-memory arrays.

  Args:
    images: (N, S, S, 3) float32 flow images (u, v, strain); S a multiple of 32 for HFANet.
    labels: (N,) int class indices in [0, num_classes).
    subjects: (N,) subject of each sample (str or int).
    config: LosoConfig.
    model: a linen module called as `model(x, train)` with BatchNorm statistics;
      default `hfa_jax.HFANet(num_classes)`.
    num_classes: default labels.max() + 1.
    only_subjects: test only these subjects (part of a LOSO; training still uses
      every other subject).
    out_dir: if given, checkpoints the stacked fold states (orbax) every
      `config.checkpoint_every` epochs and saves every finished fold; a rerun with the same out_dir resumes and gives the
      same results as an uninterrupted run.
    progress: show a tqdm bar.
    on_epoch: called as on_epoch(group_index, epoch, info) after each epoch (and its
      checkpoint); may raise to stop the run (tests use it to simulate a kill).
    devices: devices of the fold mesh (default all).

  Returns a dict: 'metrics' (pooled UF1, UAR, accuracy, confusion matrix),
  'per_subject', 'predictions' (per test sample: 'index', 'subject', 'label', 'pred',
  'probs' (n, C), 'epoch'), 'history' per subject (train loss/accuracy and test
  accuracy per epoch), 'selected_epoch' per subject, 'select_best_epoch_by_test'.

  By default each fold is evaluated after its last epoch (honest). With
  `config.select_best_epoch_by_test`, each fold takes the epoch with the best
  accuracy on its own test subject (the first such epoch): this peeks at the test
  data and inflates the numbers; the result says so.
  """
  config.validate()
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels).astype(np.int32)
  subjects = np.asarray(subjects).astype(str)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'images must be (N, S, S, 3), got {images.shape}')
  if not len(images) == len(labels) == len(subjects):
    raise ValueError(f'{len(images)} images, {len(labels)} labels, {len(subjects)} subjects')
  num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f'labels must lie in 0..{num_classes - 1}')
  if model is None:
    import hfa_jax
    model = hfa_jax.HFANet(num_classes=num_classes)

  plan = make_plan(labels, subjects, config, only_subjects)
  mesh = fold_mesh(devices)
  n_dev = mesh.devices.size
  width = config.folds_in_parallel or len(plan.subjects)
  width = -(-width // n_dev) * n_dev        # a multiple of the device count
  epochs = config.epochs

  files = None
  if out_dir is not None:
    files = _RunFiles(out_dir, dict(
        config={k: v for k, v in dataclasses.asdict(config).items()
                if k not in ('folds_in_parallel', 'checkpoint_every')},
        model=repr(model), num_classes=num_classes,
        data=dict(n=len(labels), shape=list(images.shape),
                  labels=_digest(labels), subjects=_digest(subjects),
                  images=_digest(images))))

  records = {}     # fold_id -> record (JSON-compatible)
  todo = []
  for i, fid in enumerate(plan.fold_ids):
    rec = files.load_fold(fid) if files else None
    if rec is not None:
      records[fid] = rec
    else:
      todo.append(i)
  groups = [todo[i:i + width] for i in range(0, len(todo), width)]

  folds = NamedSharding(mesh, P('folds'))
  replicated = NamedSharding(mesh, P())
  # Fields that do not change the compiled programs are normalised for the cache.
  program_config = dataclasses.replace(config, seed=0, folds_in_parallel=0, checkpoint_every=1,
                                       select_best_epoch_by_test=False, steps_per_epoch=0,
                                       eval_every_epoch=True,
                                       eval_batch_size=1)
  init_fn, epoch_fn = make_fold_fns(model, program_config, plan.steps_per_epoch,
                                    plan.eval_batch, (1,) + images.shape[1:], num_classes, mesh)
  images_d, labels_d = put(images, replicated), put(labels, replicated)

  bar = None
  if progress and groups:
    from tqdm.auto import tqdm
    bar = tqdm(total=len(groups) * epochs, unit='epoch', dynamic_ncols=True,
               desc=f'LOSO {len(plan.subjects)} folds')
  try:
    for g, members in enumerate(groups):
      # Pad the group with copies of its last fold; their results are dropped.
      rows = members + [members[-1]] * (width - len(members))
      group_subjects = [plan.subjects[i] for i in members]
      keys = np.stack([fold_key(config.seed, plan.fold_ids[i]) for i in rows])
      tables = [put(t[rows], folds) for t in (plan.train_idx, plan.train_count, plan.test_idx)]
      state = init_fn(keys)
      history = dict(subjects=group_subjects, epochs_done=0, train_loss=[], train_accuracy=[],
                     test_logits=[])
      restored = files.restore(group_subjects, state) if files else None
      if restored is not None:
        state, history = restored
      if bar is not None:
        bar.set_description(f'folds {members[0] + 1}-{members[-1] + 1}/{len(plan.subjects)}')
        bar.update(history['epochs_done'])
      for epoch in range(history['epochs_done'], epochs):
        t0 = time.perf_counter()
        evaluate = (config.eval_every_epoch or config.select_best_epoch_by_test
                    or epoch + 1 == epochs)
        state, m, logits = epoch_fn(state, images_d, labels_d, *tables, np.int32(epoch),
                                    np.bool_(evaluate))
        m, logits = jax.device_get((m, logits))
        n = len(members)
        history['train_loss'].append(np.asarray(m['loss'][:n], np.float64).tolist())
        history['train_accuracy'].append(np.asarray(m['accuracy'][:n], np.float64).tolist())
        history['test_logits'].append(
            np.asarray(logits[:n], np.float64).tolist() if evaluate else None)
        history['epochs_done'] = epoch + 1
        # (after the last epoch, the fold records below are the checkpoint)
        if files and (epoch + 1) % config.checkpoint_every == 0 and epoch + 1 < epochs:
          # Steps grow along the plan, whatever the grouping of a resumed run.
          files.save(members[0] * epochs + epoch + 1, state, history)
        dt = time.perf_counter() - t0
        if bar is not None:
          bar.set_postfix(loss=f'{np.mean(m["loss"][:n]):.3f}',
                          samples_s=f'{n * plan.steps_per_epoch * config.batch_size / dt:.0f}')
          bar.update(1)
        if on_epoch is not None:
          on_epoch(g, epoch, dict(loss=m['loss'][:n], accuracy=m['accuracy'][:n], seconds=dt))
      for j, i in enumerate(members):
        rec = _fold_record(plan, i, history, j)
        records[rec['fold_id']] = rec
        if files:
          files.save_fold(rec)
  finally:
    if bar is not None:
      bar.close()
    if files:
      files.close()
  return _results(plan, records, labels, num_classes, config)


def _digest(x) -> str:
  import hashlib
  x = np.ascontiguousarray(x)
  return hashlib.sha1(x.tobytes() + str(x.dtype).encode()).hexdigest()[:16]


def _fold_record(plan: FoldPlan, i: int, history: dict, j: int) -> dict:
  """Everything kept of finished fold i (column j of its group's history)."""
  n = int(plan.test_count[i])
  return dict(
      subject=plan.subjects[i], fold_id=plan.fold_ids[i],
      test_index=plan.test_idx[i, :n].tolist(),
      train_loss=[e[j] for e in history['train_loss']],
      train_accuracy=[e[j] for e in history['train_accuracy']],
      test_logits=[None if e is None else e[j][:n] for e in history['test_logits']])


def _softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def _results(plan, records, labels, num_classes, config) -> dict:
  """Pooled metrics, per-subject metrics and per-sample predictions from the fold records."""
  idx, subj, pred, probs, epoch_used = [], [], [], [], []
  per_subject, history, selected = {}, {}, {}
  for s, fid in zip(plan.subjects, plan.fold_ids):
    rec = records[fid]
    test_index = np.asarray(rec['test_index'], np.int64)
    y = labels[test_index]
    nan = np.full((len(y), num_classes), np.nan)
    logits = np.stack([nan if l is None else np.asarray(l, np.float64)
                       for l in rec['test_logits']])                # (E, n, C); NaN: no eval
    test_acc = np.where(np.isnan(logits[:, 0, 0]), np.nan,
                        (logits.argmax(-1) == y).mean(-1))         # (E,)
    e = int(np.nanargmax(test_acc)) if config.select_best_epoch_by_test else len(logits) - 1
    p = logits[e].argmax(-1)
    idx.append(test_index); subj += [s] * len(y); pred.append(p)
    probs.append(_softmax(logits[e])); epoch_used += [e + 1] * len(y)
    selected[s] = e + 1
    per_subject[s] = dict(n=int(len(y)), accuracy=float((p == y).mean()),
                          uf1=metrics_lib.uf1(y, p, num_classes),
                          uar=metrics_lib.uar(y, p, num_classes), epoch=e + 1)
    history[s] = dict(train_loss=rec['train_loss'], train_accuracy=rec['train_accuracy'],
                      test_accuracy=test_acc.tolist())
  idx = np.concatenate(idx)
  order = np.argsort(idx, kind='stable')
  predictions = dict(index=idx[order], subject=np.asarray(subj)[order],
                     label=labels[idx][order], pred=np.concatenate(pred)[order],
                     probs=np.concatenate(probs)[order],
                     epoch=np.asarray(epoch_used)[order])
  return dict(
      metrics=metrics_lib.summarize(predictions['label'], predictions['pred'], num_classes),
      per_subject=per_subject, predictions=predictions, history=history,
      selected_epoch=selected, num_classes=num_classes,
      select_best_epoch_by_test=bool(config.select_best_epoch_by_test),
      steps_per_epoch=plan.steps_per_epoch)
