"""The run folder of a LOSO run: run.json (what the run is), checkpoints/ (orbax: the
stacked states of the group in training, with its history) and folds/ (one record per
finished fold model). A lock keeps a second process out; every JSON file is written
atomically; a Ctrl-C or SIGTERM during a checkpoint write takes effect after it.

With many processes (hfa_jax.distributed) the folder is on storage they share: every process
opens it and takes part in each checkpoint (orbax writes each process's shards and process 0
the rest), and process 0 alone writes run.json and the fold records.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import threading

import jax
import numpy as np
import orbax.checkpoint as ocp

from hfa_jax import files
from hfa_jax.loso import keys
from hfa_jax.loso.errors import RunInUseError, RunMismatchError
from hfa_jax.loso.records import FoldRecord, GroupHistory


NOTE = 'started_by'  # run.json's record of the command that started the run (not compared)
# run.json's record of how the models' random keys were derived (hfa_jax.loso.keys): what a
# new run uses, read back on a resume (not compared: a run saved without it used scheme 1)
KEYS = 'random_keys'


def read_run(run_dir) -> dict | None:
  """The run.json of a run's state folder (None if it has none)."""
  path = os.path.join(run_dir, 'run.json')
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def key_scheme(run: dict) -> int:
  """The random-key scheme (hfa_jax.loso.keys) of a run from its run.json: 1 where unrecorded."""
  return run.get(KEYS, 1)


def write_json(path, obj):
  """Compact JSON, written atomically (hfa_jax.files)."""
  files.write_json(path, obj, indent=None)


def flatten(d: dict, prefix: str = '') -> dict:
  """{'a': {'b': 1}} -> {'a.b': 1}."""
  out = {}
  for k, v in d.items():
    if isinstance(v, dict) and v:
      out |= flatten(v, f'{prefix}{k}.')
    else:
      out[f'{prefix}{k}'] = v
  return out


def differences(saved: dict, given: dict) -> list[str]:
  """'key: X in the run, Y given' for every setting that differs."""
  saved, given = flatten(saved), flatten(given)
  return [
    f'{k}: {saved.get(k, "(not set)")!r} in the run, {given.get(k, "(not set)")!r} given'
    for k in sorted(set(saved) | set(given), key=list(saved | given).index)
    if saved.get(k) != given.get(k)
  ]


def lock(path: str):
  """An exclusive lock on `path`, held while the returned file is open (the system
  drops it when the process ends, also on a kill); RunInUseError if another holds it."""
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
    ) from None
  f.seek(0)
  f.truncate()
  f.write(f'pid {os.getpid()}')
  f.flush()
  return f


def lock_name(process: int) -> str:
  """The lock file of process `process` of a job: one per process, so that the processes of
  one job do not shut each other out on shared storage, while a second job (or a second
  single-process run) collides with the first process by process, each failing at once with
  RunInUseError instead of waiting in a collective for a process that failed. Process 0 (and
  a single-process run) takes '.lock'."""
  return '.lock' if process == 0 else f'.lock.{process}'


@contextlib.contextmanager
def interrupts_deferred():
  """Holds back SIGINT (Ctrl-C) and SIGTERM until the block ends, then delivers them to
  the handlers that were there before (Python's SIGINT handler raises KeyboardInterrupt)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  caught = []
  held = (signal.SIGINT, signal.SIGTERM)
  previous = {s: signal.signal(s, lambda n, _: caught.append(n)) for s in held}
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  for s in dict.fromkeys(caught):
    signal.raise_signal(s)


def read_folds(run_dir) -> dict:
  """The fold records of a run folder, {(fold_id, replica): FoldRecord}, without opening
  (or locking) the run."""
  out = {}
  folder = os.path.join(run_dir, 'folds')
  for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
    if name.startswith('fold_') and name.endswith('.json'):
      with open(os.path.join(folder, name)) as f:
        rec = FoldRecord.from_json(json.load(f))
      out[rec.fold_id, rec.replica] = rec
  return out


class RunStore:
  """The run folder; use as a context manager (closing releases the lock)."""

  def __init__(self, out_dir, identity: dict, note: dict | None = None):
    """Opens (or starts) the run in `out_dir` whose run.json is `identity`, with `note` (what
    the command that starts it records: its settings, compared by the command itself, since a
    resume may change how the run executes) beside it under 'started_by';
    RunMismatchError if it holds another run, RunInUseError if a process is using it.
    `random_keys` is the run's key scheme (hfa_jax.loso.keys): a new run's, or the saved one."""
    self.dir = os.path.abspath(out_dir)
    self.random_keys = keys.SCHEME
    os.makedirs(os.path.join(self.dir, 'folds'), exist_ok=True)
    self._lock = lock(os.path.join(self.dir, lock_name(jax.process_index())))
    try:
      self._check_or_write(identity, note)
      self.manager = ocp.CheckpointManager(
        os.path.join(self.dir, 'checkpoints'),
        options=ocp.CheckpointManagerOptions(
          max_to_keep=1, cleanup_tmp_directories=True, enable_async_checkpointing=False
        ),
      )
    except BaseException:
      self._lock.close()
      raise

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _check_or_write(self, identity: dict, note: dict | None):
    """Writes run.json, or checks that the run there is this one."""
    run_json = os.path.join(self.dir, 'run.json')
    if not os.path.exists(run_json):
      if jax.process_index() == 0:
        write_json(run_json, identity | {KEYS: keys.SCHEME} | ({NOTE: note} if note else {}))
      return
    with open(run_json) as f:
      saved = json.load(f)
    saved.pop(NOTE, None)
    self.random_keys = key_scheme(saved)
    saved.pop(KEYS, None)
    saved, identity = json.loads(json.dumps(saved)), json.loads(json.dumps(identity))
    if saved.get('data') != identity.get('data'):
      was, now = saved.get('data', {}), identity.get('data', {})
      what = [k for k in now if was.get(k) != now.get(k)]
      raise RunMismatchError(
        f'{self.dir} holds a run on other data: the {", ".join(what)} differ (the dataset '
        f'was rebuilt or changed: {was.get("n")} samples then, {now.get("n")} now). '
        'Its finished folds do not apply to these data: choose another output folder, '
        'or delete this one to start again.'
      )
    diff = differences(saved, identity)
    if diff:
      raise RunMismatchError(
        f'{self.dir} holds a run with other settings:\n  '
        + '\n  '.join(diff)
        + '\nResume with the same settings, or choose another output folder.'
      )

  # --------------------------------------------------------------- finished folds

  def fold_path(self, fold_id: int, replica: int = 0) -> str:
    name = f'fold_{fold_id:04d}' + (f'_model{replica}' if replica else '')
    return os.path.join(self.dir, 'folds', name + '.json')

  def load_fold(self, fold_id: int, replica: int = 0) -> FoldRecord | None:
    path = self.fold_path(fold_id, replica)
    if not os.path.exists(path):
      return None
    with open(path) as f:
      return FoldRecord.from_json(json.load(f))

  def save_fold(self, record: FoldRecord):
    if jax.process_index() == 0:
      write_json(self.fold_path(record.fold_id, record.replica), record.to_json())

  # ------------------------------------------------------------------ checkpoints

  def checkpoint_models(self) -> list | None:
    """The names of the models in the latest checkpoint (None: no checkpoint)."""
    step = self.manager.latest_step()
    if step is None:
      return None
    meta = self.manager.restore(step, args=ocp.args.Composite(history=ocp.args.JsonRestore()))
    return meta['history'].get('models')

  def restore(self, models: list, state) -> tuple | None:
    """(state, GroupHistory, held) of the latest checkpoint if it is of the group `models`
    (names), else None. `state` gives the structure, shapes and shardings; `held` is what the
    checkpoint holds of the kept models ({model j: (epoch, best value, variables)}, see save),
    None where it holds none."""
    if self.checkpoint_models() != list(models):  # none, or another group's
      return None
    step = self.manager.latest_step()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    items = dict(state=ocp.args.StandardRestore(abstract), history=ocp.args.JsonRestore())
    with_held = 'held' in self.manager.item_metadata(step)
    if with_held:
      items |= dict(held=ocp.args.StandardRestore(), held_epochs=ocp.args.JsonRestore())
    restored = self.manager.restore(step, args=ocp.args.Composite(**items))
    history = GroupHistory.from_json(restored['history'])
    if not with_held:
      return restored['state'], history, None
    held = {
      int(j): (epoch, best, jax.tree.map(np.asarray, restored['held'][j]))
      for j, (epoch, best) in restored['held_epochs'].items()
    }
    return restored['state'], history, held

  def save(self, step: int, state, history: GroupHistory, held: dict | None = None):
    """Writes a checkpoint: the stacked states, the history and what is `held` of the kept
    models ({model j: (epoch, best value, variables)}: ModelKeeper.held). A Ctrl-C or SIGTERM
    meanwhile stops the run after the write, not inside it (orbax's writer threads would be
    left half-done)."""
    items = dict(state=ocp.args.StandardSave(state), history=ocp.args.JsonSave(history.to_json()))
    if held:
      items |= dict(
        held=ocp.args.StandardSave({str(j): v for j, (_, _, v) in held.items()}),
        held_epochs=ocp.args.JsonSave({str(j): [e, b] for j, (e, b, _) in held.items()}),
      )
    with interrupts_deferred():
      self.manager.save(step, args=ocp.args.Composite(**items), force=True)
      self.manager.wait_until_finished()

  def drop_checkpoints(self):
    """Deletes the checkpoints (after a group's folds are saved, nothing reads them)."""
    with interrupts_deferred():
      for step in self.manager.all_steps():
        self.manager.delete(step)

  def close(self):
    self.manager.close()
    self._lock.close()  # releases the lock (as the end of the process would)
