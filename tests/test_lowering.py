"""Every program a LOSO run compiles, lowered for a GPU (cuda) and a TPU on this CPU-only
machine: the fold program's epoch (training, evaluation under its cond) and init, the final
model's training program, predict's jitted apply and the multi-host gather, for HFA-Net and
every baseline. Lowering only (no compile): JAX lowers for a platform it has no device of,
and an abstract mesh (jax.sharding.AbstractMesh) stands in for 2 and 8 devices.

Each lowered module must hold no call of the project's native CPU kernels (XLA FFI targets
registered for CPU alone, hfa_jax.kernels.TARGETS): where one were wired into a GPU/TPU path
(hfa_jax.ops.dispatch), the program would fail there. The same program lowered for CPU holds
them (float32), which shows that the check sees them. The fold axis must be sharded over the
mesh and the dataset replicated, in the arguments and results of the lowered module.

The default run (about 80 s of one core) covers each network's epoch at its small side (HTNet
28 px, the others 32) in float32 on 8 devices, and at 224 px in bfloat16 on 8 for the
networks that trace in a few seconds; every network's float32 final-model program and plain
predict; init, predict with test flip and flow normalisation, and the bfloat16 final model
for all but HFA-Net and HTNet; and every training option in one program. The rest of the
grid (HFA-Net's and HTNet's 224 px; bfloat16 at the small side on 2 devices, float32 at
224 px on 2: each pairing of side, dtype and devices once; HFA-Net's ~10 s traces) is slow:
`pytest -m slow tests/test_lowering.py`.
"""

from __future__ import annotations

import functools
import re

import pytest
from jax.sharding import AbstractMesh, NamedSharding, PartitionSpec as P

from experiments import memory_plan
from hfa_jax import distributed, kernels, predict
from hfa_jax.loso import LosoConfig, abstract
from hfa_jax.loso.final import final_shape
from hfa_jax.loso.program import ProgramShape, fold_program
from hfa_jax.models import registry

PLATFORMS = ('cuda', 'tpu')
CPU_ONLY = frozenset(kernels.TARGETS)  # the native kernels' FFI targets (CPU programs only)
NETWORKS = registry.names()
SLOW_TO_TRACE = ('hfanet', 'htnet')  # 6-15 s per trace of the epoch; the others 1-3 s
NUM_CLASSES = 3
SAMPLES = 40  # images in the abstract dataset


def small_side(name: str) -> int:
  return memory_plan.side_for(name, 32)  # HTNet 28, the others 32


def slow_unless(fast: bool):
  return () if fast else (pytest.mark.slow,)


# ------------------------------------------------------------------ what a module holds


def custom_calls(lowered) -> set[str]:
  """The targets of the custom calls in a lowered module."""
  return set(re.findall(r'custom_call @([\w.$-]+)', lowered.as_text()))


def dims(attr: str | None) -> list[str] | None:
  """'#sdy.sharding<@mesh, [{"folds"}, {}]>' -> ['folds', ''] (None: no sharding)."""
  if attr is None:
    return None
  inside = re.search(r'\[(.*)\]', attr).group(1)
  return [','.join(re.findall(r'"(\w+)"', d)) for d in re.findall(r'\{([^}]*)\}', inside)]


def shardings(lowered) -> tuple[dict, dict, str]:
  """({argument name: dims}, {result name: dims}, the mesh) of a lowered module's main."""
  module = lowered.compiler_ir('stablehlo')
  ops = {str(op.attributes['sym_name']).strip('"'): op for op in module.body.operations}
  main = ops['main']
  attrs = lambda a: {n.name: str(n.attr) for n in a}
  args = {}
  for arg, a in zip(main.regions[0].blocks[0].arguments, main.arg_attrs):
    name = re.search(r'loc\("([^"]*)"', str(arg.location)).group(1)
    args[name] = dims(attrs(a).get('sdy.sharding'))
  results = {}
  for a in main.result_attrs:
    d = attrs(a)
    results[d['jax.result_info'].strip('"')] = dims(d.get('sdy.sharding'))
  mesh = re.search(r'sdy.mesh @mesh = <\[([^\]]*)\]>', lowered.as_text())
  return args, results, mesh.group(1) if mesh else ''


def check_shardings(lowered, by_fold: tuple, devices: int):
  """Every argument and result named args[i] / result[i] with i in `by_fold` is sharded over
  the folds along its first axis and replicated along the others; every other one is
  replicated (the dataset, the scalars, the pooled metrics)."""
  args, results, mesh = shardings(lowered)
  assert mesh == f'"folds"={devices}', mesh
  for kind, table in (('args', args), ('result', results)):
    assert table, f'no {kind} in the module'
    for name, d in table.items():
      index = int(re.match(rf'{kind}\[(\d+)\]', name).group(1))
      assert d is not None, f'{name}: no sharding'
      want = (['folds'] + [''] * (len(d) - 1)) if index in by_fold else [''] * len(d)
      assert d == want, f'{name}: sharded {d}, meant {want}'


def check_no_cpu_kernels(jitted, args, cpu_too: bool):
  """`jitted` lowered for cuda and tpu holds no native CPU kernel; lowered for cpu, with
  `cpu_too`, it holds at least one (the check sees them). Returns the cuda module."""
  traced = jitted.trace(*args)
  lowered = {p: traced.lower(lowering_platforms=(p,)) for p in PLATFORMS}
  for platform, module in lowered.items():
    wired = custom_calls(module) & CPU_ONLY
    assert not wired, (
      f'the {platform} program calls the CPU-only kernels {sorted(wired)}: a native kernel is '
      'wired into a GPU/TPU path (see hfa_jax.ops.dispatch, hfa_jax.adamw)'
    )
  if cpu_too and kernels.native_available():
    on_cpu = custom_calls(traced.lower(lowering_platforms=('cpu',))) & CPU_ONLY
    assert on_cpu, 'the CPU program calls no native kernel: the check above would not see one'
  return lowered['cuda'], lowered['tpu']


# ------------------------------------------------------------------ the programs


@functools.lru_cache(maxsize=None)
def recipe(name: str, side: int) -> LosoConfig:
  """The network's own recipe (HFA-Net's for the flow images, or for frames at 224 px)."""
  return memory_plan.recipe(name, side)


def build(name: str, dtype: str):
  return registry.build(name, NUM_CLASSES, None if dtype == 'float32' else dtype)


def mesh(devices: int) -> AbstractMesh:
  return AbstractMesh((devices,), ('folds',))


def fold_case(name, side, dtype, devices, fast):
  return pytest.param(
    name, side, dtype, devices, id=f'{name}-{side}px-{dtype}-{devices}dev', marks=slow_unless(fast)
  )


def fold_cases():
  """network x (side, dtype, devices) in pairs: the four cases in which every two of side,
  dtype and devices meet in each of their combinations (a lowering depends on each of them
  and on how two combine, not on the whole triple). Fast: each network at its small side in
  float32 on 8 devices (float32: the programs in which CPU programs call the native
  kernels), and the networks quick to trace at 224 px in bfloat16 on 8."""
  for name in NETWORKS:
    small = small_side(name)
    for side, dtype, devices in (
      (small, 'float32', 8),
      (small, 'bfloat16', 2),
      (224, 'float32', 2),
      (224, 'bfloat16', 8),
    ):
      fast = (side, dtype, devices) == (small, 'float32', 8) or (
        (side, dtype, devices) == (224, 'bfloat16', 8) and name not in SLOW_TO_TRACE
      )
      yield fold_case(name, side, dtype, devices, fast)


@pytest.mark.parametrize('name, side, dtype, devices', fold_cases())
def test_fold_epoch_lowers_for_gpu_and_tpu(name, side, dtype, devices):
  """The LOSO's epoch program (its recipe's training, evaluation under the cond) of a group
  of 2 folds per device, sharded over the folds."""
  config = recipe(name, side)
  shape = ProgramShape(config.training, 2, 16, (1, side, side, 3), NUM_CLASSES)
  program = fold_program(build(name, dtype), shape, mesh(devices))
  args = abstract.epoch_args(program, shape, 2 * devices, SAMPLES)
  for lowered in check_no_cpu_kernels(program.epoch, args, cpu_too=dtype == 'float32'):
    # state, train_idx, train_count, eval_idx / state, evaluation's BatchNorm statistics
    check_shardings(lowered, by_fold=(0, 3, 4, 5), devices=devices)


TRAINING_OPTIONS = dict(
  augment='flip+shift+rotate+scale+halves',
  mixup=0.2,
  ema_decay=0.99,
  precise_bn=16,
  test_flip=True,
  flow_norm='median',
  label_smoothing=0.1,
)


@pytest.mark.parametrize('optimizer, balance', [('adamw', 'sampling'), ('sgd', 'loss')])
def test_every_training_option_lowers(optimizer, balance):
  """Every augmentation, mixup, the weight average, precise BatchNorm statistics, test-time
  flip, the flow normalisation and both class balances, in one epoch program (SSSNet's:
  quick to trace), on 8 devices."""
  config = LosoConfig(balance=balance, optimizer=optimizer, **TRAINING_OPTIONS)
  shape = ProgramShape(config.training, 2, 16, (1, 32, 32, 3), NUM_CLASSES)
  program = fold_program(build('sssnet', 'float32'), shape, mesh(8))
  args = abstract.epoch_args(program, shape, 8, SAMPLES)
  for lowered in check_no_cpu_kernels(program.epoch, args, cpu_too=True):
    check_shardings(lowered, by_fold=(0, 3, 4, 5), devices=8)


def quick(name: str):
  return pytest.param(name, id=name, marks=slow_unless(name not in SLOW_TO_TRACE))


@pytest.mark.parametrize('name', [quick(name) for name in NETWORKS])
def test_fold_init_lowers_for_gpu_and_tpu(name):
  """The jitted single-fold init (a forward pass on zeros, the optimiser's state)."""
  side = small_side(name)
  config = recipe(name, side)
  shape = ProgramShape(config.training, 2, 16, (1, side, side, 3), NUM_CLASSES)
  program = fold_program(build(name, 'float32'), shape, mesh(2))
  check_no_cpu_kernels(program.init_one, (abstract.KEY,), cpu_too=False)


def final_cases():
  for name in NETWORKS:
    for dtype in ('float32', 'bfloat16'):
      fast = dtype == 'float32' or name not in SLOW_TO_TRACE
      yield pytest.param(name, dtype, id=f'{name}-{dtype}', marks=slow_unless(fast))


@pytest.mark.parametrize('name, dtype', final_cases())
def test_final_model_program_lowers_for_gpu_and_tpu(name, dtype):
  """The final model's training (hfa_jax.loso.final): the fold program of one fold on one
  device, which runs without the vmap."""
  side = small_side(name)
  config = recipe(name, side)
  shape = final_shape(config, SAMPLES, (side, side, 3), NUM_CLASSES)
  program = fold_program(build(name, dtype), shape, mesh(1))
  args = abstract.epoch_args(program, shape, 1, SAMPLES)
  for lowered in check_no_cpu_kernels(program.epoch, args, cpu_too=dtype == 'float32'):
    check_shardings(lowered, by_fold=(0, 3, 4, 5), devices=1)


def predict_cases():
  for name in NETWORKS:
    yield pytest.param(name, False, 'none', id=f'{name}')
    marks = slow_unless(name not in SLOW_TO_TRACE)
    yield pytest.param(name, True, 'median', id=f'{name}-flip-median', marks=marks)


@pytest.mark.parametrize('name, test_flip, flow_norm', predict_cases())
def test_predict_apply_lowers_for_gpu_and_tpu(name, test_flip, flow_norm):
  """predict.logits' jitted apply (also what re-scoring a run compiles)."""
  side = small_side(name)
  model = build(name, 'float32')
  apply = predict._jitted_apply(model, test_flip, flow_norm)
  args = (abstract.variables(model, side), abstract.spec((64, side, side, 3), 'float32'))
  check_no_cpu_kernels(apply, args, cpu_too=name == 'hfanet')  # the others: weight gradients


def test_multihost_gather_lowers_for_gpu_and_tpu():
  """distributed.host_copy's identity, which replicates the folds' sharded state."""
  devices = 8
  replicated = NamedSharding(mesh(devices), P())
  state = abstract.spec((devices, 1000), 'float32', NamedSharding(mesh(devices), P('folds')))
  for lowered in check_no_cpu_kernels(distributed._replicator(replicated), (state,), False):
    args, results, on = shardings(lowered)
    assert on == f'"folds"={devices}'
    assert list(args.values()) == [['folds', '']] and list(results.values()) == [['', '']]
