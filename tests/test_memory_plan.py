"""The plan of folds per GPU/TPU (hfa_jax.loso.memory, used by folds_at_once) against XLA's own
figure for the same programs: each network's fold program compiled on this CPU
(`compiled.memory_analysis()`, experiments.memory_plan.measure) at shapes the plan was fitted
at and at others (another side, another batch). The plan may not fall below XLA's figure, nor
be wasteful above it. Then the Colab notebook's folds per chip, which follow the plan.

The default run compiles two small networks; every network, HFA-Net and HTNet included, is
marked slow (minutes each on 2 cores)."""

from __future__ import annotations

import json
import pathlib
import re
import types

import pytest

from experiments import memory_plan
from hfa_jax import loso
from hfa_jax.loso import memory
from hfa_jax.models import registry
from tests.quick_compile import QUICK_COMPILE
from tests.tiny import TinyNet

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOW, HIGH = 0.95, 1.6  # plan / XLA's figure, per fold


def case(name, side, batch, fast=False):
  marks = () if fast else (pytest.mark.slow,)
  return pytest.param(name, side, batch, id=f'{name}-{side}px-batch{batch}', marks=marks)


def cases():
  yield case('ststnet', 64, 128, fast=True)  # another side, half the recipe's batch
  yield case('offapexnet', 64, 16, fast=True)
  for name in registry.names():  # at the recipe's side and batch, as a LOSO runs it
    side = memory_plan.side_for(name, 64 if name in ('sssnet', 'resnet18', 'rcn_a') else 28)
    yield case(name, side, None)
  for name in registry.names():  # between the measured sides, at half the recipe's batch
    if name == 'hfanet':  # ~45 s a compile on 2 cores: its recipe's case above stands for it
      continue
    batch = memory_plan.recipe(name, 112).batch_size // 2
    yield case(name, memory_plan.side_for(name, 112), batch)


@pytest.mark.parametrize('name, side, batch', cases())
def test_plan_against_xla_figure(name, side, batch):
  # XLA assigns the buffers before LLVM compiles the code: its figure is the optimised code's
  row = memory_plan.measure(name, side, folds=2, batch=batch, compiler_options=QUICK_COMPILE)
  ratio = row['estimate_per_fold'] / row['per_fold']
  print(memory_plan.row_line(row) + f': plan / XLA {ratio:.2f}')  # pytest -s shows them
  assert LOW <= ratio <= HIGH, memory_plan.row_line(row) + f': plan / XLA {ratio:.2f}'


def test_the_plan_is_the_networks():
  """HTNet's 140 M parameters: HFA-Net's plan would run it out of memory."""
  htnet, hfanet = registry.build('htnet', 3), registry.build('hfanet', 3)
  state = memory.state_bytes(htnet, 28)
  assert state > 2 * 2**30  # parameters, gradients and Adam's two moments
  assert memory.per_fold_bytes(htnet, 28, 16) > memory.per_fold_bytes(hfanet, 32, 16) + 2**30
  assert memory.network_name(htnet) == 'htnet' and set(memory.REST) == set(registry.names())


def test_a_network_the_plan_does_not_name_is_planned_with_the_largest_rest():
  model = TinyNet(num_classes=3)
  fixed, train, evaluation = memory.DEFAULT_REST
  assert memory.network_name(model) is None
  assert memory.per_fold_bytes(model, 32, 16, eval_batch=64) == (
    memory.state_bytes(model, 32) + fixed + max(train * 16, evaluation * 64) * 32 * 32
  )
  assert all(all(a <= b for a, b in zip(r, memory.DEFAULT_REST)) for r in memory.REST.values())


def test_the_larger_phase_counts():
  """The evaluation runs after the training steps, in the memory they freed: the plan takes
  the larger of the two."""
  model = registry.build('sssnet', 3)
  fixed, train, evaluation = memory.REST['sssnet']
  state = memory.state_bytes(model, 64)
  for batch, eval_batch in ((8, 64), (64, 8), (32, 32)):
    phase = max(train * batch, evaluation * eval_batch) * 64 * 64
    assert memory.per_fold_bytes(model, 64, batch, eval_batch=eval_batch) == state + fixed + phase


def test_fit_takes_each_phase_at_224_and_the_fixed_part_at_the_small_side():
  row = lambda side, batch, eval_batch, rest: dict(
    side=side, batch=batch, eval_batch=eval_batch, rest=rest
  )
  training = row(224, 32, 1, 32 * 224**2 * 6)
  evaluation = row(224, 1, 64, 64 * 224**2 * 2)
  small = row(32, 32, 64, 32 * 32**2 * 6 + 1000)  # training the larger phase: 6 * 32 > 2 * 64
  assert memory_plan.fit(small, training, evaluation) == (1000, 6, 2)
  small = row(28, 32, 64, 100)  # less than the phases' line: no negative fixed part
  assert memory_plan.fit(small, training, evaluation) == (0, 6, 2)


# ------------------------------------------------------------------ the Colab notebook


def notebook_settings() -> str:
  cells = json.loads((ROOT / 'experiments/colab_tpu.ipynb').read_text())['cells']
  (cell,) = [c for c in cells if 'parameters' in c.get('metadata', {}).get('tags', [])]
  return ''.join(cell['source'])


def test_notebook_states_the_plans_folds_per_chip():
  """The settings cell says how many folds the plan trains per 16 GiB v5e chip at the
  notebook's default sides and batches, and leaves the choice to the plan."""
  text = notebook_settings()
  assert re.search(r'^FOLDS_IN_PARALLEL = None', text, re.M)
  stated = re.findall(r'(\d+) px, batch (\d+)[^:\n]*: (\d+) folds? per chip', text)
  assert {int(side) for side, _, _ in stated} == {224, 32}, stated
  chip = types.SimpleNamespace(platform='tpu', memory_stats=lambda: {'bytes_limit': 16 * 2**30})
  hfanet = registry.build('hfanet', 3)
  for side, batch, folds in stated:
    side, batch = int(side), int(batch)
    recipe = memory_plan.recipe('hfanet', side)
    assert recipe.batch_size == batch, f'the recipe at {side} px trains batches of {batch}'
    for samples in (0, 500):  # a dataset of up to 500 images does not change it
      chosen = loso.folds_at_once(None, 68, side, batch, [chip], hfanet, recipe.training, samples)
      assert chosen == int(folds), (side, batch, samples)
