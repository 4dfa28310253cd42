"""One accelerator sweep: the LOSO fold program at sides 32, 64 and 224 for K = 1, 2, 4, ...
folds until the device runs out of memory, beside what `folds_at_once` would choose there.

    python -m experiments.accelerator_sweep --max_minutes 10 --out sweep    # on a GPU or TPU
    python -m experiments.accelerator_sweep --sides 32 --folds 1,2 --steps 1 --epoch_steps 1

Each (side, K) is experiments.benchmark's loso row (bench_folds: the trainer's own fold
program, K stacked models, vmapped, in epochs of --epoch_steps steps), measured in a process
of its own: its device peak memory is its own, an out-of-memory error ends only that process,
and the command's own process never takes the device (a TPU admits one process). Order: K = 1
at every side, then K = 2, and so on; a side stops at the first K that runs out of memory
(XLA's RESOURCE_EXHAUSTED), the sweep when --max_minutes are spent (a measurement still
running then is stopped). OUT.json and OUT.md are rewritten after every measurement, so a
sweep stopped from outside keeps what it measured.

Per row: fold-samples/s (K * batch / step time), step and compile time, each device's
peak_bytes_in_use and bytes_limit (device.memory_stats(); "not reported" on a CPU), XLA's
own figure for the compiled program, and the estimate of hfa_jax.loso.folds_at_once (the
network's memory plan, hfa_jax.loso.memory, per fold), with the K it would choose for that
device (as many as fit in half of bytes_limit; on a CPU, its table by side). The report:
experiments/sweep_report.py.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import subprocess
import sys
import time

import jax

from experiments import networks, options, timing
from experiments.bench_runners import NUM_CLASSES, bench_folds
from experiments.usage import parse_ints
from experiments.sweep_report import commit, make_report, markdown, row_line
from hfa_jax import loso
from hfa_jax.models import HFANet
from hfa_jax.loso import memory
from hfa_jax.models import registry

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULT = 'SWEEP_RESULT '  # the line of a measuring process that carries its result
MIN_SECONDS = 15  # no measurement is started with less time than this left


# ---------------------------------------------------------------- one measurement


def out_of_memory(text: str) -> bool:
  """Whether an error's text is XLA's out-of-memory (GPU: RESOURCE_EXHAUSTED: Out of memory
  while trying to allocate; TPU: RESOURCE_EXHAUSTED ... Ran out of memory in memory space)."""
  low = text.lower()
  return 'resource_exhausted' in low or 'out of memory' in low


def estimate(side: int, batch: int, folds: int, n_devices: int, model=None) -> dict:
  """folds_at_once's plan (hfa_jax.loso.memory) for `folds` models of `model` (default
  HFA-Net; the benchmark's training settings, evaluated in batches of `batch`) on the devices
  their mesh uses
  (bench_runners.fold_runner: gcd(folds, devices)): bytes per fold and per device."""
  model = HFANet(NUM_CLASSES) if model is None else model
  per_fold = memory.per_fold_bytes(model, side, batch, training(batch), eval_batch=batch)
  per_device = -(-folds // math.gcd(folds, n_devices))
  return dict(
    estimate_per_fold=per_fold, folds_per_device=per_device, estimate_bytes=per_device * per_fold
  )


def training(batch: int):
  """The training settings of bench_runners.fold_runner's program."""
  return loso.LosoConfig(batch_size=batch).training


def make_model(spec: str, dtype: str):
  """The model of `spec` (a registered name or 'module:Class'), computing in `dtype`."""
  networks.model_class(spec)  # a UsageError if it cannot be imported
  try:
    return registry.build(spec, NUM_CLASSES, dtype)
  except ValueError as e:
    raise options.UsageError(f'--dtype {dtype}: {e}') from None


def measure(side: int, folds: int, args: argparse.Namespace) -> dict:
  """One (side, K) in this process: the benchmark's loso row, the devices' memory and
  folds_at_once's choice and estimate. Out of memory gives status 'out_of_memory'."""
  devices = jax.devices()
  stats = devices[0].memory_stats() or {}
  model, batch = make_model(args.model, args.dtype), args.batch_size
  row = dict(side=side, folds=folds, batch=batch) | estimate(
    side, batch, folds, len(devices), model
  )
  row |= dict(
    environment=timing.environment()
    | dict(client={k: v for k, v in os.environ.items() if k.startswith('XLA_PYTHON_CLIENT')}),
    bytes_limit=stats.get('bytes_limit'),
    folds_at_once=loso.folds_at_once(
      None, args.max_folds, side, batch, devices, model, training(batch), 2 * batch, batch
    ),
  )
  try:
    bench = bench_folds(
      side, batch, folds, args.steps, None, epoch_steps=args.epoch_steps, model=model
    )
  except Exception as e:  # XLA raises its own error types; only memory is expected here
    if not out_of_memory(str(e)):
      raise
    return row | dict(status='out_of_memory', error=str(e).strip().splitlines()[0][:300])
  used = devices[: math.gcd(folds, len(devices))]
  peaks = [(d.memory_stats() or {}).get('peak_bytes_in_use') for d in used]
  keys = ('samples_per_s', 'step_s', 'step_s_all', 'compile_s', 'xla_bytes', 'epoch_steps')
  return (
    row
    | {k: bench[k] for k in keys}
    | dict(status='ok', peak_bytes=None if None in peaks else max(peaks), devices_used=len(used))
  )


# ------------------------------------------------------------------ the sweep


def child_command(side: int, folds: int, args: argparse.Namespace) -> list[str]:
  """The command line that measures (side, K) in a process of its own."""
  return [
    sys.executable,
    '-m',
    'experiments.accelerator_sweep',
    '--measure',
    f'{side},{folds}',
    '--batch_size',
    str(args.batch_size),
    '--steps',
    str(args.steps),
    '--epoch_steps',
    str(args.epoch_steps),
    '--dtype',
    args.dtype,
    '--model',
    args.model,
    '--max_folds',
    str(args.max_folds),
  ]


def in_process(side: int, folds: int, args: argparse.Namespace, timeout: float) -> dict:
  """measure(side, folds) in a child process, stopped after `timeout` seconds."""
  paths = [str(ROOT), os.getcwd(), os.environ.get('PYTHONPATH', '')]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
  row = dict(side=side, folds=folds, batch=args.batch_size)
  try:
    proc = subprocess.run(
      child_command(side, folds, args),
      capture_output=True,
      text=True,
      timeout=timeout,
      env=env,
      cwd=ROOT,
    )
  except subprocess.TimeoutExpired:
    return row | dict(status='time_limit', error=f'stopped after {timeout:.0f} s')
  lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
  if lines:
    return json.loads(lines[-1][len(RESULT) :])
  text = (proc.stderr + proc.stdout).strip()
  tail = '\n'.join(text.splitlines()[-8:])
  if out_of_memory(text) or proc.returncode == -9:  # -9: killed, as by the kernel's OOM killer
    return row | dict(status='out_of_memory', error=tail[-600:])
  return row | dict(status='error', error=f'exit code {proc.returncode}: {tail[-1500:]}')


def sweep(args, measure_fn=in_process, clock=time.monotonic, saved=lambda result: None) -> dict:
  """K = each of args.folds in turn at every side still going; a side stops at the first K
  that does not run. measure_fn(side, K, args, seconds left) -> row; saved(result) after each.
  Returns {'rows', 'stops' {side: (status, K)}}."""
  start, limit = clock(), args.max_minutes * 60
  going, rows, stops = list(args.sides), [], {}
  result = dict(rows=rows, stops=stops)
  for k in args.folds:
    for side in list(going):
      left = limit - (clock() - start)
      if left < MIN_SECONDS:
        stops.update({s: ('time_limit', k) for s in going})
        return result
      row = measure_fn(side, k, args, left)
      rows.append(row)
      print(row_line(row), flush=True)
      if row['status'] != 'ok':
        going.remove(side)
        stops[side] = (row['status'], k)
      if row['status'] == 'error':
        stops.update({s: ('error', k) for s in going})
        saved(result)
        return result
      saved(result)
  stops.update({s: ('ok', None) for s in going})
  return result


# ------------------------------------------------------------------ command line


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
    prog='python -m experiments.accelerator_sweep',
    description=__doc__.split('\n\n')[0],
    epilog=__doc__.split('\n\n', 1)[1],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument('--sides', type=parse_ints, default=[32, 64, 224], help='default 32,64,224')
  p.add_argument(
    '--folds',
    type=parse_ints,
    default=None,
    help='K, in order (default 1,2,4,... up to --max_folds)',
  )
  p.add_argument(
    '--max_folds',
    type=int,
    default=128,
    help='largest K (default 128; a LOSO of the MEGC2019 composite has 68 folds); also the '
    'most folds_at_once may choose',
  )
  p.add_argument('--batch_size', type=int, default=16, help="per fold (default 16, the estimate's)")
  p.add_argument('--steps', type=int, default=3, help='timed epochs after 2 warm-ups (default 3)')
  p.add_argument('--epoch_steps', type=int, default=8, help='steps per epoch (default 8)')
  p.add_argument(
    '--dtype',
    choices=['float32', 'bfloat16'],
    default='float32',
    help="compute dtype (default float32, as folds_at_once's estimate)",
  )
  p.add_argument(
    '--model',
    default='hfanet',
    help="'hfanet' (default), a baseline's name or 'module:Class' (planned with the largest "
    "figures of hfa_jax.loso.memory)",
  )
  p.add_argument(
    '--max_minutes',
    type=float,
    default=10.0,
    help='stop after this long, the measurement then running included (default 10)',
  )
  p.add_argument(
    '--out',
    default='accelerator_sweep',
    help='writes OUT.json and OUT.md (default accelerator_sweep)',
  )
  p.add_argument('--measure', default=None, help=argparse.SUPPRESS)  # SIDE,K: one, in this process
  return p


def parse_args(argv=None) -> argparse.Namespace:
  p = parser()
  args = p.parse_args(argv)
  if any(s % 32 or s <= 0 for s in args.sides) and args.model == 'hfanet':
    p.error(f'--sides must be positive multiples of 32 for HFA-Net, got {args.sides}')
  if args.folds is None:
    args.folds = [2**i for i in range(args.max_folds.bit_length()) if 2**i <= args.max_folds]
  if not args.folds or min(args.folds) < 1 or args.steps < 1 or args.epoch_steps < 1:
    p.error('--folds, --steps and --epoch_steps must be positive')
  try:
    cls = networks.model_class(args.model)  # imports it; the device stays untouched
  except options.UsageError as e:
    p.error(str(e))
  if args.dtype != 'float32' and not registry.takes_dtype(cls):
    p.error(f'--dtype {args.dtype}: {args.model} has no dtype field; use float32')
  return args


def main(argv=None) -> dict | None:
  args = parse_args(argv)
  if args.measure:  # a child: one measurement, its result as one line
    side, folds = parse_ints(args.measure)
    print(RESULT + json.dumps(measure(side, folds, args)), flush=True)
    return None
  started = datetime.datetime.now().isoformat(timespec='seconds')
  head = commit()
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  print(
    f'sweep of sides {args.sides}, K {args.folds}, for at most {args.max_minutes:g} minutes; '
    f'results in {out}.json and {out}.md',
    flush=True,
  )

  def save(result):
    report = make_report(result, args, started, head)
    pathlib.Path(f'{out}.json').write_text(json.dumps(report, indent=1))
    pathlib.Path(f'{out}.md').write_text(markdown(report))
    return report

  report = save(sweep(args, saved=save))
  print('\n' + markdown(report))
  return report


if __name__ == '__main__':
  from hfa_jax import allocator

  allocator.restart_with_retained_memory()  # glibc keeps freed memory: fewer page faults
  report = main()
  failed = [r for r in (report or {}).get('rows', []) if r['status'] == 'error']
  for r in failed:
    print(f"error at side {r['side']}, K {r['folds']}:\n{r['error']}", file=sys.stderr)
  sys.exit(1 if failed else 0)
