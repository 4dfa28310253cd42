"""OffApexNet (hfa_jax.models.offapexnet): its size, shapes, that it reads u and v only, its
dropout modes, and its numbers against the original PyTorch class (MEB) through
tests/fixtures/offapexnet_torch.npz."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax.models.offapexnet import OffApexNet, variables_from_torch
from tests.fixtures import torch_fixture

count = lambda tree: sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


def key(seed):
  """An 'rbg' key: XLA:CPU compiles threefry's bit generation slowly."""
  return jax.random.key(seed, impl='rbg')


@functools.partial(jax.jit, static_argnums=(0, 1))
def init(model, side):
  return model.init(key(0), jnp.zeros((2, side, side, 3)))


@functools.partial(jax.jit, static_argnames=('model', 'train'))
def forward(model, variables, x, train=False, seed=0):
  """Logits (eval, no rng) or (logits, updates) (train, 'dropout' rng from seed)."""
  if not train:
    return model.apply(variables, x)
  return model.apply(variables, x, train=True, mutable=['batch_stats'], rngs={'dropout': key(seed)})


def flow_images(n, side, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (n, side, side, 3)), jnp.float32)


def test_parameter_count_at_the_published_side():
  """28 px, 3 classes: 807,909, the original's count (the fixture's state dict); the
  paper's figure was not available."""
  params = jax.eval_shape(OffApexNet().init, jax.random.key(0), jnp.zeros((1, 28, 28, 3)))
  assert set(params) == {'params'}  # no BatchNorm
  params = params['params']
  # conv1 3*3*2*6 + 6; conv2 3*3*6*16 + 16; 28 -> 14 -> 7: fc1 7*7*16*1024 + 1024; fc 1024*3 + 3.
  expected = dict(conv1=114, conv2=880, fc1=803_840, fc=3_075)
  assert {name: count(params[name]) for name in expected} == expected
  assert count(params) == 807_909
  if torch_fixture.path('offapexnet').is_file():
    _, meta = torch_fixture.load('offapexnet')
    assert sum(int(np.prod(s)) for _, s in meta['keys']) == 807_909


@torch_fixture.requires('offapexnet')
def test_matches_the_original_pytorch_class():
  """The original's weights (drawn from the fixture's seed) give its logits, in eval and
  train mode (dropout 0), on the same flow images: it was fed u and v, this module all three
  channels."""
  arrays, meta = torch_fixture.load('offapexnet')
  assert meta['side'] == 28 and meta['channels_fed'] == 2 and arrays['input'].shape[-1] == 3
  variables = variables_from_torch(torch_fixture.state_dict(meta))
  model, x = OffApexNet(dropout=0.0), jnp.asarray(arrays['input'])
  tolerance = dict(rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(forward(model, variables, x), arrays['eval_logits'], **tolerance)
  logits, updates = forward(model, variables, x, train=True)
  np.testing.assert_allclose(logits, arrays['train_logits'], **tolerance)
  assert not updates.get('batch_stats')


@pytest.mark.parametrize('side, pooled', [(28, 7), (32, 8)])
def test_output_shapes(side, pooled):
  model = OffApexNet()
  variables = init(model, side)
  chex.assert_shape(variables['params']['fc1']['kernel'], (pooled * pooled * 16, 1024))
  x = flow_images(2, side)
  chex.assert_shape(forward(model, variables, x), (2, 3))
  chex.assert_shape(forward(model, variables, x, train=True)[0], (2, 3))
  chex.assert_shape(forward(model, variables, x[..., :2]), (2, 3))  # (u, v) inputs work too


def test_the_strain_channel_is_not_read():
  model = OffApexNet()
  variables = init(model, 28)
  x = flow_images(2, 28)
  other_strain = x.at[..., 2].set(flow_images(2, 28, seed=1)[..., 2])
  chex.assert_trees_all_equal(forward(model, variables, x), forward(model, variables, other_strain))


def test_dropout_only_in_training():
  model = OffApexNet()
  variables = init(model, 28)
  x = flow_images(4, 28)
  a, b = (forward(model, variables, x, train=True, seed=s)[0] for s in (1, 2))
  assert float(jnp.abs(a - b).max()) > 1e-3
  chex.assert_trees_all_equal(a, forward(model, variables, x, train=True, seed=1)[0])
  no_drop = OffApexNet(dropout=0.0)
  chex.assert_trees_all_equal(
    forward(no_drop, variables, x, train=True, seed=1)[0], forward(no_drop, variables, x)
  )


def test_bfloat16_compute_keeps_float32_parameters_and_logits():
  model = OffApexNet(dtype=jnp.bfloat16)
  variables = init(model, 28)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  x = flow_images(2, 28)
  low = forward(model, variables, x)
  assert low.dtype == jnp.float32
  np.testing.assert_allclose(low, forward(OffApexNet(), variables, x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize('shape', [(28, 28, 3), (1, 28, 28, 1), (1, 3, 3, 3)])
def test_bad_input_shape_is_a_clear_error(shape):
  with pytest.raises(ValueError, match='OffApexNet'):
    jax.eval_shape(OffApexNet().init, jax.random.key(0), jnp.zeros(shape))
