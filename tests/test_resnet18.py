"""ResNet18 (hfa_jax.models.resnet18): its size, shapes, BatchNorm modes and its numbers
against torchvision's resnet18 through tests/fixtures/resnet18_torch.npz."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax.models.resnet18 import ResNet18, variables_from_torch
from tests.fixtures import torch_fixture

count = lambda tree: sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


@functools.partial(jax.jit, static_argnames=('model', 'train'))
def forward(model, variables, x, train=False):
  """Logits (eval) or (logits, batch_stats updates) (train); no rng: ResNet has no dropout."""
  if not train:
    return model.apply(variables, x)
  return model.apply(variables, x, train=True, mutable=['batch_stats'])


def shapes(side, model=ResNet18()):
  return jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((2, side, side, 3)))


def test_parameter_count():
  """3 classes: 11,178,051 at any side, torchvision's resnet18(num_classes=3) (the fixture's
  state dict, less BatchNorm running statistics); 11,689,512 with 1000 classes."""
  variables = shapes(64)
  params = variables['params']
  assert count(params) == 11_178_051
  assert count(params['fc']) == 512 * 3 + 3
  assert count(params) - count(params['fc']) + 512 * 1000 + 1000 == 11_689_512
  assert count(variables['batch_stats']) == 2 * 4_800  # mean and var of 4,800 BN channels
  assert count(shapes(28)['params']) == 11_178_051
  if torch_fixture.path('resnet18').is_file():
    _, meta = torch_fixture.load('resnet18')
    trainable = [
      s
      for k, s in meta['keys']
      if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked'))
    ]
    assert sum(int(np.prod(s)) for s in trainable) == 11_178_051


@torch_fixture.requires('resnet18')
def test_matches_torchvisions_resnet18():
  """torchvision's weights layout (drawn from the fixture's seed) gives its logits in eval and
  train mode and its BatchNorm running statistics after the train pass. Training mode
  normalises layer4 by the statistics of 8 values a channel (2 samples, 2x2): float32
  rounding grows there, so its logits are checked to atol 1e-5."""
  arrays, meta = torch_fixture.load('resnet18')
  assert meta['side'] == 64
  variables = variables_from_torch(torch_fixture.state_dict(meta))
  chex.assert_trees_all_equal_shapes(variables, shapes(64))
  model, x = ResNet18(), jnp.asarray(arrays['input'])
  np.testing.assert_allclose(
    forward(model, variables, x), arrays['eval_logits'], rtol=1e-5, atol=1e-6
  )
  logits, updates = forward(model, variables, x, train=True)
  np.testing.assert_allclose(logits, arrays['train_logits'], rtol=1e-5, atol=1e-5)
  theirs = variables_from_torch(
    {k[len('after.') :]: v for k, v in arrays.items() if k.startswith('after.')}
  )['batch_stats']
  chex.assert_trees_all_close(updates['batch_stats'], theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('side, grid', [(28, 1), (64, 2)])
def test_output_shapes(side, grid):
  """28 px: 14, 7 (stem), 7, 4, 2, 1 (layers 1-4); 64 px: 32, 16, 16, 8, 4, 2."""
  model = ResNet18()
  x = jnp.zeros((2, side, side, 3))
  variables = shapes(side)
  _, state = jax.eval_shape(
    lambda v, x: model.apply(v, x, capture_intermediates=True, mutable=['intermediates']),
    variables,
    x,
  )
  chex.assert_shape(state['intermediates']['layer4_1']['__call__'][0], (2, grid, grid, 512))
  chex.assert_shape(jax.eval_shape(lambda v, x: forward(model, v, x), variables, x), (2, 3))
  logits, updates = jax.eval_shape(lambda v, x: forward(model, v, x, train=True), variables, x)
  chex.assert_shape(logits, (2, 3))
  chex.assert_trees_all_equal_shapes(updates['batch_stats'], variables['batch_stats'])


def test_no_dropout_training_needs_no_rng_and_moves_the_statistics():
  """At 64 px and batch 2, the fixture test's shapes: its compiled programs serve here."""
  model = ResNet18()
  variables = jax.jit(model.init)(jax.random.key(0, impl='rbg'), jnp.zeros((2, 64, 64, 3)))
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)), jnp.float32)
  logits, updates = forward(model, variables, x, train=True)  # no 'dropout' rng
  chex.assert_tree_all_finite((logits, updates))
  before, after = variables['batch_stats']['bn1'], updates['batch_stats']['bn1']
  assert bool(jnp.all(before['mean'] != after['mean']))
  assert forward(model, variables, x).shape == (2, 3)


def test_bfloat16_compute_keeps_float32_parameters_statistics_and_logits():
  model = ResNet18(dtype=jnp.bfloat16)
  variables = shapes(28, model)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  x = jnp.zeros((2, 28, 28, 3))
  logits, updates = jax.eval_shape(lambda v, x: forward(model, v, x, train=True), variables, x)
  assert logits.dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(updates))


def test_bad_input_shape_is_a_clear_error():
  with pytest.raises(ValueError, match='ResNet18'):
    jax.eval_shape(ResNet18().init, jax.random.key(0), jnp.zeros((28, 28, 3)))
