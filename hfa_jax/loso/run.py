"""run_loso: leave-one-subject-out training and evaluation, every fold an independent
model, folds trained in groups by one compiled program (hfa_jax.loso.program).

    plan the folds -> open the run folder -> for each group of models not yet finished:
      init (or restore) -> train phase [-> validation chooses -> retrain phase]
      -> fold records -> pool the records into UF1 / UAR / accuracy

Randomness is a pure function of (seed, fold, epoch, step), so a fold gives the same
result whether it trains alone, with others, or after a resume.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable

import jax
import numpy as np

from hfa_jax import distributed
from hfa_jax import metrics as metrics_lib
from hfa_jax.loso import callbacks as cb
from hfa_jax.loso.config import PAPER_ARCHITECTURE, LosoConfig
from hfa_jax.loso.data import LosoData
from hfa_jax.loso.errors import RunMismatchError
from hfa_jax.loso import keys as random_keys
from hfa_jax.loso.keep import ModelKeeper
from hfa_jax.loso.plan import FoldPlan, make_plan
from hfa_jax.loso.program import (
  FoldProgram,
  ProgramShape,
  fold_mesh,
  fold_program,
  folds_at_once,
  put,
)
from hfa_jax.loso.records import GroupHistory, Phase, fold_record, scored_epoch, validation_uf1
from hfa_jax.loso.results import LosoResult
from hfa_jax.loso.store import RunStore
from hfa_jax.models.hfanet import HFANet


@dataclasses.dataclass(frozen=True)
class Model:
  """One model of the run: fold `fold` (index in the plan) and ensemble member `replica`."""

  fold: int
  replica: int


@dataclasses.dataclass
class Run:
  """What every group of a run shares."""

  config: LosoConfig
  data: LosoData
  plan: FoldPlan
  program: FoldProgram
  models: list  # every Model of the run
  width: int  # models per group (program width)
  store: RunStore | None
  callbacks: cb.Callbacks
  images: jax.Array  # the data on the devices
  labels: jax.Array

  def name(self, m: Model) -> str:
    return self.plan.folds[m.fold] + (f'#{m.replica}' if m.replica else '')


def run_loso(  # noqa: PLR0913 (the public entry point: its options are keyword-only)
  images,
  labels=None,
  subjects=None,
  config: LosoConfig = LosoConfig(),
  model=None,
  *,
  num_classes: int | None = None,
  only_subjects=None,
  strata=None,
  out_dir=None,
  progress: bool = True,
  on_epoch: Callable | None = None,
  callbacks: tuple = (),
  devices=None,
  run_record: dict | None = None,
  run_note: dict | None = None,
  clock: Callable[[], float] = time.perf_counter,
) -> LosoResult:
  """Leave-one-subject-out training and evaluation on in-memory arrays.

  Args:
    images: (N, S, S, 3) float32 flow images (u, v, strain); S a multiple of 32 for HFANet.
      Or a LosoData (e.g. a dataset's `.arrays`), which holds the labels, subjects, strata
      and number of classes.
    labels: (N,) int class indices in [0, num_classes). subjects: (N,) subject of each sample.
    config: LosoConfig.
    model: a linen module called as `model(x, train)` with BatchNorm statistics (and,
      if it has dropout, the 'dropout' rng); default `hfa_jax.HFANet(num_classes)`.
    num_classes: default labels.max() + 1.
    only_subjects: test only these subjects (part of a LOSO; training still uses
      every other subject), or with `config.group_folds` these folds ('fold1', ...).
    strata: (N,) database of each sample: validation subjects and grouped folds are
      drawn from each database in proportion (default: one stratum).
    out_dir: the run folder (hfa_jax.loso.store): checkpoints on `clock` every
      `config.checkpoint_minutes`, and every finished fold; a rerun with the same
      out_dir resumes and gives the same results as an uninterrupted run.
    progress: show a tqdm bar (on process 0 of a multi-process job).
    on_epoch: called as on_epoch(group_index, epoch, info) after each epoch (and its
      checkpoint); may raise to stop the run (tests use it to simulate a kill).
    callbacks: more callbacks (hfa_jax.loso.callbacks, e.g. MetricLog(dir); StopAtEpochEnd():
      a SIGTERM stops the run at the end of the epoch, with a checkpoint there).
    devices: devices of the fold mesh (default all: with jax.distributed, those of every
      process; hfa_jax.distributed). Every process then calls run_loso alike, and process 0
      writes the run folder's files.
    run_record: more JSON settings that identify the run (e.g. the dataset's name),
      saved in out_dir/run.json with the config and compared on a resume.
    run_note: what the caller records of the run beside (its command's settings; saved once
      in run.json, never compared: e.g. the devices a resume runs on may differ).
    clock: the training clock of the checkpoints (seconds).

  Returns a LosoResult (hfa_jax.loso.results): the plan and every fold model's record;
  `result.pool()` (also `result[key]`) is a dict: 'metrics' (pooled UF1, UAR, accuracy,
  confusion matrix), 'per_subject', 'predictions' (per test sample: 'index', 'subject',
  'fold', 'label', 'pred', 'probs' (n, C), 'epoch'), 'history' per fold (train
  loss/accuracy, test accuracy and validation UF1 per epoch), 'selected_epoch' per fold,
  'protocol'; `result.pool(member=r)` scores ensemble member r alone.
  With `config.ensemble` K > 1, each fold trains K models from their own seeds and
  scores the mean of their class probabilities; 'history' and 'epoch' are the first
  model's, 'selected_epoch' lists all K.

  The epoch scored per fold (`config.select_epoch`): 'last' (honest); 'validation', the
  epoch of best UF1 on validation subjects held out of the fold's training subjects
  (ties: the later), with `config.retrain` a model retrained on all training subjects
  for that long (honest); 'best_test', its own test subject's best accuracy (NOT
  honest: it peeks at the test data; the result says so).

  Raises NonFiniteError if a fold's scored logits are not finite, PlanError if the
  subjects cannot make the folds, RunMismatchError / RunInUseError for an out_dir that
  holds another run or is in use.
  """
  config.validate()
  if isinstance(images, LosoData):
    data = images
  else:
    data = LosoData.of(images, labels, subjects, strata, num_classes)
  model = HFANet(num_classes=data.num_classes) if model is None else model
  plan = make_plan(data.labels, data.subjects, config, only_subjects, data.strata)
  mesh = fold_mesh(devices)
  models = [Model(f, r) for f in range(len(plan.folds)) for r in range(config.ensemble)]
  width = folds_at_once(
    config.folds_in_parallel,
    len(models),
    data.side,
    config.batch_size,
    list(mesh.devices.flat),
    model,
    config.training,
    len(data.labels),
    plan.eval_batch,
  )
  width = int(distributed.first(width))  # many processes: all train the same groups
  store = open_store(out_dir, config, model, data, run_record, run_note)
  hooks = None
  try:  # the run folder's lock is released whatever fails from here
    shape = ProgramShape(
      config.training,
      plan.steps_per_epoch,
      plan.eval_batch,
      (1, *data.images.shape[1:]),
      data.num_classes,
    )
    program = fold_program(model, shape, mesh)
    hooks = cb.Callbacks(
      [*standard_callbacks(config, data, store, clock, progress), *callbacks]
      + [on_epoch and cb.EpochHook(on_epoch)]
    )
    images_d, labels_d = put(data.images, program.replicated), put(data.labels, program.replicated)
    run = Run(config, data, plan, program, models, width, store, hooks, images_d, labels_d)
    records = finished_records(store, plan, models)
    todo = [i for i, m in enumerate(models) if (plan.fold_ids[m.fold], m.replica) not in records]
    groups = [todo[i : i + width] for i in range(0, len(todo), width)]
    check_checkpoint(run, groups, width)
    phases = 2 if config.retrain else 1
    hooks.on_run_start(
      cb.RunStart(
        len(plan.folds), config.ensemble, width, len(groups), config.epochs, phases, len(todo)
      )
    )
    for g, indices in enumerate(groups):
      records |= {(r.fold_id, r.replica): r for r in train_group(run, g, indices)}
  finally:
    if hooks is not None:
      hooks.on_run_end()
    if store:
      store.close()
  return LosoResult(plan, records, data, config)


def model_identity(model) -> str:
  """The model's part of a run's identity: its repr (class and fields), less the
  lines of the model fields added after runs were first saved (PAPER_ARCHITECTURE) that hold
  the paper's values, so that those runs still resume."""
  later = {f'    {name} = {value!r}' for name, value in PAPER_ARCHITECTURE.items()}
  return '\n'.join(line for line in repr(model).split('\n') if line not in later)


def open_store(  # noqa: PLR0913
  out_dir, config: LosoConfig, model, data: LosoData, run_record, run_note=None
) -> RunStore | None:
  """The run folder for this run (None without out_dir); RunMismatchError if the processes
  of a multi-process job were given different runs."""
  identity = dict(
    config=config.identity(), model=model_identity(model), num_classes=data.num_classes
  )
  identity |= dict(data=data.fingerprint()) | ({'run': run_record} if run_record else {})
  if not distributed.agree(json.dumps(identity, sort_keys=True, default=str)):
    raise RunMismatchError(
      'the processes of this job were given different runs (their data or settings differ '
      "from process 0's): give every process the same command and the same dataset build"
    )
  return RunStore(out_dir, identity, run_note) if out_dir is not None else None


def standard_callbacks(config: LosoConfig, data: LosoData, store, clock, progress: bool) -> list:
  """Timed checkpoints and kept models (with a run folder), then the progress bar."""
  phases = 2 if config.retrain else 1
  out = []
  if store:
    keeper = None
    if config.keep_models:  # before the Checkpointer: a checkpoint holds its best so far
      keeper = ModelKeeper(store.dir, data.labels, config.select_epoch, config.retrain)
      out.append(keeper)
    out.append(
      cb.Checkpointer(store, config.checkpoint_minutes, config.epochs, phases, clock, keeper)
    )
  if progress and distributed.is_main():
    out.append(cb.ProgressBar())
  return out


def finished_records(store, plan: FoldPlan, models: list) -> dict:
  """{(fold_id, replica): FoldRecord} of the run's models already finished in the store."""
  if store is None:
    return {}
  keys = [(plan.fold_ids[m.fold], m.replica) for m in models]
  records = {k: store.load_fold(*k) for k in keys}
  return {k: r for k, r in records.items() if r is not None}


def train_group(run: Run, g: int, indices: list) -> list:
  """Trains the models run.models[indices] together (padded to the program's width with
  copies of the last, whose results are dropped); returns their FoldRecords, saved."""
  members = [run.models[i] for i in indices]
  padded = members + [members[-1]] * (run.width - len(members))
  rows = [m.fold for m in padded]
  plan, config = run.plan, run.config
  scheme = run.store.random_keys if run.store else random_keys.SCHEME
  keys = np.stack(
    [random_keys.fold_key(config.seed, plan.fold_ids[m.fold], m.replica, scheme) for m in padded]
  )
  by_fold = run.program.by_fold
  tables = dict(
    train=[put(t[rows], by_fold) for t in (plan.train_idx, plan.train_count)],
    retrain=[put(t[rows], by_fold) for t in (plan.rest_idx, plan.rest_count)],
    eval=put(plan.eval_idx[rows], by_fold),
  )
  group = cb.Group(g, indices[0], indices[-1], len(run.models), [run.name(m) for m in members])
  state = run.program.init(keys)
  history = GroupHistory.new(group.names, config.epochs, plan.eval_batch)
  restored = run.store.restore(group.names, state) if run.store else None
  if restored is not None:
    state, history, group.held = restored
    if history.eval_batch not in (None, plan.eval_batch):
      raise RunMismatchError(
        f'the checkpoint in {run.store.dir} evaluated {history.eval_batch} samples a row, this '
        f'run {plan.eval_batch} (another eval_batch_size): its curves would be read wrongly. '
        'Resume with the eval_batch_size the run started with (state/run.json, started_by)'
      )
    if history.phase.epochs_done == 0:  # a phase that has not begun
      state = run.program.init(keys)
  group.history = history
  run.callbacks.on_group_start(group)
  state = run_phase(run, group, state, tables, members)
  if config.retrain and history.phase.name == 'train':
    # Validation chose each model's epoch; retrain on all training subjects that long.
    curves = [
      validation_uf1(plan, m.fold, history.phase, j, run.data.labels, run.data.num_classes)
      for j, m in enumerate(members)
    ]
    history.chosen = [scored_epoch('validation', len(c), c) for c in curves]
    history.phases.append(Phase('retrain', max(history.chosen)))
    run.callbacks.on_phase_end(cb.PhaseEnd(group, state, history))
    state = run_phase(run, group, run.program.init(keys), tables, members)
  records = [
    fold_record(plan, m.fold, m.replica, history, j, run.data, config)
    for j, m in enumerate(members)
  ]
  group.records = records
  run.callbacks.on_group_end(group)  # the kept models are saved here (ModelKeeper) ...
  if run.store:
    for rec in records:  # ... before the records that mark the models finished
      run.store.save_fold(rec)
    run.store.drop_checkpoints()  # then nothing reads the group's checkpoints
  return records


def check_checkpoint(run: Run, groups: list, width: int):
  """A checkpoint of a group that this run does not train (another grouping: another
  folds_in_parallel, or the device's memory chose another width) would be ignored, its
  training lost: RunMismatchError saying how to resume it. One whose models have all finished
  (a stop between their records and its deletion) is deleted."""
  saved = run.store.checkpoint_models() if run.store else None
  names = [[run.name(run.models[i]) for i in g] for g in groups]
  if saved is None or saved in names:
    return
  left = {n for group in names for n in group}
  if not left & set(saved):
    run.store.drop_checkpoints()
    return
  raise RunMismatchError(
    f'the checkpoint in {run.store.dir} holds {len(saved)} models trained together '
    f'({saved[0]} ... {saved[-1]}); this run trains {width} at a time, starting with '
    f'{names[0][0]} ... {names[0][-1]}. Resume with folds_in_parallel {len(saved)} (the '
    'grouping it was checkpointed in) to continue them, or delete its checkpoints folder to '
    'train them again from their start'
  )


def run_phase(run: Run, group: cb.Group, state, tables: dict, members: list):
  """Trains the group through the rest of its current phase; returns the state."""
  history, config = group.history, run.config
  phase = history.phase
  chosen = set(history.chosen or [])
  n = len(members)
  for epoch in range(phase.epochs_done, phase.epochs):
    if phase.name == 'retrain':
      evaluating = epoch + 1 in chosen
    else:
      last = epoch + 1 == config.epochs
      evaluating = config.eval_every_epoch or config.select_epoch != 'last' or last
    run.callbacks.on_epoch_start(group, phase, epoch)
    t0 = time.perf_counter()
    state, m, logits, stats = run.program.epoch(
      state,
      run.images,
      run.labels,
      *tables[phase.name],
      tables['eval'],
      np.int32(epoch),
      np.bool_(evaluating),
    )
    m, logits = jax.device_get((m, logits))
    phase.add_epoch(m['loss'][:n], m['accuracy'][:n], logits[:n] if evaluating else None)
    seconds = time.perf_counter() - t0
    models = _epoch_metrics(run, group, phase, members)
    samples = n * run.plan.steps_per_epoch * config.batch_size
    end = cb.EpochEnd(group, phase, epoch, models, seconds, samples, state, history, stats)
    run.callbacks.on_epoch_end(end)
    if end.stop:  # a callback stops the run here (StopAtEpochEnd), the group saved first
      run.callbacks.on_stop(end)
  return state


def _epoch_metrics(run: Run, group: cb.Group, phase: Phase, members: list) -> list:
  """Per model, the last epoch's training loss and accuracy, and its test accuracy and
  validation UF1 where evaluated."""
  out = []
  labels, plan, e = run.data.labels, run.plan, phase.epochs_done - 1
  for j, (name, m) in enumerate(zip(group.names, members)):
    row = dict(
      name=name,
      fold=plan.folds[m.fold],
      replica=m.replica,
      train_loss=phase.train_loss[e][j],
      train_accuracy=phase.train_accuracy[e][j],
    )
    test, val = plan.split_eval(m.fold, phase.logits_of(e, j))
    if test is not None:
      y = labels[plan.test_index(m.fold)]
      row['test_accuracy'] = float((np.asarray(test).argmax(-1) == y).mean())
      if len(val):
        y = labels[plan.val_index(m.fold)]
        row['val_uf1'] = metrics_lib.uf1(y, np.asarray(val).argmax(-1), run.data.num_classes)
    out.append(row)
  return out
