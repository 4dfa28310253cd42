"""hfa_jax.convert: errors that name the key, unused keys dropped, round trips."""

import jax
import numpy as np
import pytest

from hfa_jax import convert
from tests import reference


def random_state_dict(num_classes=3, seed=0):
  """A full original state dict (every key, unused ones too) with random values."""
  shapes = convert.variable_shapes(num_classes)
  rng = np.random.default_rng(seed)
  flax_vars = jax.tree.map(lambda s: rng.normal(size=s.shape).astype(np.float32), shapes)
  return convert.to_torch_state_dict(flax_vars)


def test_round_trip_flax_torch_flax():
  sd = random_state_dict()
  variables = convert.from_torch_state_dict(sd)
  back = convert.to_torch_state_dict(variables)
  assert set(back) == set(sd)
  for key in sd:
    np.testing.assert_array_equal(back[key], sd[key], err_msg=key)
  again = convert.from_torch_state_dict(back)
  jax.tree.map(np.testing.assert_array_equal, again, variables)


def test_layouts_follow_pytorch():
  sd = random_state_dict()
  variables = convert.from_torch_state_dict(sd)
  conv = variables['params']['msa']['layer2_0']['conv1']['kernel']
  np.testing.assert_array_equal(conv, sd['msa.layer2.0.conv1.weight'].transpose(2, 3, 1, 0))
  linear = variables['params']['rmt']['layer1']['blocks_0']['retention']['q_proj']['kernel']
  np.testing.assert_array_equal(linear, sd['rmt.layer1.blocks.0.retention.q_proj.weight'].T)
  np.testing.assert_array_equal(
    variables['batch_stats']['msa']['bn1']['var'], sd['msa.bn1.running_var']
  )
  depthwise = variables['params']['mlfa']['dsconv']['depthwise_0']['kernel']
  assert depthwise.shape == (1, 1, 1, 1024)


def test_num_classes_inferred_and_checked():
  sd = random_state_dict(num_classes=5)
  variables = convert.from_torch_state_dict(sd)
  assert variables['params']['head']['kernel'].shape == (512, 5)
  with pytest.raises(
    convert.ConversionError, match=r"wrong shape for 'head\.(weight|bias)'.*\(5.*\(3"
  ):
    convert.from_torch_state_dict(sd, num_classes=3)


def test_missing_key_is_named():
  sd = random_state_dict()
  del sd['rmt.layer3.blocks.1.ffn.dwconv.conv.weight']
  with pytest.raises(
    convert.ConversionError, match=r"missing key 'rmt.layer3.blocks.1.ffn.dwconv.conv.weight'"
  ):
    convert.from_torch_state_dict(sd)


def test_wrong_shape_names_key_and_both_shapes():
  sd = random_state_dict()
  sd['mlfa.weight_levels.weight'] = np.zeros((4, 16, 1, 1), np.float32)
  with pytest.raises(convert.ConversionError) as err:
    convert.from_torch_state_dict(sd)
  message = str(err.value)
  assert "'mlfa.weight_levels.weight'" in message
  assert '(4, 16, 1, 1)' in message and '(4, 32, 1, 1)' in message


def test_unknown_key_is_an_error():
  sd = random_state_dict()
  sd['msa.layer5.0.conv1.weight'] = np.zeros((3, 3), np.float32)
  with pytest.raises(convert.ConversionError, match='msa.layer5.0.conv1.weight'):
    convert.from_torch_state_dict(sd)


def test_unused_keys_buffers_and_dataparallel_prefix_are_accepted():
  sd = random_state_dict()
  unused = [
    k
    for k in sd
    if k.startswith(('rmt.proj.', 'rmt.norm.', 'rmt.head.', 'msa.fc_1.', 'aaff.cov.'))
    or k.endswith(('num_batches_tracked', 'angle', 'decay'))
  ]
  assert 'aaff.cov.weight' in unused and 'rmt.layer2.Relpos.angle' in unused
  without = {k: v for k, v in sd.items() if k not in unused}
  a = convert.from_torch_state_dict(without)
  b = convert.from_torch_state_dict({'module.' + k: v for k, v in sd.items()})
  jax.tree.map(np.testing.assert_array_equal, a, b)


@reference.requires_reference
def test_keys_and_shapes_match_the_original():
  """to_torch_state_dict produces exactly the original's keys and shapes."""
  sd = random_state_dict()
  expected = dict(reference.state_dict_keys())
  assert list(sorted(sd)) == list(sorted(expected))
  for key, shape in expected.items():
    assert sd[key].shape == shape, key


def test_npz_input(tmp_path):
  sd = random_state_dict()
  np.savez(tmp_path / 'weights.npz', **sd)
  with np.load(tmp_path / 'weights.npz') as z:
    variables = convert.from_torch_state_dict(z)
  np.testing.assert_array_equal(variables['params']['head']['bias'], sd['head.bias'])
