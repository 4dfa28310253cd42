"""hfa_jax.adamw: the one-pass AdamW gives optax.adamw's parameters and state, alone and
for stacked folds under vmap, in the native kernel's form and in optax's expressions."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hfa_jax import adamw as adamw_lib
from hfa_jax import kernels
from hfa_jax import optimiser
from hfa_jax import train as train_lib
from tests import native as native_kernels

# XLA rounds the same expressions differently in different fusions (one ulp); five Adam
# steps, which divide by small second moments, grow that to ~1e-6.
CLOSE = dict(rtol=1e-5, atol=2e-6)
SCHEDULE = optax.join_schedules(
  [optax.linear_schedule(0.0, 5e-3, 2), optax.cosine_decay_schedule(5e-3, 6)], [2]
)


def _tree(key, folds=None):
  """Parameters with leaves above and below NATIVE_MIN_SIZE (and one not a multiple of the
  kernel's chunk), as (folds, ...) when folds is given."""
  shapes = dict(conv=(3, 3, 32, 64), big=(70001,), bias=(64,), scale=(7, 5))
  lead = () if folds is None else (folds,)
  keys = jax.random.split(key, len(shapes))
  return {n: jax.random.normal(k, lead + s) for (n, s), k in zip(shapes.items(), keys)}


def _steps(tx_step, params, state, n=5):
  for t in range(n):
    grads = jax.tree.map(lambda p: jnp.sin(p * (t + 1)) * 10.0 ** (t - 3), params)
    params, state = tx_step(grads, state, params)
  return params, state


def _optax_step(tx):
  def step(grads, state, params):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


def test_kernel_step_is_bitwise_the_reference_step():
  """One step of one parameter: the kernel rounds as XLA does (reciprocal bias corrections)."""
  native_kernels.require()
  k = jax.random.split(jax.random.key(4), 4)
  shape = (5, 70001)  # 5 models, each not a multiple of the kernel's chunk
  p, g = jax.random.normal(k[0], shape), jax.random.normal(k[1], shape) * 1e-3
  mu = jax.random.normal(k[2], shape) * 1e-3
  nu = jnp.abs(jax.random.normal(k[3], shape)) * 1e-6
  count = jnp.arange(1, 6, dtype=jnp.int32)
  scalars = kernels.AdamWStepScalars(
    -5e-3 * jnp.linspace(0.5, 1, 5), 1 - 0.9**count, 1 - 0.999**count
  )
  hyper = kernels.AdamWHyperparams(b1=0.9, c1=1 - 0.9, b2=0.999, c2=1 - 0.999, eps=1e-8, wd=1e-2)
  native = jax.jit(lambda *a: kernels.adamw(*a, hyper))(p, g, mu, nu, scalars)
  ref = jax.jit(jax.vmap(lambda *a: adamw_lib.reference_step(*a, hyper)))(p, g, mu, nu, scalars)
  chex.assert_trees_all_equal(native, ref)
  assert not np.array_equal(native[0], p)


@pytest.mark.parametrize('lr', [SCHEDULE, 3e-3], ids=['schedule', 'constant'])
@pytest.mark.parametrize('native', [True, False], ids=['native', 'optax-expressions'])
def test_one_pass_adamw_equals_optax_adamw(native, lr, monkeypatch):
  if native:
    native_kernels.require()
  if not native:
    monkeypatch.setattr(adamw_lib.kernels, 'native_available', lambda: False)
  params = _tree(jax.random.key(0))
  ours = adamw_lib.adamw(lr, weight_decay=1e-2)
  theirs = optax.adamw(lr, weight_decay=1e-2)
  got = _steps(jax.jit(ours.apply), params, ours.init(params))
  want = _steps(jax.jit(_optax_step(theirs)), params, theirs.init(params))
  chex.assert_trees_all_equal_structs(got, want)
  chex.assert_trees_all_close(got, want, **CLOSE)
  chex.assert_tree_all_finite(got)


def test_one_pass_adamw_for_stacked_folds_at_different_steps():
  """Under vmap each fold has its own step count, so its own learning rate and bias
  corrections; the kernel must take each fold's scalars."""
  folds = 3
  params = _tree(jax.random.key(1), folds)
  ours = adamw_lib.adamw(SCHEDULE, weight_decay=1e-2)
  theirs = optax.adamw(SCHEDULE, weight_decay=1e-2)
  stagger = lambda s: jax.tree.map(lambda c: c + jnp.arange(folds, dtype=c.dtype) * 2, s)

  def start(tx):
    state = jax.vmap(tx.init)(params)
    adam, decay, sched = state
    return (
      adam._replace(count=stagger(adam.count)),
      decay,
      sched._replace(count=stagger(sched.count)),
    )

  got = _steps(jax.jit(jax.vmap(ours.apply)), params, start(ours))
  want = _steps(jax.jit(jax.vmap(_optax_step(theirs))), params, start(theirs))
  chex.assert_trees_all_close(got, want, **CLOSE)
  # and each fold alone is the same as in the stack
  one = _steps(
    jax.jit(ours.apply),
    jax.tree.map(lambda t: t[1], params),
    jax.tree.map(lambda t: t[1], start(ours)),
  )
  chex.assert_trees_all_close(jax.tree.map(lambda t: t[1], got), one, **CLOSE)


def test_train_state_steps_with_the_one_pass_form():
  """make_optimizer gives it for AdamW without clipping; TrainState.apply_gradients uses
  `apply`, and the state after a step equals flax's optax path."""
  cfg = optimiser.OptimConfig(learning_rate=1e-3, total_steps=10)
  tx = optimiser.make_optimizer(cfg)
  assert isinstance(tx, adamw_lib.AdamW)
  assert not isinstance(optimiser.make_optimizer(cfg.__class__(grad_clip=1.0)), adamw_lib.AdamW)
  params = _tree(jax.random.key(2))
  grads = jax.tree.map(jnp.cos, params)
  ours = train_lib.TrainState.create(apply_fn=None, params=params, tx=tx)
  plain = optax.GradientTransformation(tx.init, tx.update)  # flax's own apply_gradients
  theirs = train_lib.TrainState.create(apply_fn=None, params=params, tx=plain)
  a = jax.jit(lambda s: s.apply_gradients(grads=grads))(ours)
  b = jax.jit(lambda s: s.apply_gradients(grads=grads))(theirs)
  assert int(a.step) == int(b.step) == 1
  chex.assert_trees_all_close((a.params, a.opt_state), (b.params, b.opt_state), **CLOSE)
  assert not np.array_equal(a.params['big'], params['big'])


def test_kernel_only_in_cpu_programs_and_only_for_large_parameters():
  native_kernels.require()
  tx = adamw_lib.adamw(SCHEDULE)
  params = _tree(jax.random.key(3), folds=2)
  state = jax.vmap(tx.init)(params)
  fn = jax.jit(jax.vmap(tx.apply))
  cpu = fn.lower(params, state, params).as_text()
  # conv and big: one call each; bias and scale are below NATIVE_MIN_SIZE
  assert cpu.count(f'@{kernels.ADAMW}(') == 2
  for platform in ('cuda', 'tpu'):
    text = jax.export.export(fn, platforms=(platform,))(params, state, params).mlir_module()
    assert kernels.ADAMW not in text
