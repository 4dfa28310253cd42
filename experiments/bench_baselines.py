"""The baselines' rows of experiments.benchmark: each network's LOSO fold program at its own
recipe's settings, beside its original PyTorch network's training at the same recipe, timed
in the same process in alternating rounds.

    python -m experiments.benchmark --baselines all --meb ~/src/meb --rcn ~/src/rcns \\
        --torchvision /tmp/tv --torch_threads 1,2

Per baseline (experiments/configs/NAME.py): the input side, batch, optimiser, epochs and
`folds_in_parallel` of the recipe, for the development part of the flow images (CASME II +
SMIC: 309 samples, 40 subjects) trained with 3 seeds (`--ensemble 3`: 120 models), so
`steps_per_epoch` = ceil(largest training set / batch) and the models per program are what
`hfa_jax.loso.folds_at_once` gives the recipe for 120 models on this machine. Ours is the
trainer's own compiled epoch (`bench_runners.fold_runner`: batch draw, the model's training
step, the optimiser, all folds of the program at once); the original trains one model, as
its scripts train one fold at a time (torch_baselines). Each round times one epoch of ours,
then the same number of steps of the original at each `--torch_threads` count; the figures
are the rounds' medians, with the load average at each round (the machines are shared). The
ratio is against the original's fastest thread count: on a shared 2-core machine its two
OpenMP threads can wait on each other (STSTNet's step: 55 ms with 1 thread, 550 ms with 2,
while other work ran).

Reported: ours in fold-samples/s (models x steps x batch / epoch time), the original in
samples/s, their ratio, and the projected wall time of the recipe's 3-seed run on the
development part: ours ceil(120 / models per program) x epochs x the epoch time (+ one
compile), the original 120 x epochs x steps x its step time. Evaluation, checkpoints and
the host's work between epochs are not included.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time

import jax
import numpy as np

from experiments import recipes, torch_baselines
from experiments.bench_runners import NUM_CLASSES, fold_runner
from experiments.run_log import duration
from experiments.timing import peak_memory_bytes, train_flops_per_sample
from hfa_jax import loso
from hfa_jax.models import registry

BASELINES = ('ststnet', 'offapexnet', 'sssnet', 'rcn_a', 'resnet18')  # the dev-part table's
CHOICES = (*BASELINES, 'htnet')
# The development part of the flow images (../shared/real: CASME II + SMIC): 309 samples of
# 40 subjects, the smallest with 1 sample, so the largest training set of a fold is 308.
DEV_SAMPLES, DEV_FOLDS, DEV_LARGEST_TRAINING_SET = 309, 40, 308
SEEDS = 3
NATIVE_SIDE = 28  # the flow images' side, for recipes that set none


@dataclasses.dataclass(frozen=True)
class Recipe:
  """A baseline's recipe as the dev-part run trains it."""

  name: str
  training: loso.config.Training
  side: int
  steps: int  # per epoch
  width: int  # models per compiled program
  models: int  # in the run: SEEDS x DEV_FOLDS

  @property
  def batch(self) -> int:
    return self.training.batch_size

  @property
  def fold_samples(self) -> int:
    """Training samples over the whole run: every model, epoch and step."""
    return self.models * self.training.epochs * self.steps * self.batch

  @property
  def groups(self) -> int:
    return -(-self.models // self.width)


def recipe(name: str, devices=None) -> Recipe:
  """The recipe of baseline `name` (experiments/configs/NAME.py) for the 3-seed dev-part run."""
  values = recipes.load_recipe(name)
  fields = {f.name for f in dataclasses.fields(loso.LosoConfig)}
  config = loso.LosoConfig(**{k: v for k, v in values.items() if k in fields})
  multiple = getattr(registry.model_class(name), 'side_multiple', 1)
  side = values.get('size') or -(-NATIVE_SIDE // multiple) * multiple
  steps = config.steps_per_epoch or math.ceil(DEV_LARGEST_TRAINING_SET / config.batch_size)
  devices = jax.devices() if devices is None else devices
  models = SEEDS * DEV_FOLDS
  width = loso.folds_at_once(config.folds_in_parallel, models, side, config.batch_size, devices)
  return Recipe(name, config.training, side, steps, width, models)


def _cpu_seconds() -> float:
  """The process's CPU time so far (user + system, all threads)."""
  t = os.times()
  return t.user + t.system


def _gflops_per_cpu_s(flops: float, cpu_s: float) -> float | None:
  """GFLOP per CPU-second, None where the CPU time is below os.times' resolution (10 ms)."""
  return flops / cpu_s / 1e9 if cpu_s > 0 else None


def _time_original(step, steps: int, threads: int) -> tuple[float, float]:
  """(seconds, CPU seconds) per step of the original over `steps` steps with `threads`
  torch threads."""
  import torch

  torch.set_num_threads(threads)
  start, cpu = time.perf_counter(), _cpu_seconds()
  for _ in range(steps):
    step()
  return (time.perf_counter() - start) / steps, (_cpu_seconds() - cpu) / steps


def measure(name: str, checkouts: dict, rounds: int, threads: list[int], seed: int = 0) -> dict:
  """One baseline's row: ours and the original (at each torch thread count in `threads`),
  `rounds` alternating rounds after warm-up."""
  r = recipe(name)
  model = registry.build(name, NUM_CLASSES)
  run, compiled, compile_s = fold_runner(
    r.side, r.batch, r.width, None, seed, r.steps, model, r.training
  )
  torch = torch_baselines.torch_step(name, checkouts, r.training, r.side, max(threads), seed)
  step, torch_version = torch if isinstance(torch, tuple) else (None, None)
  for _ in range(2):  # warm-up: the allocator and the original's first steps settle
    jax.block_until_ready(run())
    for t in threads if step is not None else ():
      _time_original(step, 1, t)
  ours, ours_cpu, loads = [], [], []
  theirs, theirs_cpu = ({t: [] for t in threads} for _ in range(2))
  for _ in range(rounds):
    start, cpu = time.perf_counter(), _cpu_seconds()
    loss = jax.block_until_ready(run())
    ours.append(time.perf_counter() - start)
    ours_cpu.append(_cpu_seconds() - cpu)
    for t in threads if step is not None else ():
      seconds, cpu = _time_original(step, r.steps, t)
      theirs[t].append(seconds)
      theirs_cpu[t].append(cpu)
    loads.append(os.getloadavg()[0])
  assert np.all(np.isfinite(np.asarray(loss))), f'{name}: non-finite loss'
  epoch = statistics.median(ours)
  epoch_samples = r.width * r.steps * r.batch  # fold-samples of one epoch of the program
  rate = epoch_samples / epoch
  flops = train_flops_per_sample(model, r.side, r.batch)
  cpu_us = statistics.median(ours_cpu) / epoch_samples * 1e6
  row = dict(
    kind='baseline',
    model=name,
    side=r.side,
    batch=r.batch,
    steps_per_epoch=r.steps,
    epochs=r.training.epochs,
    models=r.models,
    models_per_program=r.width,
    optimizer=r.training.optimizer,
    compile_s=compile_s,
    epoch_s_all=ours,
    fold_samples_per_s=rate,
    cpu_us_per_fold_sample=cpu_us,
    train_flops_per_sample=flops,  # forward + backward, as XLA counts the XLA form
    gflops_per_cpu_s=_gflops_per_cpu_s(flops, cpu_us * 1e-6),
    projected_s=r.groups * r.training.epochs * epoch + compile_s,
    load_average=loads,
  )
  if step is None:
    row['torch'] = torch
  else:
    # The original at each thread count, and its fastest (the ratio's denominator: on a
    # shared 2-core machine two torch threads can wait on each other, see the docs).
    per_thread = {t: r.batch / statistics.median(times) for t, times in theirs.items()}
    best = max(per_thread, key=per_thread.get)
    row.update(
      torch=torch_version,
      torch_step_s_all={str(t): times for t, times in theirs.items()},
      torch_samples_per_s_by_threads={str(t): v for t, v in per_thread.items()},
      torch_threads=best,
      torch_samples_per_s=per_thread[best],
      torch_cpu_us_per_sample_by_threads={
        str(t): statistics.median(cpu) / r.batch * 1e6 for t, cpu in theirs_cpu.items()
      },
      torch_gflops_per_cpu_s_by_threads={
        str(t): _gflops_per_cpu_s(flops, statistics.median(cpu) / r.batch)
        for t, cpu in theirs_cpu.items()
      },
      ratio=rate / per_thread[best],
      torch_projected_s=r.fold_samples / per_thread[best],
    )
  row['peak_bytes'], row['peak_source'] = peak_memory_bytes()
  return row


def table(rows: list[dict]) -> list[str]:
  """The baselines' lines of the benchmark's table (none without baseline rows)."""
  rows = [r for r in rows if r['kind'] == 'baseline']
  if not rows:
    return []
  lines = [
    '',
    f"baselines at their recipes (3 seeds x {DEV_FOLDS} folds of the development part); "
    'ours: fold-samples/s of the fold program; the original: samples/s, one model',
    f"{'model':<11}{'side':>5}{'batch':>6}{'steps':>6}{'epochs':>7}{'at once':>8}"
    f"{'ours':>10}{'original':>10}{'ratio':>7}{'3-seed run, ours':>18}{'original':>10}"
    f"{'load':>6}",
  ]
  for r in rows:
    theirs = r.get('torch_samples_per_s')
    lines.append(
      f"{r['model']:<11}{r['side']:>5}{r['batch']:>6}{r['steps_per_epoch']:>6}{r['epochs']:>7}"
      f"{r['models_per_program']:>8}{r['fold_samples_per_s']:>10.0f}"
      + (f'{theirs:>10.0f}{r["ratio"]:>6.2f}x' if theirs else f"{'-':>10}{'-':>7}")
      + f"{duration(r['projected_s']):>18}{duration(r.get('torch_projected_s')):>10}"
      f"{statistics.median(r['load_average']):>6.1f}"
    )
  total = sum(r['projected_s'] for r in rows if r['model'] in BASELINES)
  lines.append(f'the dev-part table of these baselines, ours: {duration(total)} in all')
  lines.append(
    'arithmetic (forward + backward per training sample, as XLA counts it) per CPU-second; '
    'the float32 matrix multiply: `python -m experiments.arithmetic_floor`'
  )
  rate = lambda v: '-' if v is None else f'{v:.1f}'
  for r in rows:
    theirs = r.get('torch_gflops_per_cpu_s_by_threads', {})
    lines.append(
      f"  {r['model']}: {r['train_flops_per_sample'] / 1e6:.1f} MFLOP per sample; GFLOP per "
      f"CPU-second, ours {rate(r['gflops_per_cpu_s'])}"
      + ''.join(
        f', the original ({t} thread{"s" * (t != "1")}) {rate(v)}' for t, v in theirs.items()
      )
    )
  for r in rows:
    if 'torch_samples_per_s' not in r:
      lines.append(f"  {r['model']}: original {r['torch']}")
    else:
      by = ', '.join(
        f'{t} thread{"s" * (t != "1")} {v:.0f}'
        for t, v in r['torch_samples_per_s_by_threads'].items()
      )
      cpu = ', '.join(f'{t}: {v:.0f}' for t, v in r['torch_cpu_us_per_sample_by_threads'].items())
      lines.append(
        f"  {r['model']}: original samples/s with {by} (the ratio: the fastest); CPU us per "
        f"sample, ours {r['cpu_us_per_fold_sample']:.0f}, the original by threads {cpu}"
      )
  return lines
