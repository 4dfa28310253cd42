"""HFA-Net throughput, compile time and memory on whatever devices JAX sees.

    python -m experiments.benchmark                        # sides 32,64,128,224; folds 1,2,4,8
    python -m experiments.benchmark --quick                # side 32, folds 1,2; a minute or two
    python -m experiments.benchmark --dtype bfloat16 --out bench.json
    python -m experiments.benchmark --compare_torch ~/src/HFA-Net   # + the original (PyTorch)

For every input side it measures, after compilation and warm-up:
  - train: one optimiser step (forward, backward, AdamW update, BatchNorm statistics), jitted
    with the state donated, as the LOSO trainer runs it: samples/s, compile time, memory;
  - eval: the forward pass with BatchNorm running statistics: samples/s;
  - folds: K independent models trained together (jax.vmap over stacked train states, as
    hfa_jax.loso does): fold-samples/s = K * batch / step time, for each K in --folds;
  - parts: forward + backward of each piece of the network on its own (the MSA branch, RMT's
    patch embedding, the four RMT stages, MLFA + AAFF + head), so one sees how the decomposed
    (stages 1-2) and the whole (stages 3-4) retention grow with the input side.

Memory: `peak_bytes_in_use` of the device where it reports one (GPU, TPU); on CPU the process's
resident-set high-water mark (it only grows, so the runs go from small to large), and in every
case XLA's own estimate for the compiled program (arguments + outputs + temporaries).

A benchmark, not a test: it prints a table and writes JSON (`--out`), with the device kind and
count, the CPU model, the load average and the library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from hfa_jax import allocator, kernels
from hfa_jax.models import AAFF, MLFA, MSA, HFANet
from hfa_jax.models.layers import dense
from hfa_jax.models.rmt.branch import STAGES
from hfa_jax.models.rmt.patch import PatchEmbed
from hfa_jax.models.rmt.stage import Stage

NUM_CLASSES = 3


# ---------------------------------------------------------------------------- environment


def environment() -> dict:
  """Devices, CPU model, load average and versions."""
  cpu = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  import flax

  devices = jax.devices()
  env = {
    'backend': jax.default_backend(),
    'device_kind': devices[0].device_kind,
    'device_count': len(devices),
    'cpu_model': cpu,
    'cpu_count': os.cpu_count(),
    'load_average': os.getloadavg() if hasattr(os, 'getloadavg') else None,
    'python': platform.python_version(),
    'jax': jax.__version__,
    'jaxlib': jax.lib.__version__ if hasattr(jax.lib, '__version__') else None,
    'flax': flax.__version__,
    'optax': optax.__version__,
    'numpy': np.__version__,
    'xla_flags': os.environ.get('XLA_FLAGS', ''),
    'malloc_retains_memory': allocator.active(),
    'native_cpu_kernels': kernels.native_available(),
  }
  return env


def peak_memory_bytes() -> tuple[int, str]:
  """(bytes, source): the device's peak where it reports one, else the process's max RSS."""
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return int(stats['peak_bytes_in_use']), 'device peak_bytes_in_use'
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, 'process max RSS'


def xla_bytes(compiled) -> int | None:
  """XLA's estimate of a compiled program's memory: arguments + outputs - aliased + temporaries."""
  try:
    m = compiled.memory_analysis()
    return int(
      m.argument_size_in_bytes
      + m.output_size_in_bytes
      - m.alias_size_in_bytes
      + m.temp_size_in_bytes
    )
  except Exception:  # not every backend implements it
    return None


# ------------------------------------------------------------------------ model and step


def random_variables(module: nn.Module, *inputs, seed: int = 0, **kwargs):
  """Fan-in scaled normal kernels, unit scales, zero biases: drawn with numpy (no init compile)."""
  shapes = jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a, **kwargs), *inputs)
  rng = np.random.default_rng(seed)

  def draw(path, spec):
    name = path[-1].key
    if name == 'kernel':
      fan_in = int(np.prod(spec.shape[:-1]))
      return rng.normal(size=spec.shape).astype(np.float32) / np.float32(np.sqrt(fan_in))
    fill = np.ones if name in ('scale', 'var') else np.zeros
    return fill(spec.shape, np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation) -> Callable:
  """state, images, labels -> state, loss; the structure of hfa_jax.train.train_step.

  state = {'params', 'batch_stats', 'opt_state'}.
  """

  def step(state, images, labels):
    def loss_fn(params):
      logits, updates = model.apply(
        {'params': params, 'batch_stats': state['batch_stats']},
        images,
        train=True,
        mutable=['batch_stats'],
      )
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      return loss, updates['batch_stats']

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state['params'])
    updates, opt_state = tx.update(grads, state['opt_state'], state['params'])
    params = optax.apply_updates(state['params'], updates)
    return {'params': params, 'batch_stats': batch_stats, 'opt_state': opt_state}, loss

  return step


def make_state(variables, tx):
  params = jax.tree.map(jnp.asarray, variables['params'])
  return {
    'params': params,
    'batch_stats': jax.tree.map(jnp.asarray, variables['batch_stats']),
    'opt_state': tx.init(params),
  }


# ------------------------------------------------------------------------------- timing


def compile_fn(fn, args, donate=()) -> tuple[Any, float]:
  """(compiled, seconds to trace + lower + compile)."""
  start = time.perf_counter()
  compiled = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
  return compiled, time.perf_counter() - start


def time_steps(run: Callable[[], Any], steps: int, warmup: int = 1) -> list[float]:
  """Seconds of each of `steps` calls of run() (each waits for its result), after `warmup`."""
  for _ in range(warmup):
    jax.block_until_ready(run())
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    jax.block_until_ready(run())
    times.append(time.perf_counter() - start)
  return times


def bench_train(side, batch, folds, steps, dtype, seed=0) -> dict:
  """Train step of `folds` stacked models (folds=1: one model, no vmap)."""
  model = HFANet(NUM_CLASSES, dtype=dtype)
  tx = optax.adamw(1e-3, weight_decay=1e-4)
  variables = random_variables(model, np.zeros((1, side, side, 3), np.float32), seed=seed)
  state = make_state(variables, tx)
  step = make_train_step(model, tx)
  rng = np.random.default_rng(seed)
  shape = (batch, side, side, 3) if folds == 1 else (folds, batch, side, side, 3)
  images = jnp.asarray(rng.normal(size=shape).astype(np.float32))
  labels = jnp.asarray(rng.integers(0, NUM_CLASSES, shape[:-3]).astype(np.int32))
  if folds > 1:
    state = jax.tree.map(lambda x: jnp.broadcast_to(x, (folds,) + x.shape), state)
    step = jax.vmap(step)
  compiled, compile_s = compile_fn(step, (state, images, labels), donate=(0,))
  holder = {'state': state}

  def run():
    holder['state'], holder['loss'] = compiled(holder['state'], images, labels)
    return holder['loss']

  times = time_steps(run, steps, warmup=2)  # the allocator reaches its steady state
  loss = np.asarray(holder['loss'])
  assert np.all(np.isfinite(loss)), f'non-finite loss {loss}'
  t = statistics.median(times)
  return {
    'kind': 'train',
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


def bench_eval(side, batch, steps, dtype, seed=0) -> dict:
  model = HFANet(NUM_CLASSES, dtype=dtype)
  variables = jax.tree.map(
    jnp.asarray, random_variables(model, np.zeros((1, side, side, 3), np.float32), seed=seed)
  )
  images = jnp.asarray(np.random.default_rng(seed).normal(size=(batch, side, side, 3)), jnp.float32)
  fn = lambda v, x: model.apply(v, x, train=False)
  compiled, compile_s = compile_fn(fn, (variables, images))
  times = time_steps(lambda: compiled(variables, images), steps)
  t = statistics.median(times)
  return {
    'kind': 'eval',
    'side': side,
    'batch': batch,
    'folds': 1,
    'dtype': str(dtype),
    'compile_s': compile_s,
    'step_s': t,
    'step_s_all': times,
    'samples_per_s': batch / t,
    'xla_bytes': xla_bytes(compiled),
  }


class Fusion(nn.Module):
  """MLFA + AAFF + pooled linear head: HFANet's top on the concatenated branch levels."""

  dtype: Any = None

  @nn.compact
  def __call__(self, mt1, mt2, mt3, mt4, train: bool):
    fused = MLFA(name='mlfa', dtype=self.dtype)(mt1, mt2, mt3, mt4, train)
    out = AAFF(name='aaff', dtype=self.dtype)(mt4, fused)
    return dense(NUM_CLASSES, name='head')(out.astype(jnp.float32).mean(axis=(1, 2)))


def network_parts(side: int, dtype) -> list[tuple[str, nn.Module, list[tuple]]]:
  """(name, module, input shapes without batch) of each piece, in forward order."""
  s4 = side // 4
  stage_inputs = [(s4, s4, 64), (s4, s4, 64), (s4 // 2, s4 // 2, 128), (s4 // 4, s4 // 4, 256)]
  parts = [
    ('msa', MSA(dtype=dtype), [(side, side, 3)]),
    ('rmt.embed', PatchEmbed(64, dtype=dtype), [(side, side, 3)]),
  ]
  for i, ((depth, heads, init, rng, ffn, decomposed, out_dim), shape) in enumerate(
    zip(STAGES, stage_inputs)
  ):
    kind = 'decomposed' if decomposed else 'whole'
    parts.append(
      (
        f'rmt.stage{i + 1} ({kind} {shape[0]}x{shape[1]})',
        Stage(depth, heads, ffn, init, rng, decomposed, out_dim, dtype=dtype),
        [shape],
      )
    )
  parts.append(
    (
      'mlfa+aaff+head',
      Fusion(dtype=dtype),
      [(side // s, side // s, c) for s, c in ((4, 128), (8, 256), (16, 512), (32, 1024))],
    )
  )
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


# ---------------------------------------------------------------------- the original network


def bench_torch(path: str, sides, batch, steps, threads: int) -> list[dict] | str:
  """The original PyTorch DualInception at `path` (a checkout of it), measured the same way.

  Returns rows, or a sentence saying why it was skipped (torch, timm or the code missing).
  Nothing of the original is copied: it is imported from the user's own checkout.
  """
  try:
    import torch
    import torch.nn.functional as F
  except ImportError:
    return 'skipped: torch is not installed'
  path = os.path.abspath(os.path.expanduser(path))
  if not os.path.isfile(os.path.join(path, 'model', 'model_dual_msff.py')):
    return f'skipped: {path} has no model/model_dual_msff.py'
  sys.path.insert(0, path)
  try:
    from model.model_dual_msff import DualInception
  except ImportError as e:
    return f'skipped: the original does not import ({e})'
  finally:
    sys.path.remove(path)
  torch.set_num_threads(threads)
  # XLA:CPU flushes denormals to zero; PyTorch does not by default, and this network's CPU
  # step is then up to 20x slower at some sizes (side 32). Compare like with like.
  torch.set_flush_denormal(True)
  torch.manual_seed(0)
  rows = []
  for side in sides:
    net = DualInception(num_classes=NUM_CLASSES).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.randn(batch, 3, side, side)
    y = torch.randint(0, NUM_CLASSES, (batch,))

    def train_step():
      opt.zero_grad(set_to_none=True)
      loss = F.cross_entropy(net(x), y)
      loss.backward()
      opt.step()

    def eval_step():
      with torch.no_grad():
        net(x)

    times = time_steps(train_step, steps, warmup=2)
    rows.append(
      {
        'kind': 'torch_train',
        'side': side,
        'batch': batch,
        'folds': 1,
        'threads': threads,
        'torch': torch.__version__,
        'step_s': statistics.median(times),
        'step_s_all': times,
        'samples_per_s': batch / statistics.median(times),
      }
    )
    net.eval()
    times = time_steps(eval_step, steps, warmup=1)
    rows.append(
      {
        'kind': 'torch_eval',
        'side': side,
        'batch': batch,
        'folds': 1,
        'threads': threads,
        'torch': torch.__version__,
        'step_s': statistics.median(times),
        'step_s_all': times,
        'samples_per_s': batch / statistics.median(times),
      }
    )
    print(
      f"  original (PyTorch) side {side:>3}: train {rows[-2]['samples_per_s']:.1f}, "
      f"eval {rows[-1]['samples_per_s']:.1f} samples/s",
      flush=True,
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
    for name in names:
      kind = {
        'rmt.stage1': ' decomposed',
        'rmt.stage2': ' decomposed',
        'rmt.stage3': ' whole',
        'rmt.stage4': ' whole',
      }.get(name, '')
      cells = ''.join(
        f"{by[name, s]['step_s'] * 1e3:10.1f} ({by[name, s]['step_s'] / total[s]:4.0%})"
        if (name, s) in by
        else f"{'-':>17}"
        for s in sides
      )
      lines.append(f'{name + kind:<30}{cells}')
  return '\n'.join(lines)


def parse_ints(text: str) -> list[int]:
  return [int(t) for t in text.split(',') if t.strip()]


def main(argv=None) -> dict:
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
  args = p.parse_args(argv)
  if args.quick:
    args.sides, args.folds, args.steps = [32], [1, 2], 3
  if any(s % 32 or s <= 0 for s in args.sides):
    p.error(f'--sides must be positive multiples of 32, got {args.sides}')
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
    record(bench_eval(side, args.batch_size, args.steps, dtype))
    for k in sorted(args.folds):
      if k == 1 or side in fold_sides:
        record(bench_train(side, args.batch_size, k, args.steps, dtype))
    if not args.no_parts:
      for row in bench_parts(side, args.batch_size, args.steps, dtype):
        record(row)
  if args.compare_torch:
    torch_rows = bench_torch(
      args.compare_torch, sorted(args.sides), args.batch_size, args.steps, args.torch_threads
    )
    if isinstance(torch_rows, str):
      print(f'original (PyTorch): {torch_rows}')
      env['torch'] = torch_rows
    else:
      for row in torch_rows:
        record(row)

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
