"""The native forms for many stacked small models (the LOSO's folds of the baselines): the
direct convolution `kernels.conv_forward` and where `ops.conv` uses it, the weight gradient of
many models over few rows, and the one-pass Adam with L2 and SGD with momentum
(`hfa_jax.adam_sgd`) against optax's chains; each against XLA's or optax's form, alone and
under the folds' vmap, values and gradients."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hfa_jax import adam_sgd, kernels, optimiser
from hfa_jax.ops import conv as conv_ops

native = pytest.mark.skipif(
  not kernels.native_available(), reason='no C++ compiler: the native kernels are not built'
)

# (models, batch, side, Cin, Cout, kernel, stride, padding): STSTNet's 3 -> 16 (padding 2),
# OFF-ApexNet's 2 -> 6 (a partial vector), SSSNet's 5x5, a strided 7x7 stem, 64 -> 64 (four
# vectors), 33 and 70 channels (whole vectors then a partial one), a 1x1.
CASES = [
  (2, 3, 9, 3, 16, 3, 1, 2),
  (3, 2, 8, 2, 6, 3, 1, 1),
  (2, 2, 11, 3, 32, 5, 1, 0),
  (1, 2, 10, 3, 64, 7, 2, 3),
  (2, 1, 7, 64, 64, 3, 1, 1),
  (3, 2, 12, 2, 33, 5, 1, 0),
  (2, 2, 10, 5, 70, 3, 2, 1),
  (2, 2, 6, 8, 48, 1, 1, 0),
]


def stacked(case, seed=0):
  f, b, side, cin, cout, k, _, _ = case
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(f, b, side, side, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(f, k, k, cin, cout)) * 0.3, jnp.float32)
  return x, w


@native
@pytest.mark.parametrize('case', CASES)
def test_direct_convolution_matches_xla_per_model(case):
  x, w = stacked(case)
  s, p = case[6], case[7]
  got = jax.jit(lambda x, w: kernels.conv_forward(x, w, s, p))(x, w)  # leading model axis
  vmapped = jax.jit(jax.vmap(lambda x, w: kernels.conv_forward(x, w, s, p)))(x, w)
  want = jax.vmap(lambda x, w: conv_ops.conv_reference(x, w, s, p))(x, w)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(got, vmapped)


@native
def test_direct_convolution_is_deterministic():
  x, w = stacked((2, 4, 20, 32, 64, 3, 1, 1), seed=1)
  fn = jax.jit(lambda x, w: kernels.conv_forward(x, w, 1, 1))
  first = np.asarray(fn(x, w))
  for _ in range(3):
    np.testing.assert_array_equal(np.asarray(fn(x, w)), first)


def loss_of(fn, case):
  """jit(grad) of sum(sin(fn)) per model, summed, under the folds' vmap."""
  s, p = case[6], case[7]
  per_model = jax.vmap(lambda x, w: jnp.sum(jnp.sin(fn(x, w, s, p))))
  return jax.jit(jax.grad(lambda x, w: per_model(x, w).sum(), (0, 1)))


@native
@pytest.mark.parametrize('case', CASES)
def test_stacked_convolution_runs_natively_and_matches_xla(case):
  """ops.conv.conv under the folds' vmap: the forward (and, at stride 1, the input gradient)
  as the direct convolution where the outputs exceed 2x2, the values and both gradients those
  of XLA's convolution model by model."""
  x, w = stacked(case, seed=2)
  ours, theirs = loss_of(conv_ops.conv, case), loss_of(conv_ops.conv_reference, case)
  for a, b in zip(ours(x, w), theirs(x, w)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  text = ours.lower(x, w).compile().as_text()
  assert f'custom_call_target="{kernels.CONV_FORWARD}"' in text
  assert 'convolution(' not in text


@native
def test_weight_gradient_of_many_models_over_few_rows():
  """Many models with large weight gradients (a Linear layer of many inputs, the folds
  stacked) sum each model in one chunk, straight into the output."""
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(6, 1, 4, 8, 300)), jnp.float32)
  g = jnp.asarray(rng.normal(size=(6, 1, 4, 8, 1024)), jnp.float32)
  fn = functools.partial(kernels.conv_weight_grad, stride=1, padding=0, k=1)
  got = jax.jit(jax.vmap(fn))(x, g)
  want = jnp.einsum('mbhwi,mbhwo->mio', x, g, precision='highest')[:, None, None]
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


SCHEDULE = optax.join_schedules(
  [optax.linear_schedule(0.0, 5e-3, 2), optax.cosine_decay_schedule(5e-3, 6)], [2]
)
SHAPES = dict(conv=(3, 3, 32, 64), big=(70001,), bias=(64,))  # above and below the native size


def _tree(folds):
  keys = jax.random.split(jax.random.key(0), len(SHAPES))
  return {n: jax.random.normal(k, (folds, *s)) for (n, s), k in zip(SHAPES.items(), keys)}


def _five_steps(step, params, state):
  for t in range(5):
    grads = jax.tree.map(lambda p: jnp.sin(p * (t + 1)) * 10.0 ** (t - 3), params)
    params, state = step(grads, state, params)
  return params, state


def _optax_step(tx):
  def step(grads, state, params):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return step


OPTIMISERS = {
  'adam_l2': (
    lambda lr: adam_sgd.adam_l2(lr, weight_decay=1e-2),
    lambda lr: optax.chain(optax.add_decayed_weights(1e-2), optax.adam(lr)),
  ),
  'adam': (
    lambda lr: adam_sgd.adam_l2(lr),
    lambda lr: optax.chain(optax.add_decayed_weights(0.0), optax.adam(lr)),
  ),
  'sgd_l2': (
    lambda lr: adam_sgd.sgd(lr, 0.9, weight_decay=1e-2),
    lambda lr: optax.chain(optax.add_decayed_weights(1e-2), optax.sgd(lr, 0.9)),
  ),
}


@pytest.mark.parametrize('name', OPTIMISERS)
@pytest.mark.parametrize('lr', [SCHEDULE, 3e-3], ids=['schedule', 'constant'])
@pytest.mark.parametrize('form', ['native', 'optax-expressions'])
def test_one_pass_optimisers_equal_optax_chains_under_the_folds_vmap(name, lr, form, monkeypatch):
  if form == 'native' and not kernels.native_available():
    pytest.skip('native CPU kernels unavailable (no C++ compiler)')
  if form != 'native':
    monkeypatch.setattr(adam_sgd.kernels, 'native_available', lambda: False)
  ours, theirs = (make(lr) for make in OPTIMISERS[name])
  params = _tree(3)
  step = jax.jit(jax.vmap(ours.apply))
  got = _five_steps(step, params, jax.vmap(ours.init)(params))
  want = _five_steps(jax.jit(jax.vmap(_optax_step(theirs))), params, jax.vmap(theirs.init)(params))
  chex.assert_trees_all_equal_structs(got, want)
  # Adam divides by small second moments: one ulp of the L2 sum's rounding grows to ~1e-6.
  chex.assert_trees_all_close(got, want, rtol=1e-5, atol=2e-6)
  text = step.lower(params, jax.vmap(ours.init)(params), params).as_text()
  target = kernels.SGD if name.startswith('sgd') else kernels.ADAMW
  assert (target in text) == (form == 'native')


def test_the_recipes_optimisers_are_the_one_pass_forms():
  config = lambda **kw: optimiser.OptimConfig(schedule='constant', **kw)
  adam = optimiser.make_optimizer(config(optimizer='adam', weight_decay=1e-3))
  sgd = optimiser.make_optimizer(config(optimizer='sgd', weight_decay=0.0, momentum=0.9))
  assert hasattr(adam, 'apply') and hasattr(sgd, 'apply')
  plain = optimiser.make_optimizer(config(optimizer='sgd', momentum=0.0))
  clipped = optimiser.make_optimizer(config(optimizer='adam', grad_clip=1.0))
  assert not hasattr(plain, 'apply') and not hasattr(clipped, 'apply')
