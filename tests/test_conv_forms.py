"""Conv2d's written-out forms (depthwise sum, patch matmul) equal XLA's convolution, and so do
their gradients; so does ops.max_pool XLA's reduce-window maximum."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax.models.layers import Conv2d
from hfa_jax.ops import conv as conv_ops
from hfa_jax.ops.conv import conv_reference as reference
from hfa_jax.ops.max_pool import max_pool, max_pool_reference


@pytest.mark.parametrize(
  'kernel,stride,padding,groups,side',
  [
    (3, 1, 1, 6, 8),  # depthwise 3x3 (RMT pos, ffn dwconv)
    (5, 1, 2, 6, 7),  # depthwise 5x5 (lepe), odd side
    (1, 1, 0, 6, 4),  # depthwise 1x1 (MLFA)
    (4, 4, 0, 1, 8),  # patches (MLFA downsample)
    (2, 2, 0, 1, 7),  # patches with a remainder row and column
  ],
)
def test_forms_match_convolution(kernel, stride, padding, groups, side):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, side, side + 1, 6)), jnp.float32)
  features = 6 if groups > 1 else 5
  module = Conv2d(features, kernel, stride, padding, groups, bias=False)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 6 // groups, features)), jnp.float32)

  def loss(fn):
    return jax.grad(lambda x, w: jnp.sum(jnp.sin(fn(x, w))), (0, 1))(x, w)

  ours = loss(lambda x, w: module.apply({'params': {'kernel': w}}, x))
  theirs = loss(lambda x, w: reference(x, w, stride, padding, groups))
  out = module.apply({'params': {'kernel': w}}, x)
  np.testing.assert_allclose(out, reference(x, w, stride, padding, groups), atol=1e-5)
  for a, b in zip(ours, theirs):
    np.testing.assert_allclose(a, b, atol=5e-5, rtol=1e-5)


@pytest.mark.parametrize(
  'kernel,stride,padding,side',
  [
    (3, 1, 1, 6),
    (5, 1, 2, 7),
    (3, 1, 0, 6),
    (1, 1, 0, 5),
    (3, 2, 1, 9),
    (3, 2, 1, 8),
    (1, 2, 0, 6),
    (3, 1, 1, 2),  # small maps (at most 2x2 out): a matmul per tap that meets the image
    (3, 1, 1, 1),  # one tap of nine
    (5, 1, 2, 2),
    (3, 1, 0, 4),  # 4x4 -> 2x2, every tap meets it
    (1, 1, 0, 2),
    (3, 2, 1, 4),  # strided to 2x2 (ResNet-18's layer4 entry, HFA-Net's stage 4 at 64 px)
    (3, 2, 1, 2),  # strided to 1x1: four taps of nine meet the image
    (3, 2, 1, 3),
    (1, 2, 0, 4),  # the strided 1x1 downsample to 2x2
    (3, 3, 1, 5),
  ],
)
def test_input_gradient_form_and_the_convolutions_gradients_match_xla(
  kernel, stride, padding, side
):
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, side, side, 5)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 5, 16)), jnp.float32)
  y, vjp = jax.vjp(lambda x: reference(x, w, stride, padding), x)
  g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
  static = dict(stride=stride, padding=padding, shape=x.shape[1:])
  got = jax.jit(lambda g, w: conv_ops.conv_input_grad(g, w, **static))(g, w)
  np.testing.assert_allclose(got, vjp(g)[0], rtol=1e-5, atol=1e-5)
  grads = lambda fn: jax.grad(lambda x, w: jnp.sum(fn(x, w) * g), (0, 1))(x, w)
  ours = grads(lambda x, w: conv_ops.conv(x, w, stride, padding))
  for a, b in zip(ours, grads(lambda x, w: reference(x, w, stride, padding))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('shape', [(2, 7, 9, 3), (1, 5, 5, 2), (2, 8, 8, 4)])
def test_max_pool_matches_reduce_window_and_first_max_gradient(shape):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=shape), jnp.float32)
  x = jnp.where(x < 0, 0.0, x)  # ReLU output: windows of tied zeros
  ref = lambda x: max_pool_reference(x, 3, 2, 1)
  np.testing.assert_array_equal(max_pool(x, 3, 2, 1), ref(x))
  weights = jnp.asarray(rng.normal(size=ref(x).shape), jnp.float32)
  grad = lambda f: jax.grad(lambda x: (f(x) * weights).sum())(x)
  got = grad(lambda x: max_pool(x, 3, 2, 1))
  np.testing.assert_allclose(got, grad(ref), atol=1e-6)
  # Each window's gradient goes to exactly one input (no splitting among tied maxima).
  np.testing.assert_allclose(got.sum(), weights.sum(), rtol=1e-5)


@pytest.mark.parametrize(
  'kernel,stride,padding,side,shared_w,channels',
  [
    (3, 1, 1, 8, False, 4),  # MSA / RMT 3x3
    (3, 2, 1, 9, False, 4),  # strided, odd side (a remainder row)
    (7, 2, 3, 8, False, 4),  # the stem
    (3, 1, 1, 6, True, 4),  # one kernel for every model (broadcast)
    (3, 1, 2, 7, False, 3),  # STSTNet's: few input channels, a sum of products
    (3, 2, 1, 9, True, 2),  # few input channels, strided, one kernel
    (3, 1, 1, 2, False, 4),  # ResNet-18's last stage at 64 px: a matmul per tap
    (3, 1, 1, 1, True, 4),  # HFA-Net's last stage at 32 px: the middle tap alone
    (3, 2, 1, 4, False, 4),  # strided to 2x2: ResNet-18's layer4 entry at 64 px
    (3, 2, 1, 2, True, 4),  # strided to 1x1: HFA-Net's stage 4 patch merging at 32 px
  ],
)
def test_models_stacked_run_as_one_matmul_and_match(
  kernel, stride, padding, side, shared_w, channels
):
  """ops.conv.conv under jax.vmap over stacked models (the LOSO folds) in a CPU program: no
  convolution left (one batched matmul of the taps per direction, or for fewer than
  FEW_INPUT_CHANNELS input channels a sum of products), the values and both gradients those
  of XLA's convolution model by model."""
  from hfa_jax.ops import conv as ops_conv

  rng = np.random.default_rng(1)
  models = 3
  x = jnp.asarray(rng.normal(size=(models, 2, side, side, channels)), jnp.float32)
  w_shape = (kernel, kernel, channels, 16)
  w_shape = w_shape if shared_w else (models, *w_shape)
  w = jnp.asarray(rng.normal(size=w_shape) * 0.2, jnp.float32)
  w_axis = None if shared_w else 0

  def loss(fn):
    per_model = jax.vmap(lambda x, w: jnp.sum(jnp.sin(fn(x, w))), in_axes=(0, w_axis))
    return jax.jit(jax.grad(lambda x, w: per_model(x, w).sum(), (0, 1)))

  ours = loss(lambda x, w: ops_conv.conv(x, w, stride, padding))
  theirs = loss(lambda x, w: reference(x, w, stride, padding))
  for a, b in zip(ours(x, w), theirs(x, w)):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5)
  if jax.default_backend() == 'cpu':
    assert 'convolution(' not in ours.lower(x, w).compile().as_text()
