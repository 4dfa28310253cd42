"""How many folds fit on a GPU or TPU: the memory plan behind `folds_at_once`.

A device holds the whole dataset (replicated: every fold draws from it) and its folds' share
of the fold program. Per fold, XLA's own figure for the program (`compiled.memory_analysis()`:
arguments + outputs - the donated state + temporaries) is planned as

    state + gradients + fixed + max(train * batch, eval * eval_batch) * side^2

state: the fold's TrainState (parameters, the optimiser's moments, BatchNorm statistics, the
weight average), and gradients as large as the parameters, both computed from the shapes
(`state_bytes`: HTNet's 140 M parameters and Adam take 2.1 GiB, HFA-Net's 24 M 0.4 GiB;
OffApexNet's and SSSNet's grow with the side). The rest, per network, measured: what the
training steps keep per pixel of each training sample (the activations of the backward pass),
what the evaluation, which runs after them in the memory they freed, needs per pixel of each
evaluation sample, and a fixed part. `python -m experiments.memory_plan` compiles each
network's fold program (its own recipe, float32, 2 folds) on CPU with the XLA forms GPU and
TPU programs run (not the CPU's native kernels), at 224 px once for each phase and at its
small side, and fits them (REST below); tests/test_memory_plan.py compiles
the programs again at other sides and batches and checks the plan against XLA's figure.
Below 224 px the plan errs high where activations grow faster than side^2 (attention maps);
it was not measured above.

On a GPU or TPU, `folds_per_device` fills FRACTION of the device's memory: a margin for what
the CPU figure does not see (the GPU/TPU compilers' own fusions and layouts, the allocator).
bfloat16 programs are planned with the float32 figure: their activations are smaller.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

FRACTION = 0.5  # of a device's bytes_limit the folds may fill
KEY = jax.ShapeDtypeStruct((2,), np.uint32)

# name -> (fixed bytes, training bytes per pixel of a training sample, evaluation bytes per
# pixel of an evaluation sample) per fold besides the state and gradients, float32;
# `python -m experiments.memory_plan` (224 px and 28 px, HFA-Net 32; each network's recipe;
# jax 0.10.2, XLA:CPU).
REST = {
  'hfanet': (0, 8791, 857),
  'rcn_a': (0, 3127, 1235),
  'ststnet': (12119194, 392, 79),  # 11.6 MiB
  'sssnet': (0, 1058, 381),
  'offapexnet': (156946, 263, 44),  # 0.1 MiB
  'resnet18': (21595284, 1718, 325),  # 20.6 MiB
  'htnet': (0, 4138, 262),
}
DEFAULT_REST = tuple(max(r[i] for r in REST.values()) for i in range(3))  # another network
EVAL_BATCH = 64  # LosoConfig's eval_batch_size: the evaluation batch where none is given


def network_name(model) -> str | None:
  """The registry name of `model` (a linen module), None for one the registry lacks."""
  from hfa_jax.models import registry

  for name in registry.names():
    if type(model) is registry.model_class(name):
      return name
  return None


def nbytes(tree) -> int:
  return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


@functools.lru_cache(maxsize=32)
def state_bytes(model, side: int, training=None) -> int:
  """One fold's TrainState for `training` (hfa_jax.loso.config.Training; None: the defaults)
  at `side` px, plus its gradients (the parameters' size): from the shapes, nothing run."""
  from hfa_jax import train
  from hfa_jax.loso.config import Training
  from hfa_jax.optimiser import OptimConfig

  training = Training() if training is None else training
  create = functools.partial(
    train.create_train_state,
    model=model,
    input_shape=(1, side, side, 3),
    tx=train.make_optimizer(OptimConfig.of(training)),
    ema=training.ema_decay > 0,
  )
  state = jax.eval_shape(create, KEY)
  return nbytes(state) + nbytes(state.params)


def per_fold_bytes(
  model, side: int, batch: int, training=None, eval_batch: int = EVAL_BATCH
) -> int:
  """The plan's bytes for one fold of `model` at `side` px, `batch` samples per training step
  and `eval_batch` per evaluation step."""
  fixed, train, evaluation = REST.get(network_name(model), DEFAULT_REST)
  phase = max(train * batch, evaluation * eval_batch) * side * side
  return int(state_bytes(model, side, training) + fixed + phase)


def dataset_bytes(samples: int, side: int) -> int:
  """The replicated dataset on each device: float32 images (N, S, S, 3) and int32 labels."""
  return samples * (side * side * 3 * 4 + 4)


def folds_per_device(
  limit: int,
  model,
  side: int,
  batch: int,
  training=None,
  samples: int = 0,
  eval_batch: int = EVAL_BATCH,
) -> int:
  """How many folds of `model` fit in FRACTION of `limit` bytes beside a dataset of `samples`
  images; at least 1."""
  room = limit * FRACTION - dataset_bytes(samples, side)
  return max(1, int(room // per_fold_bytes(model, side, batch, training, eval_batch)))
