"""The RCN-A baseline (hfa_jax.models.rcn_a) and its recipe's SGD: size, shapes, modes, the
numbers of the original PyTorch class (tests/fixtures/rcn_a_torch.npz), PyTorch's SGD."""

import functools
import importlib.util
import json
import pathlib

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hfa_jax import optimiser
from hfa_jax.loso.config import LosoConfig
from hfa_jax.models import rcn_a
from hfa_jax.models.rcn_a import RCNA, variables_from_torch

FIXTURES = pathlib.Path(__file__).resolve().parent / 'fixtures'
FIXTURE = FIXTURES / 'rcn_a_torch.npz'


def key(seed):
  """An 'rbg' key: XLA:CPU compiles threefry's bit generation slowly."""
  return jax.random.key(seed, impl='rbg')


@functools.partial(jax.jit, static_argnums=(0, 1))
def init(model, side):
  return model.init(key(0), jnp.zeros((2, side, side, 3)))


@functools.partial(jax.jit, static_argnames=('model', 'train', 'with_rng'))
def forward(model, variables, x, train=False, seed=0, with_rng=True):
  """Logits (eval) or (logits, batch_stats updates) (train)."""
  rngs = {'dropout': key(seed)} if with_rng else None
  if not train:
    return model.apply(variables, x, rngs=rngs)
  return model.apply(variables, x, train=True, mutable=['batch_stats'], rngs=rngs)


def flow_images(n, side, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (n, side, side, 3)), jnp.float32)


count = lambda tree: sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


def test_parameter_count_is_the_originals():
  """55,747 at the published 60 px (and any side): MeNets.RCN_A(3, 64, 3, 1, 7)'s count."""
  variables = jax.eval_shape(RCNA().init, jax.random.key(0), jnp.zeros((1, 60, 60, 3)))
  params = variables['params']
  assert count(params['conv1']) == 5 * 5 * 3 * 64 + 64 == 4_864
  assert count(params['rcl0']['ff_conv']) == 64 * 64 + 64 == 4_160
  assert count(params['rcl0']['rr_conv']) == 9 * 64 * 64 + 64 == 36_928
  assert count([params['bn1'], params['rcl0']['ff_bn'], params['rcl0']['rr_bn']]) == 3 * 128
  assert count(params['classifier']) == 7 * 7 * 64 * 3 + 3 == 9_411
  assert count(params) == 55_747
  assert count(variables['batch_stats']) == 3 * 128
  if FIXTURE.exists():
    assert count(params) == fixture()[1]['param_count']  # counted on the PyTorch class
  small = jax.eval_shape(
    RCNA(featuremaps=32, pool_size=5).init, jax.random.key(0), jnp.zeros((1, 28, 28, 3))
  )
  assert count(small['params']) == 15_331  # the README command's sizes, as PyTorch counts


# Side -> conv1 side - 4, pooled / 2, RCL pooled / 2, then adaptively averaged to 7 x 7.
@pytest.mark.parametrize('side', [28, 60])
def test_output_shapes(side):
  model = RCNA()
  variables = init(model, side)
  chex.assert_shape(variables['params']['classifier']['kernel'], (7 * 7 * 64, 3))
  x = flow_images(2, side)
  logits = forward(model, variables, x)
  chex.assert_shape(logits, (2, 3))
  train_logits, updates = forward(model, variables, x, train=True, seed=1)
  chex.assert_shape(train_logits, (2, 3))
  chex.assert_trees_all_equal_shapes(updates['batch_stats'], variables['batch_stats'])
  chex.assert_tree_all_finite((logits, train_logits, updates))


def test_dropout_only_in_training_and_from_the_dropout_rng():
  model = RCNA(featuremaps=16)  # small and fast: the same code
  variables = init(model, 16)
  x = flow_images(4, 16)
  train_logits = lambda seed, model=model: forward(model, variables, x, train=True, seed=seed)[0]
  a, a_again, b = train_logits(1), train_logits(1), train_logits(2)
  chex.assert_trees_all_equal(a, a_again)
  assert float(jnp.abs(a - b).max()) > 1e-4
  no_drop = RCNA(featuremaps=16, dropout=0.0)
  chex.assert_trees_all_equal(train_logits(1, no_drop), train_logits(2, no_drop))
  chex.assert_trees_all_equal(
    forward(model, variables, x, with_rng=False), forward(model, variables, x, seed=3)
  )
  with pytest.raises(flax.errors.InvalidRngError):
    jax.eval_shape(
      lambda v, x: model.apply(v, x, train=True, mutable=['batch_stats']), variables, x
    )
  _, evaluated = jax.jit(lambda v, x: model.apply(v, x, mutable=['batch_stats']))(variables, x)
  chex.assert_trees_all_equal(evaluated['batch_stats'], variables['batch_stats'])


def test_adaptive_average_pool_windows_are_pytorchs():
  """AdaptiveAvgPool2d's windows floor(i n / p) .. ceil((i + 1) n / p): overlapping when the
  map is smaller than the output (6 -> 7 at 28 px), uneven when it does not divide (14 -> 5)."""
  a = rcn_a.adaptive_windows(6, 7)
  want = np.zeros((7, 6))
  want[0, 0] = want[6, 5] = 1
  for i in range(1, 6):
    want[i, i - 1 : i + 1] = 0.5
  np.testing.assert_array_equal(a, want)
  starts = [0, 2, 5, 8, 11]  # 14 -> 5: (0, 3), (2, 6), (5, 9), (8, 12), (11, 14)
  ends = [3, 6, 9, 12, 14]
  b = rcn_a.adaptive_windows(14, 5)
  for row, s, e in zip(b, starts, ends):
    np.testing.assert_allclose(row[s:e], 1 / (e - s))
    assert row.sum() == pytest.approx(1) and not row[:s].any() and not row[e:].any()


def test_a_flat_attention_map_is_zero_not_nan():
  """Where the pooled conv1 features are all 0 the original divides 0 by 0."""
  features = jnp.zeros((2, 7, 7, 64))
  kernel = jnp.asarray(np.random.default_rng(0).normal(size=(7 * 7 * 64, 3)), jnp.float32)
  att = rcn_a.attention_map(features, kernel)
  chex.assert_shape(att, (2, 7, 7, 1))
  assert not bool(jnp.any(att))
  att = rcn_a.attention_map(flow_images(2, 7)[..., :1] * jnp.ones(64), kernel)
  assert float(att.min()) >= 0 and float(att.max()) <= 1


def test_bfloat16_compute_keeps_float32_logits_and_parameters():
  variables = init(RCNA(), 16)
  x = flow_images(2, 16)
  low = forward(RCNA(dtype=jnp.bfloat16), variables, x)
  assert low.dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  np.testing.assert_allclose(low, forward(RCNA(), variables, x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize('shape', [(28, 28, 3), (1, 7, 7, 3)])
def test_bad_input_shape_is_a_clear_error(shape):
  with pytest.raises(ValueError, match='RCNA'):
    jax.eval_shape(RCNA().init, jax.random.key(0), jnp.zeros(shape))


# --- The original PyTorch class's numbers ---------------------------------------------------


@functools.cache
def fixture():
  """(arrays, meta, the state dict regenerated from the seed) of the parity fixture."""
  with np.load(FIXTURE) as z:
    arrays = {k: z[k] for k in z.files}
  meta = json.loads(bytes(arrays.pop('meta_json')).decode())
  spec = importlib.util.spec_from_file_location('make_fixture', FIXTURES / 'make_rcn_a_fixture.py')
  make = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(make)
  sd = make.state_dict_from_seed(meta['seed'], zip(meta['keys'], map(tuple, meta['shapes'])))
  for k, v in sd.items():  # NumPy does not promise Generator streams across versions
    assert v.astype(np.float64).sum() == pytest.approx(meta['sums'][k], rel=1e-12), (
      f'{k}: this NumPy draws other weights from seed {meta["seed"]} than the fixture had; '
      'remake the fixture with tests/fixtures/make_rcn_a_fixture.py'
    )
  return arrays, meta, sd


needs_fixture = pytest.mark.skipif(
  not FIXTURE.exists(),
  reason=f'{FIXTURE.name} absent: make it with tests/fixtures/make_rcn_a_fixture.py '
  '--original <checkout of xiazhaoqiang/ParameterFreeRCNs-MicroExpressionRec> (needs torch)',
)


@needs_fixture
def test_matches_the_original_in_eval_and_training():
  """Same weights, same input: eval logits, one train-mode pass's logits, the BatchNorm
  running statistics after it (rr_bn moved twice), and the gradients of its mean
  cross-entropy for conv1's and the classifier's weights (through the attention too)."""
  arrays, meta, sd = fixture()
  model = RCNA(featuremaps=meta['featuremaps'], pool_size=meta['pool_size'], dropout=0.0)
  variables = variables_from_torch(sd)
  x = jnp.asarray(arrays['input_nchw'].transpose(0, 2, 3, 1))
  assert x.shape == (2, meta['side'], meta['side'], 3)

  logits = forward(model, variables, x, with_rng=False)
  np.testing.assert_allclose(logits, arrays['eval_logits'], rtol=1e-5, atol=1e-6)

  def loss_fn(params):
    logits, updates = model.apply(
      {'params': params, 'batch_stats': variables['batch_stats']},
      x,
      train=True,
      mutable=['batch_stats'],
    )
    labels = jnp.asarray(meta['labels'])
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), (logits, updates)

  (loss, (logits, updates)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
    variables['params']
  )
  np.testing.assert_allclose(logits, arrays['train_logits'], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(loss, arrays['train_loss'], rtol=1e-5)
  stats = updates['batch_stats']
  for ours, theirs in [
    (stats['bn1'], 'conv1.1'),
    (stats['rcl0']['ff_bn'], 'rcls.0.ffconv.1'),
    (stats['rcl0']['rr_bn'], 'rcls.0.rrconv.1'),
  ]:
    np.testing.assert_allclose(
      ours['mean'], arrays[f'after.{theirs}.running_mean'], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
      ours['var'], arrays[f'after.{theirs}.running_var'], rtol=1e-5, atol=1e-6
    )
  want = {'classifier.weight': arrays['grad_classifier_weight']}
  ours = variables_from_torch(sd | want | {'conv1.0.weight': arrays['grad_conv1_weight']})
  got = {'conv1': grads['conv1']['kernel'], 'classifier': grads['classifier']['kernel']}
  for name in got:
    scale = float(jnp.abs(ours['params'][name]['kernel']).max())
    np.testing.assert_allclose(
      got[name], ours['params'][name]['kernel'], rtol=1e-4, atol=1e-5 * scale
    )


@needs_fixture
def test_meb_names_convert_alike():
  """MEB's copy names the classifier `fc`: the same variables."""
  _, _, sd = fixture()
  meb = {k.replace('classifier.', 'fc.'): v for k, v in sd.items()}
  chex.assert_trees_all_equal(variables_from_torch(meb), variables_from_torch(sd))


# --- The recipe's optimiser: PyTorch's SGD with momentum ------------------------------------


def test_sgd_is_pytorchs_sgd_with_momentum():
  """torch.optim.SGD(lr, momentum, weight_decay), no dampening: g += wd p; v = m v + g
  (v = g at the first step); p -= lr v."""
  cfg = optimiser.OptimConfig(
    optimizer='sgd', learning_rate=0.1, schedule='constant', weight_decay=0.01, momentum=0.9
  )
  tx = optimiser.make_optimizer(cfg)
  rng = np.random.default_rng(0)
  p = rng.normal(size=5).astype(np.float32)
  params, state, v = jnp.asarray(p), tx.init(jnp.asarray(p)), None
  for _ in range(3):
    g = rng.normal(size=5).astype(np.float32)
    d = g + 0.01 * p
    v = d if v is None else 0.9 * v + d
    p = p - 0.1 * v
    updates, state = tx.update(jnp.asarray(g), state, params)
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(params, p, rtol=1e-6)


def test_momentum_is_part_of_a_runs_identity_only_with_sgd():
  assert 'momentum' not in LosoConfig().identity()
  sgd = LosoConfig(optimizer='sgd')
  assert sgd.identity()['momentum'] == 0.9
  assert LosoConfig(optimizer='sgd', momentum=0.5).identity() != sgd.identity()
  with pytest.raises(ValueError, match='momentum'):
    LosoConfig(optimizer='sgd', momentum=1.0).validate()
