"""Leave-one-subject-out (LOSO) training and evaluation of HFA-Net and the baselines.

    python -m experiments.loso                             # synthetic database, quick CPU preset
    python -m experiments.loso --dataset megc2019_flow_images              # the real recipe
    python -m experiments.loso --dataset megc2019_flow_images --model ststnet   # STSTNet
    python -m experiments.loso --dataset samm              # a frame-based dataset, 224 px
    python -m experiments.loso --config experiments/configs/flow_images.py --config.epochs=12
    python -m experiments.loso --dataset casme2:size_224_missing_apex_middle --classes native
    python -m experiments.loso --resume runs/loso-samm-composite-224px-seed0

Settings (experiments/options.py): the declared defaults < the recipe, an ml_collections
config file (experiments/configs/NAME.py; without --config it follows the model and the
data) < the options. Running the same command again with the same --out continues a
stopped run; --resume OUT continues it with the settings saved in OUT.

Writes to --out: summary.json, predictions.csv, confusion.png, curves.png,
logs/ (TensorBoard events per fold and metrics.jsonl, written as the run goes: `tensorboard
--logdir runs/`) and state/ (run.json: what the run is and the settings it started with,
read back by --resume; orbax checkpoints; one record per finished fold).

On many hosts (a TPU pod slice, GPU nodes under SLURM, or --coordinator_address,
--num_processes and --process_id) every process runs the same command with the same --out on
shared storage; process 0 writes the results: docs/multihost.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import signal
import sys

import jax

from datasets.load import DatasetNotBuiltError
from experiments import networks, input_pipeline, messages, options, seeds
from experiments.options import Settings, UsageError
from experiments.run_log import EpochLog, WallClock
from hfa_jax import distributed, report
from hfa_jax.environment import cpu_model, versions
from hfa_jax.kernels import cache_root
from hfa_jax.loso import errors
from hfa_jax.loso.callbacks import MetricLog, StopAtEpochEnd
from hfa_jax.loso.plan import make_plan
from hfa_jax.loso.store import differences
from hfa_jax.loso.run import run_loso

# Errors a user can cause, and the exit code of each; the message says what to do.
USER_ERRORS = (
  (UsageError, 2),
  (DatasetNotBuiltError, 2),
  (errors.PlanError, 2),
  (errors.RunMismatchError, 2),
  (errors.RunInUseError, 1),
  (errors.NonFiniteError, 1),
)


class Terminated(KeyboardInterrupt):
  """SIGTERM (a scheduler's preemption, `kill`): stops the run as Ctrl-C does, once the
  training has saved the epoch in progress (StopAtEpochEnd)."""


def run(s: Settings, progress: bool = True, argv=None) -> dict:
  """Runs the LOSO of `s` and writes every output; returns the summary."""
  return run_with_result(s, progress, argv)[0]


def run_with_result(s: Settings, progress: bool = True, argv=None) -> tuple:
  """run(), returning (the summary, the LosoResult, the dataset) for a caller that scores
  the run further (experiments.compare)."""
  given = s
  s, dtype_reason = networks.resolve_dtype(s, jax.devices())
  if s.out.exists() and not s.out.is_dir():
    raise UsageError(f'--out {s.out} is a file; give a folder')
  main = distributed.is_main()  # with many processes, process 0 alone writes and prints
  data = _load_dataset(s, progress and main)
  e, config = s.experiment, s.training
  arrays = data.arrays
  make_plan(arrays.labels, arrays.subjects, config, e.subjects, arrays.strata)  # checks
  finished = (s.out / 'summary.json').is_file()
  started = options.saved_record(s.out) is not None
  _check_same_run(s, given)
  _make_folder(s.out)
  if main:
    messages.say(
      f'already finished; reporting its results again from {s.out}'
      if finished
      else f'continuing the run in {s.out}'
      if started
      else f'starting the run in {s.out}'
    )
    messages.describe(s, data, jax.devices())
    messages.say(f'compute dtype {s.training.dtype}: {dtype_reason}; parameters stay float32')
  clock = WallClock(s.out, write=main)
  result = run_loso(
    arrays,
    config=config,
    model=networks.build_model(s, arrays.num_classes),
    only_subjects=e.subjects,
    out_dir=s.out / 'state',
    progress=progress,
    callbacks=(
      clock,
      MetricLog(s.out / 'logs'),
      None if progress or not main else EpochLog(),
      StopAtEpochEnd(_stop_signals()),
    ),
    run_record=dict(
      dataset=e.dataset,
      classes=e.classes,
      keep_emotions=e.keep_emotions,
      size=s.size,
      model=e.model,
    ),
    run_note=s.record(),
  )
  if not main:
    return report.summary(result.pooled, data, extra=_record(s, clock, argv, data)), result, data
  record = report.write(s.out, result.pooled, data, extra=_record(s, clock, argv, data))
  print('\n' + report.table(record))
  parts = f' over {len(clock.parts)} parts' if len(clock.parts) > 1 else ''
  cpu = f', CPU time {clock.cpu_total:.0f} s' if clock.cpu_total is not None else ''
  print(f"wall time {record['wall_time_seconds']:.0f} s{parts}{cpu}; results in {s.out}")
  print(kept_models(s.out / 'state' / 'models'))
  if s.training.ensemble > 1:  # each seed alone, as experiments.seeds scores them
    print(
      f'\neach of the {s.training.ensemble} seeds alone (seeds.md):\n'
      + seeds.write_seeds(s.out, result, data)
    )
  return record, result, data


def _check_same_run(s: Settings, given: Settings):
  """RunMismatchError, before anything is said or written, if the run in s.out (its
  state/run.json) has other settings than `s`, naming each and the --out to give instead
  (`given`: the settings as given, before the dtype was chosen)."""
  if options.saved_record(s.out) is None:
    return
  saved = options.saved_settings(s.out)
  ignored = ('out', 'data_dir')  # the data themselves are compared by their fingerprint

  def identity(x: Settings) -> dict:
    e = {k: v for k, v in dataclasses.asdict(x.experiment).items() if k not in ignored}
    return e | dict(size=x.size) | x.training.identity()

  diff = differences(identity(saved), identity(s))
  if not diff:
    return
  default = options.default_folder(given)
  instead = f'--out {default} (the default for these settings)' if default != s.out else '--out'
  raise errors.RunMismatchError(
    f'{s.out} holds a run with other settings:\n  '
    + '\n  '.join(diff)
    + f'\nGive another {instead}, or continue that run with --resume {s.out}.'
  )


def kept_models(folder) -> str:
  """What the run's kept fold models take on disk, and how to drop them."""
  models = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
  if not models:
    return (
      'no fold models kept (--keep_models true keeps them, in a new --out, for '
      'experiments.evaluate)'
    )
  size = sum(f.stat().st_size for f in folder.rglob('*') if f.is_file())
  return (
    f'kept fold models: {len(models)} in {folder}, {_size(size)} '
    f'(experiments.evaluate re-scores the run from them; delete that folder to drop them, '
    'or run with --keep_models false to keep none)'
  )


def _size(n: int) -> str:
  """'1.0 GB', '86 MB', '12 kB'."""
  for unit, scale in (('GB', 2**30), ('MB', 2**20), ('kB', 2**10)):
    if n >= scale:
      return f'{n / scale:.1f} {unit}' if n < 10 * scale else f'{n / scale:.0f} {unit}'
  return f'{n} bytes'


def _load_dataset(s: Settings, progress: bool):
  """The run's data. With many processes, process 0 reads it (building the synthetic
  databases if need be) before the others read theirs, so that no two build it at once."""
  main = distributed.is_main()
  if not main:
    distributed.barrier('dataset read by process 0')
  try:
    return input_pipeline.load_dataset(s, progress)
  finally:
    if main:
      distributed.barrier('dataset read by process 0')


def _make_folder(out):
  try:
    out.mkdir(parents=True, exist_ok=True)
    probe = out / f'.write_test.{os.getpid()}.{distributed.process_index()}'  # processes at once
    probe.write_text('')
    probe.unlink()
  except OSError as e:
    raise UsageError(
      f'--out {out} cannot be written ({e.strerror}); choose another folder'
    ) from None


def _record(s: Settings, clock: WallClock, argv, data) -> dict:
  """What summary.json says of the run besides its results (`composite_part_of`: 442 where
  the data are a part of the MEGC2019 composite, else None)."""
  device = jax.devices()[0]
  part = messages.composite_part(s, data)
  return dict(
    dataset=s.experiment.dataset,
    composite_part_of=messages.COMPOSITE_SAMPLES if part else None,
    settings=s.values(),
    recipe=_recipe(s),
    size_reason=s.size_reason,
    seed=s.training.seed,
    versions=versions(),
    cpu=cpu_model(),
    devices=dict(
      platform=device.platform,
      kind=device.device_kind,
      count=jax.device_count(),
      processes=jax.process_count(),
    ),
    wall_time_seconds=clock.total,
    wall_time_parts=clock.parts,
    cpu_time_seconds=clock.cpu_total,
    cpu_time_parts=clock.cpu_parts,
    code_parts=clock.code,
    finished=datetime.datetime.now().isoformat(timespec='seconds'),
    command=s.command(),
    argv=list(sys.argv if argv is None else argv),
  )


def _recipe(s: Settings) -> str:
  """The recipe the run started with (a resumed run's, from its run.json)."""
  saved = options.saved_record(s.out)
  if s.recipe == 'the saved run' and saved is not None:
    return saved.get('recipe') or '?'
  return s.recipe


# The command's options for a job of many processes (docs/multihost.md): not settings of the
# run (not in run.json), so that a resume may use other ones.
DISTRIBUTED = ('coordinator_address', 'num_processes', 'process_id')


def add_distributed_options(parser):
  group = parser.add_argument_group(
    'many processes (docs/multihost.md; detected by themselves on a TPU pod slice and under '
    'srun; not settings: a resume may use other ones)'
  )
  group.add_argument(
    '--coordinator_address',
    metavar='HOST:PORT',
    help="process 0's host and a free port there, the same for every process",
  )
  group.add_argument('--num_processes', type=int, metavar='N', help='processes of the job')
  group.add_argument('--process_id', type=int, metavar='I', help="this process's, 0 .. N-1")


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  parser, args = options.parse(argv, __doc__, extra=add_distributed_options)
  try:  # before anything starts JAX's devices
    distributed.initialize(*(getattr(args, k) for k in DISTRIBUTED))
  except ValueError as e:
    parser.error(str(e))
  try:
    s = options.settings_from_args(args, DISTRIBUTED)
  except UsageError as e:
    parser.error(str(e))
  _enable_compilation_cache()
  try:
    with sigterm_stops():
      run(s, not getattr(args, 'no_progress', False), ['python', '-m', 'experiments.loso', *argv])
  except KeyboardInterrupt as e:
    return stopped(isinstance(e, Terminated), f' (or --resume {s.out})')
  except tuple(kind for kind, _ in USER_ERRORS) as e:
    print(f'error: {e}', file=sys.stderr)
    return exit_code(e)
  return 0


def exit_code(error: Exception) -> int:
  """The exit code of a user's error (USER_ERRORS; 2 for another, such as a bad value)."""
  return next((code for kind, code in USER_ERRORS if isinstance(error, kind)), 2)


def _stop_signals() -> tuple:
  """What stops the run at the end of the epoch in progress, once the group is saved there:
  SIGTERM, and with many processes Ctrl-C too (it must stop them all together)."""
  return (signal.SIGTERM, signal.SIGINT) if distributed.processes() > 1 else (signal.SIGTERM,)


@contextlib.contextmanager
def sigterm_stops():
  """SIGTERM raises Terminated meanwhile (in the training, at the end of the epoch in
  progress: StopAtEpochEnd), also where it lands inside a model's host callback
  (jax.debug.callback/print), whose error JAX wraps it in: a stop, not a failure."""
  previous = signal.signal(signal.SIGTERM, _terminate)
  _terminate.received = False
  try:
    yield
  except Exception as e:
    if _terminate.received and not isinstance(e, tuple(kind for kind, _ in USER_ERRORS)):
      raise Terminated() from e
    raise
  finally:
    signal.signal(signal.SIGTERM, previous)


def stopped(
  by_sigterm: bool, resume: str = '', kept: str = 'finished folds and the last checkpoint are kept'
) -> int:
  """Says how to continue a stopped run (`resume`: another way to, in brackets; `kept`: what
  is kept of it); returns its exit status (143 SIGTERM, 130 Ctrl-C)."""
  stop = 'stopped by SIGTERM' if by_sigterm else 'stopped'
  print(f'\n{stop}. Run the same command again{resume} to continue; {kept}.', file=sys.stderr)
  return 143 if by_sigterm else 130


def _terminate(signum, frame):
  _terminate.received = True
  raise Terminated()


def _enable_compilation_cache():
  """Persistent XLA cache: a rerun (or a resume) skips the minutes of compilation."""
  if os.environ.get('JAX_COMPILATION_CACHE_DIR') is None:
    jax.config.update('jax_compilation_cache_dir', str(cache_root() / 'xla'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 2.0)


if __name__ == '__main__':
  from hfa_jax import allocator

  allocator.restart_with_retained_memory()  # glibc keeps freed memory: fewer page faults
  sys.exit(main())
