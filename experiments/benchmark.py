"""HFA-Net throughput, compile time and memory on whatever devices JAX sees.

    python -m experiments.benchmark                        # sides 32,64,128,224; folds 1,2,4,8
    python -m experiments.benchmark --quick                # side 32, folds 1,2; a minute or two
    python -m experiments.benchmark --dtype bfloat16 --out bench.json
    python -m experiments.benchmark --compare_torch ~/src/HFA-Net   # + the original (PyTorch)

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

A benchmark, not a test: it prints a table and writes JSON (`--out`), with the device kind and
count, the CPU model, the load average and the library versions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments.timing import (
  compile_fn,
  environment,
  peak_memory_bytes,
  random_variables,
  time_steps,
  xla_bytes,
)
from experiments.torch_reference import bench_torch
from hfa_jax import allocator, loso
from hfa_jax import optimiser
from hfa_jax import train as train_lib
from hfa_jax.models import MSA, RMT, HFANet
from hfa_jax.models.rmt.patch import PatchEmbed
from hfa_jax.models.rmt.stage import Stage

NUM_CLASSES = 3


# ------------------------------------------------------------------------ model and step


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


class AfterBranches(nn.Module):
  """HFANet after its two branches (concatenation, MLFA, AAFF, pooling, head): the model's own
  code, with the MSA and RMT outputs given instead of computed.

  levels: MSA's four maps then RMT's four (B, S/4.., S/4.., C) -> logits (B, classes).
  """

  model: HFANet

  @nn.compact
  def __call__(self, *levels: jax.Array, train: bool) -> jax.Array:
    given = {MSA: levels[:4], RMT: levels[4:]}

    def feed(next_fun, args, kwargs, context):
      if context.method_name == '__call__' and type(context.module) in given:
        return given[type(context.module)]
      return next_fun(*args, **kwargs)

    side = levels[0].shape[1] * 4
    with nn.intercept_methods(feed):
      return self.model(jnp.zeros((levels[0].shape[0], side, side, 3)), train)


def network_parts(side: int, dtype) -> list[tuple[str, nn.Module, list[tuple]]]:
  """(name, module, input shapes without batch) of each piece, in forward order.

  The pieces are HFANet's own submodules (and its top, `AfterBranches`), with the inputs they
  get at this side, recorded while tracing the model's init.
  """
  model = HFANet(NUM_CLASSES, dtype=dtype)
  calls = {}

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    m = context.module
    if context.method_name == '__call__' and isinstance(m, (MSA, RMT, PatchEmbed, Stage)):
      shapes = [tuple(a.shape[1:]) for a in args if hasattr(a, 'shape')]
      calls.setdefault(m.path, (m.clone(parent=None), shapes, out))
    return out

  with nn.intercept_methods(record):
    jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False), jnp.zeros((1, side, side, 3))
    )
  parts = [('msa', *calls[('msa',)][:2]), ('rmt.embed', *calls[('rmt', 'patch_embed')][:2])]
  stages = [call for call in calls.values() if isinstance(call[0], Stage)]  # in forward order
  for i, (stage, shapes, _) in enumerate(stages, start=1):
    kind = 'decomposed' if stage.decomposed else 'whole'
    parts.append((f'rmt.stage{i} ({kind} {shapes[0][0]}x{shapes[0][1]})', stage, shapes))
  levels = [tuple(o.shape[1:]) for path in (('msa',), ('rmt',)) for o in calls[path][2]]
  parts.append(('mlfa+aaff+head', AfterBranches(model), levels))
  return parts


def bench_parts(side, batch, steps, dtype, seed=0) -> list[dict]:
  """Forward + backward (gradient w.r.t. parameters and inputs) of each part, in train mode."""
  rows = []
  rng = np.random.default_rng(seed)
  for name, module, shapes in network_parts(side, dtype):
    inputs = [jnp.asarray(rng.normal(size=(batch,) + s), jnp.float32) for s in shapes]
    variables = jax.tree.map(
      jnp.asarray,
      random_variables(
        module, *[np.zeros((1,) + s, np.float32) for s in shapes], train=False, seed=seed
      ),
    )

    def loss(params, inputs, module=module, variables=variables):
      out, _ = module.apply(
        {**variables, 'params': params}, *inputs, train=True, mutable=['batch_stats']
      )
      return sum(jnp.mean(jnp.square(o.astype(jnp.float32))) for o in jax.tree.leaves(out))

    grad = jax.grad(loss, argnums=(0, 1))
    compiled, compile_s = compile_fn(grad, (variables['params'], inputs))
    times = time_steps(lambda: compiled(variables['params'], inputs), steps)
    rows.append(
      {
        'kind': 'part',
        'part': name,
        'side': side,
        'batch': batch,
        'dtype': str(dtype),
        'compile_s': compile_s,
        'step_s': statistics.median(times),
        'step_s_all': times,
      }
    )
  return rows


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
    if r['kind'] == 'part':
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


def parse_ints(text: str) -> list[int]:
  return [int(t) for t in text.split(',') if t.strip()]


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
    type=int,
    default=os.cpu_count(),
    help='torch.set_num_threads for --compare_torch (default: all cores)',
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
    args.torch_threads,
    NUM_CLASSES,
  )
  if isinstance(torch_rows, str):
    print(f'original (PyTorch): {torch_rows}')
    env['torch'] = torch_rows
  else:
    for row in torch_rows:
      record(row)


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
