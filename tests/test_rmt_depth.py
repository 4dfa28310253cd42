"""A shallower HFA-Net (`--rmt_depth 1`): the RMT branch's stages 3 and 4 keep one block each;
the paper's configuration (2) stays the default and runs saved before the option still resume
(a model folder of a shallower network: tests/test_width.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import networks, options
from experiments.usage import UsageError
from hfa_jax.loso.config import PAPER_ARCHITECTURE, LosoConfig
from hfa_jax.models.hfanet import HFANet


def _variables(**fields):
  net = HFANet(num_classes=3, **fields)
  x = jnp.zeros((1, 32, 32, 3))
  return jax.eval_shape(lambda: net.init(jax.random.key(0), x, False))


def _count(variables) -> int:
  return sum(x.size for x in jax.tree.leaves(variables['params']))


def test_one_block_in_stages_3_and_4_drops_their_second_blocks():
  paper, shallow = _variables(), _variables(rmt_depth=1)
  blocks = lambda v, stage: sorted(k for k in v['params']['rmt'][stage] if k.startswith('blocks'))
  for stage in ('layer1', 'layer2'):
    assert blocks(paper, stage) == blocks(shallow, stage) == ['blocks_0']
  for stage in ('layer3', 'layer4'):
    assert blocks(paper, stage) == ['blocks_0', 'blocks_1']
    assert blocks(shallow, stage) == ['blocks_0']
    drop = lambda v: {k: x for k, x in v['params']['rmt'][stage].items() if k != 'blocks_1'}
    assert jax.tree.map(np.shape, drop(paper)) == jax.tree.map(np.shape, drop(shallow))
  assert _count(paper) == 24_194_087  # the paper's configuration
  # The second blocks of stages 3 and 4 by hand: they run at the previous stage's channels c
  # (128, 256) with feed-forward widths f (512, 1024), each with
  # retention q, k, v, o (4 c^2 + 4 c), its 5x5 depthwise positional conv (25 c + c), two
  # LayerNorms (4 c), the feed-forward's two layers (2 c f + f + c) and its 3x3 depthwise
  # conv (9 f + f), and the block's 3x3 depthwise positional conv (9 c + c).
  block = lambda c, f: 4 * c * c + 4 * c + 26 * c + 4 * c + 2 * c * f + f + c + 10 * f + 10 * c
  assert _count(paper) - _count(shallow) == block(128, 512) + block(256, 1024) == 1_017_216


def test_other_networks_and_no_blocks_are_refused():
  """(Recorded only where not the paper's: tests/test_width.py, for both options.)"""
  _, namespace = options.parse(['--dataset', 'synthetic', '--model', 'ststnet', '--rmt_depth', '1'])
  s = networks.resolve_dtype(options.settings_from_args(namespace), jax.devices())[0]
  with pytest.raises(UsageError, match='--rmt_depth: ststnet has no rmt_depth'):
    networks.build_model(s, 3)
  with pytest.raises(ValueError, match='at least one block'):
    _variables(rmt_depth=0)


def test_the_papers_architecture_is_every_default():
  """One declaration of the paper's values (PAPER_ARCHITECTURE) against the model's and the
  settings' own defaults."""
  for name, paper in PAPER_ARCHITECTURE.items():
    assert getattr(HFANet(), name) == getattr(LosoConfig(), name) == paper, name
