"""Adam with L2 and SGD with momentum with optax's numbers and state, applied in one pass per
parameter (the baselines' recipes: 'adam' and 'sgd' in hfa_jax.optimiser).

    tx = adam_l2(schedule, weight_decay=1e-3)   # optax.chain(add_decayed_weights, adam), plus:
    tx = sgd(schedule, momentum=0.9, weight_decay=0.0)  # optax.chain(add_decayed_weights, sgd)
    params, opt_state = tx.apply(grads, opt_state, params)

As `hfa_jax.adamw`: `init` and `update` are optax's own (the same state), and `apply` gives
what `update` followed by `optax.apply_updates` gives. In CPU programs with the native
kernels, each parameter of at least `adamw.NATIVE_MIN_SIZE` elements per model is updated in
one pass over it, its gradient and its moments (`kernels.adamw` with `l2`, `kernels.sgd`, in
place); XLA makes three passes of optax's chain (the L2 term, each moment, the parameter).
With 40-120 stacked baselines of up to 11 M parameters each the update is memory traffic.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from hfa_jax import adamw as adamw_lib
from hfa_jax import kernels


def _learning_rate(learning_rate, count):
  """The step's -lr as optax's scale_by_learning_rate computes it (float32)."""
  lr = learning_rate(count) if callable(learning_rate) else learning_rate
  return jnp.asarray(-1 * lr, jnp.float32)


def _next_schedule(learning_rate, sched):
  if callable(learning_rate):
    return optax.ScaleByScheduleState(count=optax.safe_increment(sched.count))
  return sched


def _split(outer, new, n):
  """A tree of n-tuples -> n trees."""
  return jax.tree.transpose(outer, jax.tree.structure((0,) * n), new)


def adam_l2(
  learning_rate: optax.ScalarOrSchedule,
  weight_decay: float = 0.0,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
) -> adamw_lib.AdamW:
  """optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate, b1, b2,
  eps)) (torch.optim.Adam's weight_decay) with `apply`."""
  tx = optax.chain(
    optax.add_decayed_weights(weight_decay), optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
  )
  hyper = kernels.AdamWHyperparams(
    b1=b1, c1=1 - b1, b2=b2, c2=1 - b2, eps=eps, wd=0.0, l2=weight_decay
  )

  def apply(grads, state, params):
    decay, (adam, sched) = state
    count = optax.safe_increment(adam.count)
    scalars = kernels.AdamWStepScalars(
      neg_lr=_learning_rate(learning_rate, sched.count), bc1=1 - b1**count, bc2=1 - b2**count
    )
    step = lambda p, g, m, v: adamw_lib.leaf_step(p, g, m, v, scalars, hyper)
    with jax.named_scope('adam'):
      new = jax.tree.map(step, params, grads, adam.mu, adam.nu)
    new_params, mu, nu = _split(jax.tree.structure(params), new, 3)
    adam = optax.ScaleByAdamState(count=count, mu=mu, nu=nu)
    return new_params, (decay, (adam, _next_schedule(learning_rate, sched)))

  return adamw_lib.AdamW(tx.init, tx.update, apply)


def sgd_reference_step(p, g, trace, neg_lr, momentum: float, l2: float):
  """One parameter's step with optax's expressions -> (p, trace)."""
  if l2:
    g = g + l2 * p  # optax.add_decayed_weights
  trace = g + momentum * trace  # optax.trace
  return (p + jnp.asarray(neg_lr, trace.dtype) * trace).astype(p.dtype), trace


def _sgd_leaf(p, g, trace, neg_lr, momentum, l2):
  if (
    p.size < adamw_lib.NATIVE_MIN_SIZE
    or any(t.dtype != jnp.float32 for t in (p, g, trace))
    or not kernels.native_available()
  ):
    return sgd_reference_step(p, g, trace, neg_lr, momentum, l2)
  native = lambda *a: kernels.sgd(*a, momentum, l2)
  reference = lambda *a: sgd_reference_step(*a, momentum, l2)
  return jax.lax.platform_dependent(p, g, trace, neg_lr, cpu=native, default=reference)


def sgd(
  learning_rate: optax.ScalarOrSchedule, momentum: float, weight_decay: float = 0.0
) -> adamw_lib.AdamW:
  """optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum))
  (torch.optim.SGD with momentum and weight_decay, no dampening) with `apply`; momentum > 0."""
  if not momentum > 0:
    raise ValueError(f'sgd: the one-pass form needs momentum > 0, got {momentum}')
  tx = optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate, momentum))

  def apply(grads, state, params):
    decay, (trace, sched) = state
    neg_lr = _learning_rate(learning_rate, sched.count)
    step = lambda p, g, t: _sgd_leaf(p, g, t, neg_lr, momentum, weight_decay)
    with jax.named_scope('sgd'):
      new = jax.tree.map(step, params, grads, trace.trace)
    new_params, new_trace = _split(jax.tree.structure(params), new, 2)
    state = (decay, (optax.TraceState(trace=new_trace), _next_schedule(learning_rate, sched)))
    return new_params, state

  return adamw_lib.AdamW(tx.init, tx.update, apply)
