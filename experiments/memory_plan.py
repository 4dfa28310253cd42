"""Measures the memory plan of hfa_jax.loso.memory: XLA's own figure for each network's LOSO
fold program, compiled on this machine, at two input sides; what a fold takes besides its
state and gradients is fitted as a fixed part and a part per pixel of each training sample.

    python -m experiments.memory_plan                         # every network, sides 28 and 224
    python -m experiments.memory_plan --models ststnet,hfanet --sides 32,224 --folds 2

For each network and side: the fold program of `--folds` folds on one device (the network's
own recipe: its batch, optimiser and augmentation; HTNet at multiples of 28), traced on
abstract arguments (hfa_jax.loso.abstract), compiled, and its `memory_analysis()` read:
arguments + outputs - aliased (the donated state) + temporaries. The replicated dataset is
taken off (the plan counts it once per device), the rest divided by the folds, and the fold's
state and gradients (memory.state_bytes) taken off that. Prints one row per measurement and
the REST lines that hfa_jax/loso/memory.py holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import jax

from experiments import options
from hfa_jax import loso
from hfa_jax.loso import abstract, memory
from hfa_jax.loso.program import ProgramShape, fold_mesh, fold_program
from hfa_jax.models import registry

NUM_CLASSES = 3
STEPS = 2  # steps per epoch: the epoch's scan, whose length does not change its memory


def recipe(name: str, side: int) -> loso.LosoConfig:
  """The training settings a LOSO of network `name` at `side` px uses by default: a baseline's
  own recipe; HFA-Net's for the flow images (32 px) or for frames (224 px)."""
  dataset = 'megc2019_flow_images' if side <= 64 else 'casme2'
  values = options.load_recipe(options.default_recipe(dataset, name))
  names = {f.name for f in dataclasses.fields(loso.LosoConfig)}
  return loso.LosoConfig(**{k: v for k, v in values.items() if k in names})


def side_for(name: str, side: int) -> int:
  """`side`, or the nearest multiple of the network's side_multiple at or below it (HTNet:
  28 for 32)."""
  multiple = getattr(registry.model_class(name), 'side_multiple', 1)
  return max(multiple, side // multiple * multiple)


def xla_bytes(analysis) -> int:
  """arguments + outputs - aliased + temporaries of a compiled program's memory_analysis()."""
  a = analysis
  return int(
    a.argument_size_in_bytes + a.output_size_in_bytes - a.alias_size_in_bytes + a.temp_size_in_bytes
  )


def measure(
  name: str, side: int, folds: int = 2, batch: int | None = None, dtype: str = 'float32'
) -> dict:
  """XLA's figure for `folds` folds of network `name`'s fold program at `side` px (its
  recipe's batch unless `batch`), compiled on jax.devices()[0]; and the plan's estimate."""
  config = recipe(name, side)
  if batch is not None:
    config = dataclasses.replace(config, batch_size=batch)
  samples = 2 * config.batch_size
  model = registry.build(name, NUM_CLASSES, dtype)
  shape = ProgramShape(
    config.training, STEPS, config.eval_batch_size, (1, side, side, 3), NUM_CLASSES
  )
  program = fold_program(model, shape, fold_mesh(jax.devices()[:1]))
  start = time.perf_counter()
  args = abstract.epoch_args(program, shape, folds, samples)
  analysis = program.epoch.trace(*args).lower().compile().memory_analysis()
  seconds = time.perf_counter() - start
  measured = xla_bytes(analysis)
  data = memory.dataset_bytes(samples, side)
  state = memory.state_bytes(model, side, config.training)
  return dict(
    model=name,
    side=side,
    batch=config.batch_size,
    folds=folds,
    dtype=dtype,
    samples=samples,
    xla_bytes=measured,
    temp_bytes=int(analysis.temp_size_in_bytes),
    dataset_bytes=data,
    per_fold=(measured - data) / folds,
    state_bytes=state,
    rest=(measured - data) / folds - state,
    estimate_per_fold=memory.per_fold_bytes(model, side, config.batch_size, config.training),
    compile_s=seconds,
  )


def fit(rows: list[dict]) -> tuple[int, int]:
  """(fixed bytes, bytes per pixel of a sample) through the rest (per fold, besides state and
  gradients) of the smallest and largest side of one network's rows: rest = fixed + per_pixel
  * batch * side^2; where that line meets 0 above 0 pixels (activations that grow faster than
  side^2), the line from 0 through the higher of the two (a negative fixed part would make
  the plan too small at a smaller batch)."""
  a, b = min(rows, key=lambda r: r['side']), max(rows, key=lambda r: r['side'])
  pixels = lambda r: r['batch'] * r['side'] ** 2
  per_pixel = (b['rest'] - a['rest']) / (pixels(b) - pixels(a))
  fixed = a['rest'] - per_pixel * pixels(a)
  if fixed < 0:  # grows faster than side^2: the line through 0 above both, not below one
    fixed, per_pixel = 0, max(r['rest'] / pixels(r) for r in (a, b))
  return round(fixed), math.ceil(per_pixel)


def row_line(r: dict) -> str:
  mib = lambda b: f'{b / 2**20:8.1f}'
  return (
    f"{r['model']:>10} {r['side']:>4} px batch {r['batch']:>3} {r['dtype']:>8} K {r['folds']}: "
    f"XLA {mib(r['xla_bytes'])} MiB (temporaries {mib(r['temp_bytes'])}), dataset "
    f"{mib(r['dataset_bytes'])}, per fold {mib(r['per_fold'])} (state and gradients "
    f"{mib(r['state_bytes'])}), plan {mib(r['estimate_per_fold'])} MiB; compiled in "
    f"{r['compile_s']:.0f} s"
  )


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog='python -m experiments.memory_plan', description=__doc__)
  p.add_argument('--models', default=','.join(registry.names()), help='default: every network')
  p.add_argument('--sides', default='28,224', help='two input sides (default 28,224)')
  p.add_argument('--folds', type=int, default=2, help='folds in the program (default 2)')
  p.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
  args = p.parse_args(argv)
  sides = [int(s) for s in args.sides.split(',')]
  fitted = {}
  for name in args.models.split(','):
    rows = []
    for side in sides:
      rows.append(measure(name, side_for(name, side), args.folds, dtype=args.dtype))
      print(row_line(rows[-1]), flush=True)
    if len({r['side'] for r in rows}) > 1:
      fitted[name] = fit(rows)
  print('\nREST = {')
  for name, (fixed, per_pixel) in fitted.items():
    print(f"  '{name}': ({fixed}, {per_pixel}),  # {fixed / 2**20:.1f} MiB, {per_pixel} B/pixel")
  print('}')
  return fitted


if __name__ == '__main__':
  main()
