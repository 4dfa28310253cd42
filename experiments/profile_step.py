"""Where the training step's time goes: XLA's ops, grouped by the HFA-Net module they come from.

    python -m experiments.profile_step --side 224              # top modules and ops
    python -m experiments.profile_step --side 64 --top 40 --trace /tmp/hfa_trace
    python -m experiments.profile_step --side 32 --folds 4     # the LOSO program of 4 folds
    python -m experiments.profile_step --side 64 --epoch_steps 8   # one fold, as a LOSO runs it
    python -m experiments.profile_step --model ststnet --folds 40 --batch_size 256 --epoch_steps 2

Runs the library's training step (`hfa_jax.train.train_step`, batch 16, AdamW, state donated,
as experiments.benchmark times it), or with `--folds K` the LOSO program of K stacked folds
(as the benchmark's loso rows; `--epoch_steps` steps per call, per step in the tables), under
`jax.profiler`, reads the trace's per-op durations,
maps each XLA op to the `op_name` metadata of the compiled program (e.g.
`transpose(jvp(HFANet))/rmt/layer3/blocks_0/retention/...`), and prints the time per module and
direction (fwd = forward and its linearisation, bwd = the transposed pass) and the most
expensive single ops. The durations are wall time per op; XLA:CPU runs independent
ops concurrently, so their sum exceeds the step time and the shares are approximate.
`--model ststnet` profiles the STSTNet baseline's fold program (at its native 28 px unless
`--side`), its ops named by STSTNet's modules (`jvp(STSTNet)/bn1/...`).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import tempfile
import time

import jax
import jax.numpy as jnp

from experiments import bench_runners
from hfa_jax import allocator
from hfa_jax.models import registry


def op_sources(hlo_text: str) -> dict[str, tuple[str, str]]:
  """XLA op name -> (result shape, op_name metadata) from a compiled program's HLO text."""
  sources = {}
  for line in hlo_text.splitlines():
    m = re.match(r'\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ', line)
    if m:
      meta = re.search(r'op_name="([^"]*)"', line)
      sources[m.group(1)] = (m.group(2), meta.group(1) if meta else '')
  return sources


def module_of(op_name: str, depth: int) -> tuple[str, str]:
  """('rmt/layer3/blocks_0', 'bwd') for an op_name; depth = module path components kept."""
  direction = 'bwd' if 'transpose(jvp(' in op_name else 'fwd'
  wrappers = r'jit\([^)]*\)/|vmap\(|while/body/|closed_call/|cond/branch_\d+_fun/|transpose\(|jvp\('
  path = re.sub(wrappers + r'|[A-Z]\w*\)|\)', '', op_name).strip('/')
  parts = [p for p in path.split('/') if p]
  return '/'.join(parts[:depth]) or '(no metadata)', direction


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--model', choices=registry.names(), default='hfanet')
  p.add_argument(
    '--side',
    type=int,
    default=None,
    help='input side: for hfanet a multiple of 32 (default 64), for the baselines from 4 '
    '(default 28)',
  )
  p.add_argument('--batch_size', type=int, default=16)
  p.add_argument(
    '--folds',
    type=int,
    default=1,
    help='>1: the LOSO fold program of this many stacked folds (in epochs of --epoch_steps '
    "steps) instead of one model's train_step",
  )
  p.add_argument(
    '--epoch_steps',
    type=int,
    default=1,
    help='steps per epoch of the fold program (one call = one epoch; > 1 runs the fold '
    'program also for one fold; default 1)',
  )
  p.add_argument('--steps', type=int, default=2, help='profiled calls (default 2)')
  p.add_argument('--depth', type=int, default=2, help='module path depth to group by (default 2)')
  p.add_argument('--top', type=int, default=25, help='rows to print in each table (default 25)')
  p.add_argument('--trace', default=None, help='keep the trace here (TensorBoard/Perfetto)')
  args = p.parse_args(argv)
  baseline = args.model != 'hfanet'
  if args.side is None:
    args.side = 28 if baseline else 64
  multiple = getattr(registry.model_class(args.model), 'side_multiple', 1)
  if args.side % multiple:
    p.error(f'--side must be a multiple of {multiple} for {args.model}')
  if args.side < 4:
    p.error('--side must be at least 4')
  args.fold_program = args.folds > 1 or args.epoch_steps > 1 or baseline
  return args


def runner(args: argparse.Namespace):
  """(run, compiled, compile s) of the program args name (experiments.bench_runners)."""
  if not args.fold_program:
    return bench_runners.train_runner(args.side, args.batch_size, jnp.float32)
  model = registry.build(args.model, bench_runners.NUM_CLASSES) if args.model != 'hfanet' else None
  return bench_runners.fold_runner(
    args.side, args.batch_size, args.folds, jnp.float32, epoch_steps=args.epoch_steps, model=model
  )


def main(argv=None) -> dict:
  args = parse_args(argv)
  fold_program = args.fold_program
  run, compiled, compile_s = runner(args)
  print(f'compiled in {compile_s:.1f} s', flush=True)
  for _ in range(3):  # warm up (and the allocator settles)
    loss = run()
  jax.block_until_ready(loss)
  start = time.perf_counter()
  for _ in range(args.steps):
    loss = run()
  jax.block_until_ready(loss)
  steps = args.steps * (args.epoch_steps if fold_program else 1)  # training steps timed
  step_s = (time.perf_counter() - start) / steps

  trace_dir = args.trace or tempfile.mkdtemp(prefix='hfa_trace_')
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    for _ in range(args.steps):
      loss = run()
    jax.block_until_ready(loss)
  path = glob.glob(f'{trace_dir}/**/*.trace.json.gz', recursive=True)[0]
  with gzip.open(path) as f:
    trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  sources = op_sources(compiled.as_text())
  per_op = collections.Counter()
  for e in events:
    if e.get('ph') == 'X' and e.get('name') in sources:
      per_op[e['name']] += e['dur'] / 1e3 / steps  # ms per step
  per_module, per_kind = collections.Counter(), collections.Counter()
  for name, ms in per_op.items():
    per_module[module_of(sources[name][1], args.depth)] += ms
    per_kind[name.split('.')[0]] += ms
  total = sum(per_op.values())

  print(
    f'\n{args.model}, side {args.side}, batch {args.batch_size}, folds {args.folds}: '
    f'step {step_s * 1e3:.0f} ms untraced; '
    f'ops sum to {total:.0f} ms per step (concurrent ops overlap); '
    f'malloc retains memory: {allocator.active()}'
  )
  print(f'\n{"ms/step":>9} {"share":>6}  module (direction)')
  for (module, direction), ms in per_module.most_common(args.top):
    print(f'{ms:9.1f} {ms / total:6.1%}  {module} ({direction})')
  print(
    f'\n{"ms/step":>9} {"share":>6}  kind of op (ynn_fusion: XLA\'s YNNPACK calls, '
    'ffi_call: native kernels)'
  )
  for kind, ms in per_kind.most_common(args.top):
    print(f'{ms:9.1f} {ms / total:6.1%}  {kind}')
  print(f'\n{"ms/step":>9}  op, result shape, source')
  for name, ms in per_op.most_common(args.top):
    shape, op_name = sources[name]
    print(f'{ms:9.1f}  {name[:30]:30} {shape[:34]:34} {op_name[-70:]}')
  print(f'\ntrace in {trace_dir}')
  return {
    'step_s': step_s,
    'modules': {f'{m} ({d})': v for (m, d), v in per_module.items()},
    'ops': dict(per_op),
    'kinds': dict(per_kind),
  }


if __name__ == '__main__':
  allocator.restart_with_retained_memory()  # glibc keeps freed memory: fewer page faults
  main()
