"""The arguments of a LOSO run's compiled programs as abstract arrays: jax.ShapeDtypeStruct
with the shapes, dtypes and shardings a run gives them, and no data.

    program = fold_program(model, shape, jax.sharding.AbstractMesh((8,), ('folds',)))
    lowered = program.epoch.trace(*epoch_args(program, shape, folds=8, samples=40)).lower(
      lowering_platforms=('tpu',))                       # a TPU program, on any machine
    compiled = program.epoch.trace(*epoch_args(...)).lower().compile()   # on this machine
    compiled.memory_analysis()                           # XLA's figure for the program

tests/test_lowering.py lowers every program of a run for GPU and TPU this way; the memory plan
(hfa_jax.loso.memory) is measured on the compiled CPU programs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hfa_jax.loso.program import FoldProgram, ProgramShape

KEY = jax.ShapeDtypeStruct((2,), jnp.uint32)  # a fold's raw key (program.fold_key)


def spec(shape: tuple, dtype, sharding=None) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype), sharding=sharding)


def one_state(program: FoldProgram):
  """One fold's TrainState, abstract (init_one's output; nothing compiled or run)."""
  return jax.eval_shape(program.init_one, KEY)


def stacked_state(program: FoldProgram, folds: int):
  """The TrainState of `folds` stacked folds, sharded over the folds as program.init puts it."""
  return jax.tree.map(
    lambda a: spec((folds, *a.shape), a.dtype, program.by_fold), one_state(program)
  )


def epoch_args(program: FoldProgram, shape: ProgramShape, folds: int, samples: int) -> tuple:
  """program.epoch's arguments for `folds` folds of a dataset of `samples` images, as a run
  puts them (run.py, final.py): the state and the folds' index tables sharded over the folds,
  the dataset and the scalars replicated. Each fold's training table holds every sample;
  its evaluation table one evaluation batch."""
  by_fold, replicated = program.by_fold, program.replicated
  side = shape.input_shape[1:]
  return (
    stacked_state(program, folds),
    spec((samples, *side), jnp.float32, replicated),  # images
    spec((samples,), jnp.int32, replicated),  # labels
    spec((folds, samples), jnp.int32, by_fold),  # train_idx
    spec((folds,), jnp.int32, by_fold),  # train_count
    spec((folds, shape.eval_batch), jnp.int32, by_fold),  # eval_idx
    spec((), jnp.int32, replicated),  # epoch
    spec((), jnp.bool_, replicated),  # evaluating
  )


def variables(model, side: int) -> dict:
  """A model's variables {'params', 'batch_stats'} for predict (abstract, float32)."""
  x = spec((1, side, side, 3), jnp.float32)
  out = jax.eval_shape(lambda k, x: model.init(k, x, train=False), KEY, x)
  return dict(params=out['params'], batch_stats=out.get('batch_stats', {}))
