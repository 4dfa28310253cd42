"""HFA-Net's and the baselines' throughput, compile time and memory on whatever devices JAX sees.

    python -m experiments.benchmark                        # sides 32,64,128,224; folds 1,2,4,8
    python -m experiments.benchmark --quick                # side 32, folds 1,2; a minute or two
    python -m experiments.benchmark --dtype bfloat16 --out bench.json
    python -m experiments.benchmark --compare_torch ~/src/HFA-Net   # + the original (PyTorch)
    python -m experiments.benchmark --baselines all --meb ~/src/meb --rcn ~/src/rcns \
        --torchvision /tmp/tv --torch_threads 1,2          # the baselines at their recipes

For every input side it measures, after compilation and warm-up:
  - train: the library's `hfa_jax.train.train_step` (forward, backward, AdamW update, BatchNorm
    statistics), jitted with the state donated: samples/s, compile time, memory;
  - eval: the forward pass with BatchNorm running statistics: samples/s;
  - loso: for each K in --folds at the --fold_sides, the LOSO trainer's own fold program
    (`hfa_jax.loso.fold_program`: K stacked models, vmapped, with the trainer's batch draw and
    augmentation; one fold runs without the vmap) in epochs of --epoch_steps steps, as a LOSO
    runs it (the state enters and leaves the epoch's loop once per epoch): fold-samples/s =
    K * batch / step time. K = 1 is what `folds_in_parallel=1` gets;
  - parts: forward + backward of each piece of the network on its own (the MSA branch, RMT's
    patch embedding, the four RMT stages, MLFA + AAFF + head), so one sees how the decomposed
    (stages 1-2) and the whole (stages 3-4) retention grow with the input side. The pieces are
    the model's own modules, found by tracing HFANet.

Memory: `peak_bytes_in_use` of the device where it reports one (GPU, TPU); on CPU the process's
resident-set high-water mark (it only grows, so the runs go from small to large), and in every
case XLA's own estimate for the compiled program (arguments + outputs + temporaries).

With `--baselines`, only the baselines' rows (experiments.bench_baselines): each network's
fold program at its own recipe, beside its original PyTorch network from the user's checkout
(experiments.torch_baselines), with the projected time of the recipe's 3-seed run.

A benchmark, not a test: it prints a table and writes JSON (`--out`), with the device kind and
count, the CPU model, the load average and the library versions.
"""

from __future__ import annotations

import argparse
import json
import os

import jax.numpy as jnp

from experiments import bench_baselines, torch_baselines
from experiments.usage import parse_ints
from experiments.bench_parts import bench_parts
from experiments.bench_runners import NUM_CLASSES, bench_eval, bench_folds, bench_train
from experiments.timing import environment, peak_memory_bytes
from experiments.torch_reference import bench_torch
from hfa_jax import allocator


# --------------------------------------------------------------------------------- report


def table(rows: list[dict], env: dict) -> str:
  mib = lambda b: f'{b / 2**20:8.0f}' if b else '       -'
  lines = [
    f"{env['device_count']} x {env['device_kind']} ({env['backend']}), "
    f"CPU {env['cpu_model']} ({env['cpu_count']} cores), jax {env['jax']}, "
    f"load average at start {tuple(round(x, 2) for x in env['load_average'] or ())}, "
    f"malloc retains memory: {env.get('malloc_retains_memory')}, "
    f"native CPU kernels: {env.get('native_cpu_kernels')}",
    '',
    f"{'what':<14}{'side':>5}{'batch':>6}{'folds':>6}{'compile s':>10}{'step ms':>10}"
    f"{'samples/s':>11}{'XLA MiB':>9}{'peak MiB':>9}",
  ]
  for r in rows:
    if r['kind'] in ('part', 'baseline'):
      continue
    compile_s = f"{r['compile_s']:10.1f}" if 'compile_s' in r else f"{'-':>10}"
    lines.append(
      f"{r['kind']:<14}{r['side']:>5}{r['batch']:>6}{r['folds']:>6}{compile_s}"
      f"{r['step_s'] * 1e3:10.1f}{r['samples_per_s']:11.1f}"
      f"{mib(r.get('xla_bytes'))} {mib(r.get('peak_bytes'))}"
    )
  parts = [r for r in rows if r['kind'] == 'part']
  if parts:
    lines += ['', 'forward + backward of each part, ms per batch (share of their sum):']
    sides = sorted({r['side'] for r in parts})
    names = list(dict.fromkeys(r['part'].split(' (')[0] for r in parts))
    lines.append(f"{'part':<30}" + ''.join(f'{f"side {s}":>17}' for s in sides))
    by = {(r['part'].split(' (')[0], r['side']): r for r in parts}
    total = {s: sum(r['step_s'] for r in parts if r['side'] == s) for s in sides}
    # 'rmt.stage1 (decomposed 16x16)' -> ' decomposed'
    kinds = {
      r['part'].split(' (')[0]: r['part'].split(' (')[1].split()[0]
      for r in parts
      if ' (' in r['part']
    }
    for name in names:
      kind = f' {kinds[name]}' if name in kinds else ''
      cells = ''.join(
        f"{by[name, s]['step_s'] * 1e3:10.1f} ({by[name, s]['step_s'] / total[s]:4.0%})"
        if (name, s) in by
        else f"{'-':>17}"
        for s in sides
      )
      lines.append(f'{name + kind:<30}{cells}')
  lines += ratios(rows)
  lines += bench_baselines.table(rows)
  return '\n'.join(lines)


def ratios(rows: list[dict]) -> list[str]:
  """Per side, the fastest LOSO form against the original's training and our one fold:
  lines of text (none without loso rows)."""
  lines = []
  for side in sorted({r['side'] for r in rows if r['kind'] == 'loso'}):
    at = {(r['kind'], r['folds']): r['samples_per_s'] for r in rows if r['side'] == side}
    best_k = max((k for kind, k in at if kind == 'loso'), key=lambda k: at['loso', k])
    best = at['loso', best_k]
    folds = f'{best_k} folds' if best_k > 1 else 'one fold'
    text = f'side {side}: fastest LOSO form {folds} at a time, {best:.1f} fold-samples/s'
    if ('loso', 1) in at:
      text += f" = {best / at['loso', 1]:.2f}x one fold at a time"
    if ('torch_train', 1) in at:
      text += f" = {best / at['torch_train', 1]:.2f}x the original's training"
    lines.append(text)
  return ['', *lines] if lines else []


def parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
    description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument('--batch_size', type=int, default=16, help='per fold (default 16)')
  p.add_argument(
    '--sides',
    type=parse_ints,
    default=[32, 64, 128, 224],
    help='input sides, multiples of 32 (default 32,64,128,224)',
  )
  p.add_argument(
    '--folds',
    type=parse_ints,
    default=[1, 2, 4, 8],
    help='numbers of folds trained together (default 1,2,4,8)',
  )
  p.add_argument(
    '--fold_sides',
    type=parse_ints,
    default=None,
    help='sides at which folds > 1 are measured (default: the two smallest)',
  )
  p.add_argument('--steps', type=int, default=5, help='timed steps after warm-up (default 5)')
  p.add_argument(
    '--epoch_steps',
    type=int,
    default=8,
    help='steps per epoch in the loso rows, each of their --steps one epoch (default 8; a '
    'LOSO fold of the flow images has about 19)',
  )
  p.add_argument(
    '--dtype',
    choices=['float32', 'bfloat16'],
    default='float32',
    help='compute dtype; parameters stay float32 (default float32)',
  )
  p.add_argument('--no_parts', action='store_true', help='skip the per-part timings')
  p.add_argument('--out', default='benchmark.json', help='JSON path (default benchmark.json)')
  p.add_argument('--quick', action='store_true', help='side 32, folds 1,2, 3 steps')
  p.add_argument(
    '--compare_torch',
    metavar='PATH',
    default=None,
    help="also time the original PyTorch network from a checkout of it at PATH "
    '(needs torch and timm; skipped cleanly otherwise)',
  )
  p.add_argument(
    '--torch_threads',
    type=parse_ints,
    default=[os.cpu_count()],
    help='torch.set_num_threads for --compare_torch (the first) and the baselines (each of '
    'a comma list, e.g. 1,2; default: all cores)',
  )
  p.add_argument(
    '--baselines',
    type=lambda text: list(bench_baselines.BASELINES) if text == 'all' else text.split(','),
    default=None,
    help="only the baselines' rows: names (%s) or 'all' (the first five)"
    % ','.join(bench_baselines.CHOICES),
  )
  for option in torch_baselines.CHECKOUT_OPTIONS:
    p.add_argument(
      f'--{option}',
      metavar='PATH',
      default=None,
      help=f'with --baselines: the originals of {", ".join(torch_baselines.taken_from(option))} '
      'from this checkout (experiments/torch_baselines.py)',
    )
  p.add_argument(
    '--rounds',
    type=int,
    default=3,
    help='with --baselines: alternating rounds (an epoch of ours, as many steps of the '
    'original) after warm-up; medians (default 3)',
  )
  return p


def parse_args(argv=None) -> argparse.Namespace:
  """The command's settings, --quick applied and the sides checked."""
  p = parser()
  args = p.parse_args(argv)
  if args.quick:
    args.sides, args.folds, args.steps, args.epoch_steps = [32], [1, 2], 3, 2
  if any(s % 32 or s <= 0 for s in args.sides):
    p.error(f'--sides must be positive multiples of 32, got {args.sides}')
  unknown = set(args.baselines or ()) - set(bench_baselines.CHOICES)
  if unknown:
    p.error(f'--baselines: unknown {sorted(unknown)} (choices {bench_baselines.CHOICES})')
  return args


def measure_side(side, args, fold_sides, dtype, record) -> None:
  """One input side's rows: eval, train (K = 1 in --folds), loso at --fold_sides, parts."""
  record(bench_eval(side, args.batch_size, args.steps, dtype))
  for k in sorted(args.folds):
    if k == 1:
      record(bench_train(side, args.batch_size, args.steps, dtype))
    if side in fold_sides:
      record(bench_folds(side, args.batch_size, k, args.steps, dtype, epoch_steps=args.epoch_steps))
  if not args.no_parts:
    for row in bench_parts(side, args.batch_size, args.steps, dtype):
      record(row)


def measure_torch(args, env, record) -> None:
  """The original's rows (--compare_torch), or why it was skipped in env['torch']."""
  torch_rows = bench_torch(
    args.compare_torch,
    sorted(args.sides),
    args.batch_size,
    args.steps,
    args.torch_threads[0],
    NUM_CLASSES,
  )
  if isinstance(torch_rows, str):
    print(f'original (PyTorch): {torch_rows}')
    env['torch'] = torch_rows
  else:
    for row in torch_rows:
      record(row)


def measure_baselines(args, rows) -> None:
  """The baselines' rows (--baselines), each printed as it is measured."""
  checkouts = {o: getattr(args, o) for o in torch_baselines.CHECKOUT_OPTIONS}
  for name in args.baselines:
    row = bench_baselines.measure(name, checkouts, args.rounds, args.torch_threads)
    rows.append(row)
    theirs = row.get('torch_samples_per_s')
    print(
      f"  {name:<11} ours {row['fold_samples_per_s']:8.0f} fold-samples/s "
      f"({row['models_per_program']} models at once, compile {row['compile_s']:.1f} s), "
      + (f"original {theirs:.0f} samples/s, {row['ratio']:.2f}x" if theirs else row['torch']),
      flush=True,
    )


def main(argv=None) -> dict:
  args = parse_args(argv)
  fold_sides = args.fold_sides if args.fold_sides is not None else sorted(args.sides)[:2]
  dtype = jnp.bfloat16 if args.dtype == 'bfloat16' else None

  env = environment()
  rows = []

  def record(row):
    row['peak_bytes'], row['peak_source'] = peak_memory_bytes()
    row['load_average'] = os.getloadavg()
    rows.append(row)
    if row['kind'] != 'part':
      print(
        f"  {row['kind']:<12} side {row['side']:>3} folds {row['folds']}: "
        f"{row['samples_per_s']:8.1f} samples/s  (compile {row.get('compile_s', 0):.1f} s)",
        flush=True,
      )

  print(table([], env), flush=True)
  if args.baselines:
    measure_baselines(args, rows)
  else:
    for side in sorted(args.sides):
      measure_side(side, args, fold_sides, dtype, record)
    if args.compare_torch:
      measure_torch(args, env, record)

  text = table(rows, env)
  print('\n' + text)
  result = {'environment': env, 'settings': {k: v for k, v in vars(args).items()}, 'rows': rows}
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(result, f, indent=1)
    print(f'\nwrote {args.out}')
  return result


if __name__ == '__main__':
  allocator.restart_with_retained_memory()  # glibc keeps freed memory: fewer page faults
  main()
