"""The HTNet baseline (hfa_jax.models.htnet): size and logits against the original PyTorch
network (tests/fixtures/htnet_torch.npz), the region cut, shapes, dropout, dtype."""

import functools
import json
import os
import pathlib

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax.models.htnet import (
  ORIGINAL_FALLBACK,
  REGIONS,
  HTNet,
  cut_regions,
  to_pixels,
  variables_from_torch,
)
from tests.fixtures.make_htnet_fixture import recipe_state_dict

FIXTURE = pathlib.Path(__file__).resolve().parent / 'fixtures' / 'htnet_torch.npz'
SMALL = dict(dim=8, heads=2, depths=(1, 1, 1))  # the published layout, narrow and shallow
SMALL_MODEL = HTNet(**SMALL, dropout=0.2)  # one model, so that the tests share its programs


def key(seed):
  return jax.random.key(seed, impl='rbg')


def count(tree):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))


@functools.partial(jax.jit, static_argnames=('model', 'train', 'with_rng', 'original'))
def forward(model, variables, x, train=False, seed=0, with_rng=True, original=False):
  rngs = {'dropout': key(seed)} if with_rng else None
  method = HTNet.classify if original else None
  return model.apply(variables, x, train=train, rngs=rngs, method=method)


def small_input():
  return jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (4, 28, 28, 3)), jnp.float32)


@pytest.fixture(scope='module')
def small():
  """SMALL_MODEL's variables (PyTorch's initialisation)."""
  return jax.jit(SMALL_MODEL.init)(key(0), small_input())


@pytest.fixture(scope='module')
def fixture():
  with np.load(FIXTURE) as z:
    arrays = {k: z[k] for k in z.files}
  shapes = [tuple(s) for s in json.loads(str(arrays['shapes']))]
  arrays['keys'] = list(zip(arrays['keys'].tolist(), shapes))
  arrays['meta'] = json.loads(str(arrays.pop('meta_json')))
  return arrays


@pytest.fixture(scope='module')
def published(fixture):
  """The published configuration's variables from the fixture's seeded weights."""
  return variables_from_torch(recipe_state_dict(int(fixture['seed']), fixture['keys']))


def test_parameter_count_is_the_originals(fixture):
  variables = jax.eval_shape(HTNet().init, jax.random.key(0), jnp.zeros((1, 28, 28, 3)))
  params = variables['params']
  assert set(variables) == {'params'}  # no BatchNorm, no other state
  # Per block at width C, heads n, head width d = C // n: LayerNorms 4C; to_qkv C * 3nd;
  # to_out nd * C + C; feed-forward 4C^2 + 4C + 4C^2 + C.
  block = lambda c, n: 4 * c + c * 3 * (c // n * n) + (c // n * n) * c + c + 8 * c * c + 5 * c
  assert count(params['transformer_0']['block_0']) == block(256, 3) == 787_968
  assert count(params['transformer_2']['block_0']) == block(1024, 12) == 12_576_768
  assert count(params['to_patch_embedding']) == 7 * 7 * 3 * 256 + 256
  assert count(params['aggregate_1']) == 9 * 512 * 1024 + 1024 + 2 * 1024
  assert count(params) == 139_582_982 == fixture['meta']['parameters']


def test_variables_from_torch_fill_every_variable(fixture, published):
  variables = jax.eval_shape(HTNet().init, jax.random.key(0), jnp.zeros((1, 28, 28, 3)))
  chex.assert_trees_all_equal_shapes(published, variables)
  assert all(p.dtype == np.float32 for p in jax.tree.leaves(published))
  with pytest.raises(ValueError, match='unknown state-dict key'):
    variables_from_torch({'layers.0.0.layers.0.0.fn.bogus': np.zeros(3)})


def test_logits_equal_the_originals(fixture, published):
  """The original's eval logits for the same weights on its own input (the tiled regions,
  BGR 0..255): `classify` takes it in NHWC."""
  x = jnp.asarray(fixture['input'].transpose(0, 2, 3, 1))
  got = forward(HTNet(), published, x, original=True, with_rng=False)
  np.testing.assert_allclose(np.asarray(got), fixture['logits'], rtol=1e-4, atol=1e-5)
  # Without dropout, training mode computes the same (no BatchNorm).
  got_train = forward(HTNet(), published, x, train=True, original=True, with_rng=False)
  np.testing.assert_allclose(np.asarray(got_train), np.asarray(got), rtol=1e-6, atol=1e-6)


def test_output_shape_at_the_native_side(published):
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 28, 28, 3)), jnp.float32)
  logits = forward(HTNet(), published, x, with_rng=False)
  chex.assert_shape(logits, (2, 3))
  chex.assert_tree_all_finite(logits)
  assert logits.dtype == jnp.float32


def numbered(side):
  """(1, side, side, 3) image whose pixel (r, c) holds r * 1000 + c * 10 + channel."""
  r, c, ch = np.meshgrid(np.arange(side), np.arange(side), np.arange(3), indexing='ij')
  return (r * 1000 + c * 10 + ch)[None].astype(np.float32)


@pytest.mark.parametrize('side', [28, 56])
def test_region_cut_tiles_each_window_into_its_quadrant(side):
  img = numbered(side)
  tiles = np.asarray(cut_regions(jnp.asarray(img)))
  assert tiles.shape == img.shape
  k, h = side // 28, side // 2
  quadrants = [(0, 0), (0, h), (h, 0), (h, h)]  # top-left, top-right, bottom-left, bottom-right
  for (r, c), (qr, qc) in zip(REGIONS, quadrants):
    want = img[0, k * (r - 7) : k * (r + 7), k * (c - 7) : k * (c + 7)]
    np.testing.assert_array_equal(tiles[0, qr : qr + h, qc : qc + h], want)
  # At 28 px, by hand: the top-right tile is the lower-left window, rows 12..25, cols 1..14;
  # the bottom-left tile the upper-right window, rows 0..13, cols 14..27.
  if side == 28:
    assert tiles[0, 0, 14, 0] == 12 * 1000 + 1 * 10 and tiles[0, 13, 27, 0] == 25 * 1000 + 14 * 10
    assert tiles[0, 14, 0, 0] == 14 * 10 and tiles[0, 27, 13, 0] == 13 * 1000 + 27 * 10
    assert tiles[0, 7, 7, 0] == 7 * 1000 + 7 * 10  # each centre lands at its tile's (7, 7)


def test_original_fallback_is_the_scripts_transposed_slice():
  """The script's fallback landmarks (x, y), clamped to 7..21 and truncated, slice rows by x
  and columns by y; tiled [[0, 1], [3, 4]]: that is cut_regions at ORIGINAL_FALLBACK."""
  landmarks = [(9.528073, 11.062551), (21.396168, 10.919773), (15.380184, 17.380562)]
  landmarks += [(10.255435, 22.121233), (20.583706, 22.25584)]
  img = numbered(28)[0]
  crops = []
  for x, y in landmarks:
    a, b = (int(min(max(v, 7), 21)) for v in (x, y))
    crops.append(img[a - 7 : a + 7, b - 7 : b + 7])
  want = np.concatenate(
    [np.concatenate([crops[0], crops[1]], 1), np.concatenate([crops[3], crops[4]], 1)], 0
  )
  got = np.asarray(cut_regions(jnp.asarray(img[None]), ORIGINAL_FALLBACK))[0]
  np.testing.assert_array_equal(got, want)


def test_pixels_are_the_pngs_values_in_bgr_order(small):
  png = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 3)).astype(np.float32)
  x = jnp.asarray(png / 255 * 2 - 1)  # the project's flow images (model_input.flow_images_signed)
  np.testing.assert_allclose(np.asarray(to_pixels(x)), png[..., ::-1], atol=1e-4)
  direct = forward(SMALL_MODEL, small, x)
  by_hand = forward(SMALL_MODEL, small, to_pixels(cut_regions(x)), original=True)
  np.testing.assert_allclose(np.asarray(direct), np.asarray(by_hand), rtol=1e-6)


@pytest.mark.parametrize('side', [56])
def test_small_configuration_at_a_larger_side(side):
  model = HTNet(**SMALL)
  x = jnp.zeros((2, side, side, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  # 56 px: 8x8 patches, blocks of 2x2 positions: a position embedding of 4 per level.
  chex.assert_shape(variables['params']['transformer_0']['pos_emb'], (4,))
  assert jax.eval_shape(model.apply, variables, x).shape == (2, 3)


@pytest.mark.parametrize('shape', [(2, 32, 32, 3), (28, 28, 3), (2, 28, 28, 2)])
def test_bad_input_shape_is_a_clear_error(shape):
  with pytest.raises(ValueError, match='HTNet'):
    jax.eval_shape(HTNet(**SMALL).init, jax.random.key(0), jnp.zeros(shape))


def test_dropout_only_in_training_and_from_the_dropout_rng(small):
  x = small_input()
  train = lambda seed: forward(SMALL_MODEL, small, x, train=True, seed=seed)
  a, a_again, b = train(1), train(1), train(2)
  chex.assert_trees_all_equal(a, a_again)
  assert float(jnp.abs(a - b).max()) > 1e-4
  evaluated = forward(SMALL_MODEL, small, x, with_rng=False)
  chex.assert_trees_all_equal(evaluated, forward(SMALL_MODEL, small, x, seed=3))
  assert float(jnp.abs(a - evaluated).max()) > 1e-4
  with pytest.raises(flax.errors.InvalidRngError):
    jax.eval_shape(lambda v, x: SMALL_MODEL.apply(v, x, train=True), small, x)


def test_initialisation_is_pytorchs_default(small):
  params = small['params']
  for path, fan_in in [
    (('to_patch_embedding', 'kernel'), 147),
    (('transformer_1', 'block_0', 'ff', 'fc1', 'kernel'), 16),
    (('aggregate_0', 'conv', 'kernel'), 9 * 8),
    (('head', 'kernel'), 32),
  ]:
    w = np.asarray(functools.reduce(lambda t, k: t[k], path, params))
    assert np.abs(w).max() <= 1 / np.sqrt(fan_in), path
    assert np.abs(w).max() > 0.5 / np.sqrt(fan_in), path  # uniform over the range
  assert np.all(np.asarray(params['head_norm']['scale']) == 1)
  assert not np.any(np.asarray(params['head']['bias']))
  pos = np.concatenate([params[f'transformer_{i}']['pos_emb'] for i in range(3)])
  assert pos.shape == (3,) and np.all(pos != 0)  # N(0, 1) draws, one per level at 28 px


def test_bfloat16_compute_keeps_float32_logits_and_parameters(small):
  x = small_input()
  low = forward(HTNet(**SMALL, dropout=0.2, dtype=jnp.bfloat16), small, x)
  assert low.dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(small))
  np.testing.assert_allclose(low, forward(SMALL_MODEL, small, x), rtol=0.1, atol=0.1)


def test_region_measurement_on_a_hand_made_strain_map():
  """experiments/htnet_regions.py: the window centre nearest each quadrant's strain centroid."""
  from experiments.htnet_regions import centres

  strain = np.zeros((28, 28))
  for r, c in [(6, 6), (18, 8), (6, 20), (18.5, 19)]:  # one peak a quadrant (18.5: two rows)
    strain[int(r), c] = 1.0
    strain[int(np.ceil(r)), c] = 1.0
  got = {k: v[2:] for k, v in centres(strain).items()}
  # Window rows c-7..c+6 have their middle at c - 0.5: c = floor(centroid) + 1.
  assert got == {
    'upper-left': (7, 7),
    'lower-left': (19, 9),
    'upper-right': (7, 21),
    'lower-right': (19, 20),
  }


REAL = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'real'
REAL = pathlib.Path(os.environ.get('HFA_JAX_REAL', REAL)) / 'megc2019_flow_images_casme2_smic'


@pytest.mark.skipif(not REAL.is_dir(), reason=f'the real flow images are not here ({REAL})')
def test_regions_are_those_measured_on_the_development_data(tmp_path, capsys):
  from datasets import build
  from experiments import htnet_regions

  args = ['megc2019_flow_images', '--manual_dir', str(REAL), '--data_dir', str(tmp_path)]
  assert build.main(args) == 0
  capsys.readouterr()
  htnet_regions.main(['--data_dir', str(tmp_path)])
  assert f'REGIONS = {REGIONS}' in capsys.readouterr().out
