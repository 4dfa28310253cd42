"""HFA-Net's width multiplier (`--width`): every layer's channels scale, the paper's
configuration is width 1, a model folder of a narrower network builds it again."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import networks, options
from experiments.usage import UsageError
from hfa_jax import trained
from hfa_jax.loso import run
from hfa_jax.loso.config import PAPER_ARCHITECTURE
from hfa_jax.models.hfanet import HFANet
from tests.quick_compile import QUICK_COMPILE


def _shapes(width):
  net = HFANet(num_classes=3, width=width)
  x = jnp.zeros((1, 32, 32, 3))
  variables = jax.eval_shape(lambda: net.init(jax.random.key(0), x, False))
  out = jax.eval_shape(lambda v: net.apply(v, x, return_features=True), variables)
  return variables, out


def test_half_width_halves_every_level_and_keeps_the_layers():
  full, (logits, features) = _shapes(1.0)
  half, (half_logits, half_features) = _shapes(0.5)
  assert jax.tree.structure(full) == jax.tree.structure(half)  # the same layers, narrower
  chex.assert_shape(half_logits, (1, 3))
  for name, f in features.items():
    assert half_features[name].shape[-1] * 2 == f.shape[-1], name
  n = lambda v: sum(x.size for x in jax.tree.leaves(v['params']))
  assert (
    n(full) == 24_194_087
  )  # the paper's configuration (tests/test_model_parity.py: its numbers)
  assert n(full) / 4.2 < n(half) < n(full) / 3.8  # widths halve: weights about a quarter


def test_widths_emas_groups_cannot_split_are_refused():
  with pytest.raises(ValueError, match='multiple of 32'):
    _shapes(0.25)
  argv = ['--dataset', 'synthetic', '--width', '0.25', '--out', '/tmp/unused']
  _, namespace = options.parse(argv)
  s = options.settings_from_args(namespace)
  s = networks.resolve_dtype(s, jax.devices())[0]
  with pytest.raises(UsageError, match='--width 0.25'):
    networks.build_model(s, 3)


@pytest.mark.parametrize('name, other', [('width', 0.5), ('rmt_depth', 1)])
def test_the_architecture_is_recorded_only_where_it_is_not_the_papers(name, other):
  """`--width` and `--rmt_depth` (tests/test_rmt_depth.py) alike."""
  for value, want in ((PAPER_ARCHITECTURE[name], {}), (other, {name: other})):
    _, namespace = options.parse(['--dataset', 'synthetic', f'--{name}', str(value)])
    s = options.settings_from_args(namespace)
    assert networks.architecture(s.training) == want
    assert (name in s.training.identity()) == bool(want)  # old runs' identity unchanged


def test_a_narrow_model_folder_loads_as_saved(tmp_path):
  """A narrower network, here also shallower (`--rmt_depth 1`, tests/test_rmt_depth.py): the
  card's model options build it again."""
  net = HFANet(num_classes=3, width=0.5, rmt_depth=1)
  x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
  variables = jax.jit(net.init, compiler_options=QUICK_COMPILE)(jax.random.key(1), x[:1])
  card = dict(model='hfanet', model_options={'width': 0.5, 'rmt_depth': 1}, num_classes=3)
  card |= dict(class_names=['a', 'b', 'c'], input=dict(side=32))
  folder = trained.save_model(tmp_path / 'm', variables, card)
  model, loaded, saved = trained.load_model(folder)
  assert (model.width, model.rmt_depth) == (0.5, 1)
  assert model == net  # every field: the same network
  assert 'pytorch' not in saved  # the original cannot hold it
  forward = jax.jit(net.apply, compiler_options=QUICK_COMPILE)  # one compile for both
  np.testing.assert_array_equal(forward(loaded, x), forward(variables, x))


def test_runs_saved_before_the_width_existed_still_resume():
  """A run's identity holds the model's repr: at width 1 it is the repr runs kept before."""
  before = (
    'HFANet(\n    # attributes\n    num_classes = 3\n    drop_path = 0.0\n'
    '    head_dropout = 0.0\n    dtype = None\n)'
  )
  assert run.model_identity(HFANet(num_classes=3)) == before
  assert 'width = 0.5' in run.model_identity(HFANet(num_classes=3, width=0.5))
