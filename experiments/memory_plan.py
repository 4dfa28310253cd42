"""Measures the memory plan of hfa_jax.loso.memory: XLA's own figure for each network's LOSO
fold program, compiled on this machine; what a fold takes besides its state and gradients is
fitted as a fixed part and a part per pixel of each training sample and of each evaluation
sample (the larger of the two phases).

    python -m experiments.memory_plan                         # every network, sides 28 and 224
    python -m experiments.memory_plan --models ststnet,hfanet --sides 32,224 --folds 2

For each network, three fold programs of `--folds` folds on one device (the network's own
recipe: its batch, optimiser and augmentation; HTNet at multiples of 28): at the small side
as the recipe runs it; at the large side with an evaluation batch of 1 (the training steps'
memory); at the large side with a training batch of 1 (the evaluation's). Each is traced on
abstract arguments (hfa_jax.loso.abstract) with the XLA forms GPU and TPU programs run
(`hfa_jax.kernels.xla_forms()`), compiled, and its `memory_analysis()` read:
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

from experiments import recipes
from hfa_jax import kernels, loso
from hfa_jax.loso import abstract, memory
from hfa_jax.loso.program import ProgramShape, fold_mesh, fold_program
from hfa_jax.models import registry

NUM_CLASSES = 3
STEPS = 2  # steps per epoch: the epoch's scan, whose length does not change its memory


def recipe(name: str, side: int) -> loso.LosoConfig:
  """The training settings a LOSO of network `name` at `side` px uses by default: a baseline's
  own recipe; HFA-Net's for the flow images (32 px) or for frames (224 px)."""
  dataset = 'megc2019_flow_images' if side <= 64 else 'casme2'
  values = recipes.load_recipe(recipes.default_recipe(dataset, name))
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
  name: str,
  side: int,
  folds: int = 2,
  batch: int | None = None,
  eval_batch: int | None = None,
  dtype: str = 'float32',
  compiler_options: dict | None = None,
) -> dict:
  """XLA's figure for `folds` folds of network `name`'s fold program at `side` px (its
  recipe's batch and evaluation batch unless given), compiled on jax.devices()[0] (with XLA's
  `compiler_options`, if given); and the plan's estimate."""
  config = recipe(name, side)
  if batch is not None:
    config = dataclasses.replace(config, batch_size=batch)
  eval_batch = config.eval_batch_size if eval_batch is None else eval_batch
  samples = 2 * max(config.batch_size, eval_batch)
  model = registry.build(name, NUM_CLASSES, dtype)
  shape = ProgramShape(config.training, STEPS, eval_batch, (1, side, side, 3), NUM_CLASSES)
  program = fold_program(model, shape, fold_mesh(jax.devices()[:1]))
  start = time.perf_counter()
  args = abstract.epoch_args(program, shape, folds, samples)
  with kernels.xla_forms():  # what GPU and TPU programs hold, not the CPU's native kernels
    compiled = program.epoch.trace(*args).lower().compile(compiler_options)
    analysis = compiled.memory_analysis()
  seconds = time.perf_counter() - start
  measured = xla_bytes(analysis)
  data = memory.dataset_bytes(samples, side)
  state = memory.state_bytes(model, side, config.training)
  estimate = memory.per_fold_bytes(model, side, config.batch_size, config.training, eval_batch)
  return dict(
    model=name,
    side=side,
    batch=config.batch_size,
    eval_batch=eval_batch,
    folds=folds,
    dtype=dtype,
    samples=samples,
    xla_bytes=measured,
    temp_bytes=int(analysis.temp_size_in_bytes),
    dataset_bytes=data,
    per_fold=(measured - data) / folds,
    state_bytes=state,
    rest=(measured - data) / folds - state,
    estimate_per_fold=estimate,
    compile_s=seconds,
  )


def fit(small: dict, training: dict, evaluation: dict) -> tuple[int, int, int]:
  """(fixed bytes, training bytes per pixel of a training sample, evaluation bytes per pixel of
  an evaluation sample) from the rest (per fold, besides state and gradients) of three rows of
  one network: `training` at a large side with an evaluation batch of 1, `evaluation` at the
  same side with a training batch of 1 (each per-pixel figure is its row's rest over its
  pixels: the other phase's batch of 1 and the fixed part are counted in, erring high), and
  `small` at a small side, for the fixed part: its rest less the larger phase, at least 0.
  The plan: rest = fixed + max(train * batch, eval * eval_batch) * side^2 (the evaluation runs
  after the training steps, in the memory they freed)."""
  per_train = training['rest'] / (training['batch'] * training['side'] ** 2)
  per_eval = evaluation['rest'] / (evaluation['eval_batch'] * evaluation['side'] ** 2)
  phases = max(per_train * small['batch'], per_eval * small['eval_batch']) * small['side'] ** 2
  return max(0, round(small['rest'] - phases)), math.ceil(per_train), math.ceil(per_eval)


def row_line(r: dict) -> str:
  mib = lambda b: f'{b / 2**20:8.1f}'
  return (
    f"{r['model']:>10} {r['side']:>4} px batch {r['batch']:>3} eval {r['eval_batch']:>2} "
    f"{r['dtype']:>8} K {r['folds']}: "
    f"XLA {mib(r['xla_bytes'])} MiB (temporaries {mib(r['temp_bytes'])}), dataset "
    f"{mib(r['dataset_bytes'])}, per fold {mib(r['per_fold'])} (state and gradients "
    f"{mib(r['state_bytes'])}), plan {mib(r['estimate_per_fold'])} MiB; compiled in "
    f"{r['compile_s']:.0f} s"
  )


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(prog='python -m experiments.memory_plan', description=__doc__)
  p.add_argument('--models', default=','.join(registry.names()), help='default: every network')
  p.add_argument('--sides', default='28,224', help='the small and the large side (28,224)')
  p.add_argument('--folds', type=int, default=2, help='folds in the program (default 2)')
  p.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
  args = p.parse_args(argv)
  small, large = (int(s) for s in args.sides.split(','))
  fitted = {}
  for name in args.models.split(','):
    side = side_for(name, large)
    rows = (
      measure(name, side_for(name, small), args.folds, dtype=args.dtype),
      measure(name, side, args.folds, eval_batch=1, dtype=args.dtype),
      measure(name, side, args.folds, batch=1, dtype=args.dtype),
    )
    for row in rows:
      print(row_line(row), flush=True)
    fitted[name] = fit(*rows)
  print('\nREST = {')
  for name, (fixed, train, evaluation) in fitted.items():
    print(f"  '{name}': ({fixed}, {train}, {evaluation}),  # {fixed / 2**20:.1f} MiB")
  print('}')
  return fitted


if __name__ == '__main__':
  main()
