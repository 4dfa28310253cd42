"""AdamW with optax.adamw's numbers and state, applied in one pass per parameter.

    tx = adamw(schedule, weight_decay=1e-4)   # an optax GradientTransformation, plus:
    params, opt_state = tx.apply(grads, opt_state, params)

`init` and `update` are optax.adamw's own (same state: `(ScaleByAdamState, EmptyState,
ScaleByScheduleState)`), so any optax code can use it. `apply` gives what `update` followed
by `optax.apply_updates` gives, in one step: in CPU programs with the native kernels, each
parameter of at least `NATIVE_MIN_SIZE` elements per model is updated by one pass over its
parameter, gradient and moments (`hfa_jax.kernels.adamw`, in place) instead of XLA's three
(optax.adamw is memory-bound: 40 bytes per parameter and step, 28 in one pass); the others,
and GPU/TPU programs, use `reference_step`, optax's expressions. `train.TrainState` calls
`apply` when its optimiser has one.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from hfa_jax import kernels

NATIVE_MIN_SIZE = 4096  # elements per model; smaller parameters cost more in calls than bytes


class AdamW(NamedTuple):
  """optax.adamw's `init` and `update`, and `apply(grads, state, params) -> (params, state)`."""

  init: Callable
  update: Callable
  apply: Callable


def adamw(
  learning_rate: optax.ScalarOrSchedule,
  weight_decay: float = 1e-4,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
) -> AdamW:
  """optax.adamw(learning_rate, b1, b2, eps, weight_decay=weight_decay) with `apply`."""
  tx = optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
  scheduled = callable(learning_rate)  # optax then keeps a step count for it
  hyper = kernels.AdamWHyperparams(b1=b1, c1=1 - b1, b2=b2, c2=1 - b2, eps=eps, wd=weight_decay)

  def apply(grads, state, params):
    adam, decay, sched = state
    count = optax.safe_increment(adam.count)
    # The step's scalars exactly as optax computes them (bias_correction, scale_by_schedule).
    lr = learning_rate(sched.count) if scheduled else learning_rate
    scalars = kernels.AdamWStepScalars(
      neg_lr=jnp.asarray(-1 * lr, jnp.float32), bc1=1 - b1**count, bc2=1 - b2**count
    )
    step = lambda p, g, m, v: leaf_step(p, g, m, v, scalars, hyper)
    with jax.named_scope('adamw'):  # profiles name its ops
      new = jax.tree.map(step, params, grads, adam.mu, adam.nu)
    outer = jax.tree.structure(params)
    new_params, mu, nu = jax.tree.transpose(outer, jax.tree.structure((0, 0, 0)), new)
    new_state = (
      optax.ScaleByAdamState(count=count, mu=mu, nu=nu),
      decay,
      optax.ScaleByScheduleState(count=optax.safe_increment(sched.count)) if scheduled else sched,
    )
    return new_params, new_state

  return AdamW(tx.init, tx.update, apply)


def reference_step(
  p, g, mu, nu, scalars: kernels.AdamWStepScalars, hyper: kernels.AdamWHyperparams
):
  """One parameter's AdamW step with optax's expressions -> (p, mu, nu).

  scalars: neg_lr = -lr(t), bc1 = 1 - b1^t, bc2 = 1 - b2^t; hyper: b1, c1 = 1 - b1, b2,
  c2 = 1 - b2, eps, wd (decoupled), l2 (added to the gradient first).
  """
  neg_lr, bc1, bc2 = scalars
  if hyper.l2:
    g = g + hyper.l2 * p  # optax.add_decayed_weights before optax.adam (Adam with L2)
  mu = hyper.c1 * g + hyper.b1 * mu  # optax.tree.update_moment
  nu = hyper.c2 * (g**2) + hyper.b2 * nu  # optax.tree.update_moment_per_elem_norm
  update = (mu / bc1.astype(mu.dtype)) / (jnp.sqrt(nu / bc2.astype(nu.dtype) + 0.0) + hyper.eps)
  if hyper.wd:
    update = update + hyper.wd * p  # optax.add_decayed_weights
  update = jnp.asarray(neg_lr, update.dtype) * update  # optax.scale_by_learning_rate
  return (p + update).astype(p.dtype), mu, nu


def leaf_step(p, g, mu, nu, scalars, hyper):
  """One parameter's step: the native kernel in CPU programs (float32, at least
  NATIVE_MIN_SIZE elements per model, kernels built), else `reference_step`."""
  if (
    p.size < NATIVE_MIN_SIZE
    or any(t.dtype != jnp.float32 for t in (p, g, mu, nu))
    or not kernels.native_available()
  ):
    return reference_step(p, g, mu, nu, scalars, hyper)
  f32 = lambda a: a.astype(jnp.float32)
  scalars = scalars._replace(bc1=f32(scalars.bc1), bc2=f32(scalars.bc2))
  native = lambda *a: kernels.adamw(*a, hyper)
  reference = lambda *a: reference_step(*a, hyper)
  return jax.lax.platform_dependent(p, g, mu, nu, scalars, cpu=native, default=reference)
