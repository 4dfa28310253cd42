"""The Flax HFA-Net computes what the original PyTorch network computes.

Weights: the reference README's recipe, converted with hfa_jax.convert. Outputs:
../shared/reference/hfa_net_parity_seed*.npz made by the original network.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax import HFANet, convert
from tests import reference

pytestmark = reference.requires_reference

FEATURES = [f'msa_{i}' for i in range(1, 5)] + [f'rmt_{i}' for i in range(1, 5)] + ['mlfa']


def fixture_names():
  if not reference.REFERENCE_DIR.is_dir():
    return ['hfa_net_parity_seed0.npz']
  return sorted(p.name for p in reference.REFERENCE_DIR.glob('hfa_net_parity_*.npz'))


@functools.lru_cache(maxsize=None)
def run(name):
  """Eval and train-mode outputs of the Flax model on the fixture's input and weights."""
  arrays, meta = reference.load_fixture(name)
  keys = [(k, tuple(s)) for k, s in meta['keys']] if meta.get('keys') else None
  sd = reference.recipe_state_dict(meta['seed'], keys, meta['classes'])
  variables = convert.from_torch_state_dict(sd)
  model = HFANet(num_classes=meta['classes'])
  x = jnp.asarray(arrays['input_nchw'].transpose(0, 2, 3, 1))

  @jax.jit
  def both(variables, x):
    evaluated = model.apply(variables, x, train=False, return_features=True)
    trained, updates = model.apply(
      variables, x, train=True, return_features=True, mutable=['batch_stats']
    )
    return evaluated, trained, updates['batch_stats']

  out = jax.device_get(both(variables, x))
  return arrays, meta, out


def rel_err(got, want):
  return float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) + 1e-12))


@pytest.mark.parametrize('name', fixture_names())
@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_logits_and_features_match(name, mode):
  arrays, _, (evaluated, trained, _) = run(name)
  logits, features = evaluated if mode == 'eval' else trained
  assert rel_err(logits, arrays[f'{mode}_logits']) < 1e-4
  for key in FEATURES:
    want = arrays[f'{mode}_{key}'].transpose(0, 2, 3, 1)  # NCHW -> NHWC
    assert features[key].shape == want.shape, key
    assert rel_err(features[key], want) < 1e-4, key


@pytest.mark.parametrize('name', fixture_names())
def test_running_statistics_after_one_training_pass(name):
  arrays, meta, (_, _, new_stats) = run(name)
  converted = convert.to_torch_state_dict(
    {'params': {}, 'batch_stats': new_stats}, include_unused=False
  )
  expected = {
    k[len('train_after.') :]: v for k, v in arrays.items() if k.startswith('train_after.')
  }
  # The original's unused `rmt.norm` never runs: its statistics stay as drawn.
  sd = reference.recipe_state_dict(meta['seed'])
  unused = {k for k in expected if k.startswith('rmt.norm.')}
  for key in unused:
    np.testing.assert_array_equal(expected.pop(key), sd[key])
  assert set(converted) == set(expected)
  for key, want in expected.items():
    np.testing.assert_allclose(converted[key], want, rtol=1e-4, atol=1e-5, err_msg=key)


def test_relative_position_buffers_match():
  _, meta = reference.load_fixture('hfa_net_parity_seed0.npz')
  sd = convert.to_torch_state_dict(convert.from_torch_state_dict(reference.recipe_state_dict(0)))
  for key, want in meta['buffers'].items():
    np.testing.assert_allclose(sd[key], np.asarray(want, np.float32), rtol=1e-6, err_msg=key)
