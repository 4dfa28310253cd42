"""The training levers of the quality work: flow-aware rotation/scaling, per-image flow
normalisation, stochastic depth and head dropout (each off by default)."""

import dataclasses

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax import predict
from hfa_jax import augment as augment_lib
from hfa_jax import evaluation
from hfa_jax.loso import LosoConfig, run_loso
from hfa_jax.models.hfanet import HFANet
from hfa_jax.models.layers import Dropout, DropPath, keep_mask
from tests.tiny import TinyNet, toy_data

warp = jax.jit(augment_lib.warp, static_argnums=(2, 3))


def field(side: int, fn) -> np.ndarray:
  """A (1, side, side, 3) flow image whose (u, v) at pixel offset (x, y) from the centre
  (x right, y down) is fn(x, y); strain 0.5 everywhere."""
  rows, cols = np.meshgrid(
    np.arange(side) - (side - 1) / 2, np.arange(side) - (side - 1) / 2, indexing='ij'
  )
  u, v = fn(cols, rows)
  return np.stack([u, v, np.full_like(u, 0.5)], -1)[None].astype(np.float32)


def interior(x, margin=6):
  return x[:, margin:-margin, margin:-margin]


def test_no_rotation_no_scaling_is_the_identity():
  x = np.random.default_rng(0).normal(size=(4, 12, 12, 3)).astype(np.float32)
  np.testing.assert_allclose(warp(jax.random.PRNGKey(0), x, 0.0, 0.0), x, atol=1e-5)


def test_rotation_turns_the_vectors_with_the_image():
  # A radial field (u, v) = (x, y) is the same after a rotation R(a) of the image only if
  # the vectors turn by R(a) too: unturned they would read R(-a) p, turned the wrong way
  # R(-2a) p. A swirl (-y, x) likewise. Both fields' median is (0, 0): turns about 0.
  for fn in (lambda x, y: (x, y), lambda x, y: (-y, x)):
    img = field(33, fn)
    out = np.asarray(warp(jax.random.PRNGKey(1), np.repeat(img, 8, 0), 30.0, 0.0))
    np.testing.assert_allclose(
      interior(out)[..., :2], interior(np.repeat(img, 8, 0))[..., :2], atol=1e-3
    )
  # a moving patch on a still background: its (1, 0) vectors keep their length and turn
  # by the drawn angles (within +-30 degrees)
  img = field(33, lambda x, y: (((np.abs(x) <= 4) & (np.abs(y) <= 4)) * 1.0, 0 * y))
  out = np.asarray(warp(jax.random.PRNGKey(2), np.repeat(img, 8, 0), 30.0, 0.0))
  u, v = out[:, 16, 16, 0], out[:, 16, 16, 1]
  np.testing.assert_allclose(np.hypot(u, v), 1.0, atol=1e-4)
  angles = np.degrees(np.arctan2(v, u))
  assert np.all(np.abs(angles) <= 30 + 1e-3) and np.ptp(angles) > 5


def test_scaling_scales_the_vectors_and_keeps_strain():
  img = field(33, lambda x, y: (x, y))  # (x, y) -> s (x / s, y / s): unchanged
  out = np.asarray(warp(jax.random.PRNGKey(3), np.repeat(img, 8, 0), 0.0, 0.2))
  np.testing.assert_allclose(interior(out), interior(np.repeat(img, 8, 0)), atol=1e-3)
  const = field(33, lambda x, y: (np.full_like(x, 0.3), np.full_like(x, -0.2)))
  const[0, 0, 0, :2] = 0  # the median stays (0.3, -0.2); vectors scale about it: unchanged
  out = np.asarray(warp(jax.random.PRNGKey(3), np.repeat(const, 8, 0), 0.0, 0.2))
  np.testing.assert_allclose(interior(out), interior(np.repeat(const, 8, 0)), atol=1e-5)


def test_warp_about_the_median_of_an_offset_field():
  # The flow images' per-image scaling puts "no motion" at some value m, not 0: a rotation
  # must turn (u, v) - m, so a radial field around m stays the same.
  m = np.array([0.4, -0.3], np.float32)
  img = field(33, lambda x, y: (x + m[0], y + m[1]))
  out = np.asarray(warp(jax.random.PRNGKey(4), np.repeat(img, 8, 0), 25.0, 0.1))
  np.testing.assert_allclose(
    interior(out)[..., :2], interior(np.repeat(img, 8, 0))[..., :2], atol=2e-3
  )


def test_normalise_flow_centres_and_scales_u_v_only():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(5, 8, 8, 3)).astype(np.float32)
  y = np.asarray(evaluation.normalise_flow(jnp.asarray(x)))
  chex.assert_shape(y, x.shape)
  np.testing.assert_allclose(np.median(y[..., :2].reshape(5, -1, 2), axis=1), 0, atol=1e-5)
  np.testing.assert_allclose(np.sqrt((y[..., :2] ** 2).sum(-1).mean((1, 2)) / 2), 1, rtol=1e-5)
  np.testing.assert_array_equal(y[..., 2], x[..., 2])
  # one image's common offset and scale of u and v (the per-image min-max scaling) is gone
  affine = x.copy()
  affine[..., :2] = 3.0 * x[..., :2] + np.array([0.5, -0.2], np.float32)
  np.testing.assert_allclose(
    evaluation.normalise_flow(jnp.asarray(affine))[..., :2], y[..., :2], atol=1e-5
  )
  # centred only: the medians move to 0, the scale stays
  centred = np.asarray(evaluation.normalise_flow(jnp.asarray(affine), scale=False))
  medians = np.median(x[..., :2], axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(centred[..., :2], 3.0 * (x[..., :2] - medians), atol=1e-5)


def test_drop_path_drops_whole_samples_in_training_only():
  x = jnp.ones((64, 4, 4, 2))
  layer = DropPath(0.25)
  np.testing.assert_array_equal(layer.apply({}, x, False), x)
  y = np.asarray(layer.apply({}, x, True, rngs={'dropout': jax.random.PRNGKey(0)}))
  per_sample = y.reshape(64, -1)
  assert np.all((per_sample == 0).all(1) | np.isclose(per_sample, 1 / 0.75).all(1))
  assert 0 < (per_sample == 0).all(1).sum() < 64


@pytest.mark.parametrize('rate', [0.5, 0.25, 0.875, 1 / 256, 0.3])
def test_keep_mask_keeps_each_entry_with_probability_one_minus_rate(rate):
  # 0.3 is no multiple of 2^-8: jax.random.bernoulli; the others read 1, 2, 3 (of 4) or 8 bits
  n = 400_000
  m = np.asarray(keep_mask(jax.random.key(0), rate, (n // 100, 100)))
  assert m.shape == (n // 100, 100) and m.dtype == bool
  sd = np.sqrt(rate * (1 - rate) / n)
  assert abs(m.mean() - (1 - rate)) < 5 * sd
  # neighbours (fields of one random word) independent: P(both kept) = (1 - rate)^2
  both = (m.reshape(-1)[:-1] & m.reshape(-1)[1:]).mean()
  assert abs(both - (1 - rate) ** 2) < 5 * np.sqrt((1 - rate) ** 2 / n)
  # every field position of a word used: no column of the 32 entries a word gives stuck
  columns = m.reshape(-1)[: n - n % 32].reshape(-1, 32).mean(0)
  assert np.all(np.abs(columns - (1 - rate)) < 6 * np.sqrt(rate * (1 - rate) / (n // 32)))


def test_keep_mask_of_a_size_no_word_divides_and_per_key():
  a = keep_mask(jax.random.key(1), 0.5, (3, 7))
  chex.assert_shape(a, (3, 7))
  masks = jax.vmap(lambda k: keep_mask(k, 0.5, (64,)))(jax.random.split(jax.random.key(2), 3))
  assert not np.array_equal(masks[0], masks[1])
  chex.assert_trees_all_equal(
    masks[2], keep_mask(jax.random.split(jax.random.key(2), 3)[2], 0.5, (64,))
  )


def test_dropout_zeroes_or_scales_in_training_only():
  x = jnp.arange(1.0, 4097.0).reshape(64, 64)
  layer = Dropout(0.5)
  chex.assert_trees_all_equal(layer.apply({}, x, False), x)
  y = np.asarray(layer.apply({}, x, True, rngs={'dropout': jax.random.key(0)}))
  kept = y != 0
  np.testing.assert_array_equal(y[kept], 2 * np.asarray(x)[kept])
  assert 0.45 < kept.mean() < 0.55
  chex.assert_trees_all_equal(Dropout(1.0).apply({}, x, True), jnp.zeros_like(x))
  chex.assert_trees_all_equal(Dropout(0.0).apply({}, x, True), x)


def test_hfanet_passes_the_rates_to_its_blocks_and_head():
  # traced abstractly (jax.eval_shape): which DropPath and Dropout layers a training call
  # of HFA-Net runs, with which rates; the parameters are those of the paper's model
  x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  key = jax.random.PRNGKey(1)
  plain, reg = HFANet(), HFANet(drop_path=0.3, head_dropout=0.5)
  variables = jax.eval_shape(plain.init, key, x)
  chex.assert_trees_all_equal_shapes(variables, jax.eval_shape(reg.init, key, x))
  seen = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, DropPath | nn.Dropout) and context.method_name == '__call__':
      seen.append((type(context.module).__name__, round(context.module.rate, 6)))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(
      lambda v, x: reg.apply(v, x, train=True, mutable=['batch_stats'], rngs={'dropout': key}),
      variables,
      x,
    )
  # RMT's six blocks (depths 1, 1, 2, 2), rates rising linearly to 0.3, two branches each
  rates = [round(0.3 * i / 5, 6) for i in range(6)]
  assert [r for kind, r in seen if kind == 'DropPath'] == [r for r in rates for _ in (0, 1)]
  assert [r for kind, r in seen if kind == 'Dropout'] == [0.5]


def test_options_build_the_regularised_model_and_refuse_it_for_ststnet():
  from experiments import networks, options

  settings = lambda argv: options.settings_from_args(options.parse(argv)[1])
  s = settings(['--drop_path', '0.1', '--head_dropout', '0.2', '--dtype', 'float32'])
  model = networks.build_model(s, 3)
  assert (model.drop_path, model.head_dropout) == (0.1, 0.2)
  s = settings(['--model', 'ststnet', '--drop_path', '0.1', '--dtype', 'float32'])
  with pytest.raises(options.UsageError, match='drop_path'):
    networks.build_model(s, 3)


def test_augment_setting_parses_rotate_and_scale():
  cfg = LosoConfig(augment='flip+rotate+scale', max_rotation=15, max_scale=0.2)
  assert cfg.augmentations() == (True, 0) and cfg.warps() == (15, 0.2)
  assert LosoConfig(augment='flip+shift').warps() == (0.0, 0.0)
  with pytest.raises(ValueError, match='rotate'):
    LosoConfig(augment='flip+spin').validate()


def test_loso_trains_with_every_lever_and_predict_normalises_alike():
  images, labels, subjects = toy_data(n_subjects=3, per_subject=8)
  cfg = LosoConfig(
    epochs=1,
    batch_size=8,
    learning_rate=1e-2,
    augment='flip+shift+rotate+scale',
    flow_norm='median',
    folds_in_parallel=0,
    keep_models=False,
  )
  result = run_loso(images, labels, subjects, cfg, TinyNet(), out_dir=None)
  assert np.isfinite(result['metrics']['uf1'])
  # evaluation normalises each image as training did: predict.logits with flow_norm
  variables = TinyNet().init(jax.random.PRNGKey(0), images[:1])
  normed = np.asarray(evaluation.normalise_flow(jnp.asarray(images)))
  np.testing.assert_allclose(
    predict.logits(TinyNet(), variables, images, 8, flow_norm='median'),
    predict.logits(TinyNet(), variables, normed, 8),
    rtol=1e-5,
    atol=1e-6,
  )
  assert dataclasses.replace(cfg, flow_norm='none').identity() != cfg.identity()


def test_mirrored_halves_make_a_symmetric_flow_face():
  x = np.random.default_rng(0).normal(size=(32, 6, 6, 3)).astype(np.float32)
  y = np.asarray(jax.jit(augment_lib.mirrored_halves)(jax.random.PRNGKey(0), x))
  mirrored = lambda a: a[:, ::-1] * np.array([-1.0, 1, 1], np.float32)
  changed = 0
  for a, b in zip(x, y):
    if np.array_equal(a, b):
      continue
    changed += 1
    np.testing.assert_array_equal(b, mirrored(b))  # symmetric, u antisymmetric
    assert np.array_equal(b[:, :3], a[:, :3]) or np.array_equal(b[:, 3:], a[:, 3:])
  assert 0 < changed < 32
  assert LosoConfig(augment='flip+halves').augment_parts() == {'flip', 'halves'}
