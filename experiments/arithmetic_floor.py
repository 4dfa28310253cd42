"""The arithmetic floor of the baselines' development-part runs: the least time their float32
work can take on this machine, whatever the implementation.

    python -m experiments.arithmetic_floor                     # the five CPU baselines
    python -m experiments.arithmetic_floor --models sssnet,resnet18 --out floor.json

Per network, at its recipe (experiments/configs/NAME.py, as experiments.bench_baselines reads
it for the 3-seed run on the development part: 120 models, the recipe's epochs, steps and
batch): the floating-point operations of one training sample's forward and backward pass, as
XLA counts them in the network's XLA form (`cost_analysis()` of the gradient of the mean
cross-entropy with respect to the parameters, BatchNorm in training mode; the input gets no
gradient; the optimiser's update, the batch draw and the evaluation are not counted, so the
floor is low, not high), times the run's fold-samples, divided by the machine's float32
matrix-multiply rate (the best of XLA's jitted `jnp.dot` of n x n matrices, n = 1024, 2048,
4096: the fastest this machine does any float32 arithmetic we know of). No convolution runs
faster than that rate, so no implementation of the recipe finishes sooner than the floor.

Measure on an idle machine: the rate is the machine's, and a shared core lowers it.
"""

from __future__ import annotations

import argparse
import json

from experiments import bench_baselines
from experiments.bench_runners import NUM_CLASSES
from experiments.run_log import duration
from experiments.timing import environment, gemm_rate, train_flops_per_sample
from hfa_jax.models import registry


def floor_row(name: str, flops_per_s: float) -> dict:
  """Network `name`'s recipe for the 3-seed development-part run: FLOPs per fold-sample, the
  run's fold-samples and FLOPs, and its floor in seconds at `flops_per_s`."""
  r = bench_baselines.recipe(name)
  per_sample = train_flops_per_sample(registry.build(name, NUM_CLASSES), r.side, r.batch)
  fold_samples = r.fold_samples
  return dict(
    model=name,
    side=r.side,
    batch=r.batch,
    epochs=r.training.epochs,
    steps_per_epoch=r.steps,
    models=r.models,
    train_flops_per_sample=per_sample,
    fold_samples=fold_samples,
    run_flops=per_sample * fold_samples,
    floor_s=per_sample * fold_samples / flops_per_s,
  )


def table(rows: list[dict], rate: dict, env: dict) -> str:
  by_size = ', '.join(f'{n}: {v / 1e9:.0f}' for n, v in rate['by_size'].items())
  lines = [
    f"CPU {env['cpu_model']} ({env['cpu_count']} cores), jax {env['jax']}, load average "
    f"{env['load_average'][0]:.1f}"
    if env['load_average']
    else f"CPU {env['cpu_model']}",
    f"float32 matrix multiply: {rate['flops_per_s'] / 1e9:.0f} GFLOP/s (n: GFLOP/s {by_size})",
    '',
    f"{'model':<11}{'side':>5}{'batch':>6}{'MFLOP/sample':>14}{'fold-samples':>14}"
    f"{'PFLOP':>8}{'floor':>9}",
  ]
  for r in rows:
    lines.append(
      f"{r['model']:<11}{r['side']:>5}{r['batch']:>6}{r['train_flops_per_sample'] / 1e6:>14.1f}"
      f"{r['fold_samples']:>14,}{r['run_flops'] / 1e15:>8.3f}"
      f"{duration(r['floor_s']):>9}"
    )
  total = sum(r['floor_s'] for r in rows)
  lines.append(f'the 3-seed development-part runs of these networks: at least {duration(total)}')
  return '\n'.join(lines)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--models', default=','.join(bench_baselines.BASELINES))
  parser.add_argument('--out', default=None, help='write the figures as JSON')
  args = parser.parse_args(argv)
  names = [m for m in args.models.split(',') if m]
  unknown = sorted(set(names) - set(registry.names()))
  if unknown:
    parser.error(
      f"unknown network(s) {', '.join(unknown)}; choose from {', '.join(registry.names())}"
    )
  rate = gemm_rate()
  rows = [floor_row(name, rate['flops_per_s']) for name in names]
  env = environment()
  print(table(rows, rate, env))
  record = dict(environment=env, gemm=rate, rows=rows)
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(record, f, indent=1, default=str)
  return record


if __name__ == '__main__':
  main()
