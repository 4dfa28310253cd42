"""SSSNet (hfa_jax.models.sssnet): its size, shapes, BatchNorm and dropout modes, and its
numbers against the original PyTorch class (MEB) through tests/fixtures/sssnet_torch.npz."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax.models.sssnet import SSSNet, linear_kernel_from_torch, variables_from_torch
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
  """64 px, 3 classes: 1,349,251, the original's count (the fixture's state dict, less its
  BatchNorm running statistics); the paper's figure was not available."""
  variables = jax.eval_shape(SSSNet().init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
  params = variables['params']
  # conv1 5*5*3*32 + 32; conv2 3*3*32*64 + 64; 64 -> 60 -> 20 -> 18 -> 9: fc1 9*9*64*256 + 256.
  expected = dict(conv1=2_432, bn1=64, conv2=18_496, bn2=128, fc1=1_327_360, fc=771)
  assert {name: count(params[name]) for name in expected} == expected
  assert count(params) == 1_349_251
  assert count(variables['batch_stats']) == 2 * (32 + 64)
  if torch_fixture.path('sssnet').is_file():
    _, meta = torch_fixture.load('sssnet')
    trainable = [
      s
      for k, s in meta['keys']
      if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))
    ]
    assert sum(int(np.prod(s)) for s in trainable) == 1_349_251


@torch_fixture.requires('sssnet')
def test_matches_the_original_pytorch_class():
  """The original's weights (drawn from the fixture's seed) give its logits in eval and train
  mode (dropout 0) and its BatchNorm running statistics after the train pass."""
  arrays, meta = torch_fixture.load('sssnet')
  assert meta['side'] == 64 and arrays['input'].shape == (2, 64, 64, 3)
  variables = variables_from_torch(torch_fixture.state_dict(meta))
  model, x = SSSNet(dropout=0.0), jnp.asarray(arrays['input'])
  tolerance = dict(rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(forward(model, variables, x), arrays['eval_logits'], **tolerance)
  logits, updates = forward(model, variables, x, train=True)
  np.testing.assert_allclose(logits, arrays['train_logits'], **tolerance)
  for bn in ('bn1', 'bn2'):
    for ours, theirs in (('mean', 'running_mean'), ('var', 'running_var')):
      np.testing.assert_allclose(
        updates['batch_stats'][bn][ours], arrays[f'after.{bn}.{theirs}'], rtol=1e-5, atol=1e-6
      )


@pytest.mark.parametrize('side, pooled', [(28, 3), (64, 9)])
def test_output_shapes(side, pooled):
  """28 px (the flow images' native side): 24 -> 8 -> 6 -> 3; 64 px (MEB's): 9x9 maps."""
  model = SSSNet()
  variables = init(model, side)
  chex.assert_shape(variables['params']['fc1']['kernel'], (pooled * pooled * 64, 256))
  x = flow_images(2, side)
  chex.assert_shape(forward(model, variables, x), (2, 3))
  logits, updates = forward(model, variables, x, train=True)
  chex.assert_shape(logits, (2, 3))
  chex.assert_trees_all_equal_shapes(updates['batch_stats'], variables['batch_stats'])
  chex.assert_tree_all_finite((logits, updates))


def test_dropout_only_in_training_and_whole_channels_after_the_convolutions():
  model = SSSNet()
  variables = init(model, 28)
  x = flow_images(4, 28)
  a, b = (forward(model, variables, x, train=True, seed=s)[0] for s in (1, 2))
  assert float(jnp.abs(a - b).max()) > 1e-3
  chex.assert_trees_all_equal(a, forward(model, variables, x, train=True, seed=1)[0])
  # Evaluation needs no rng; without dropout, training mode ignores the rng.
  chex.assert_tree_all_finite(forward(model, variables, x))
  no_drop = SSSNet(dropout=0.0)
  chex.assert_trees_all_equal(
    forward(no_drop, variables, x, train=True, seed=1)[0],
    forward(no_drop, variables, x, train=True, seed=2)[0],
  )
  # Dropout2d: each (sample, channel) map after bn1 is kept whole (scaled by 2) or zeroed.
  _, state = model.apply(
    variables,
    x,
    train=True,
    mutable=['batch_stats', 'intermediates'],
    rngs={'dropout': key(3)},
    capture_intermediates=True,
  )
  before = state['intermediates']['bn1']['__call__'][0]  # (4, 8, 8, 32)
  after = state['intermediates']['Dropout_0']['__call__'][0]
  kept = jnp.all(after == 2 * before, axis=(1, 2))
  dropped = jnp.all(after == 0, axis=(1, 2))
  assert bool(jnp.all(kept | dropped)) and 0.3 < float(dropped.mean()) < 0.7


def test_linear_kernel_reads_the_nhwc_flatten_as_the_original_reads_nchw():
  rng = np.random.default_rng(0)
  maps, weight = rng.normal(size=(2, 5, 3, 3)), rng.normal(size=(4, 45))  # (B, C, H, W)
  want = maps.reshape(2, -1) @ weight.T
  got = maps.transpose(0, 2, 3, 1).reshape(2, -1) @ linear_kernel_from_torch(weight, 5)
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bfloat16_compute_keeps_float32_parameters_statistics_and_logits():
  model = SSSNet(dtype=jnp.bfloat16)
  variables = init(model, 28)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  x = flow_images(2, 28)
  low = forward(model, variables, x)
  assert low.dtype == jnp.float32
  np.testing.assert_allclose(low, forward(SSSNet(), variables, x), rtol=0.05, atol=0.05)
  _, updates = forward(model, variables, x, train=True)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(updates))


@pytest.mark.parametrize('shape', [(28, 28, 3), (1, 15, 15, 3)])
def test_bad_input_shape_is_a_clear_error(shape):
  with pytest.raises(ValueError, match='SSSNet'):
    jax.eval_shape(SSSNet().init, jax.random.key(0), jnp.zeros(shape))
