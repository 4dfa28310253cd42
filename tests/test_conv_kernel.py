"""The native CPU weight gradient of dense convolutions and Dense layers against XLA's."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax import kernels
from tests.native import built  # noqa: F401 (the fixture)
from hfa_jax.models import layers
from hfa_jax.ops import conv as conv_ops

# Skipped where there is no C++ compiler (or HFA_JAX_NATIVE=0), failed where a build with one fails
pytestmark = pytest.mark.usefixtures('built')

# (batch, side, Cin, Cout, kernel, stride, padding). Cin 3/5/13 leave a partial register block;
# Cout 16/32/48/80 use one, two, and two-then-one vectors; 7 and 20 the scalar tail.
CASES = [
  (2, 9, 3, 32, 3, 2, 1),
  (3, 8, 13, 48, 3, 1, 1),
  (2, 7, 5, 16, 5, 1, 2),
  (2, 10, 8, 80, 3, 2, 1),
  (1, 6, 4, 7, 3, 1, 0),
  (2, 5, 9, 20, 3, 2, 0),
  (4, 3, 16, 32, 3, 2, 1),
]


def data(b, side, cin, cout, k, s, p, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(b, side, side, cin)), jnp.float32)
  ho = (side + 2 * p - k) // s + 1
  g = jnp.asarray(rng.normal(size=(b, ho, ho, cout)), jnp.float32)
  return x, g


@pytest.mark.parametrize('case', CASES)
def test_weight_gradient_matches_xla(case):
  b, side, cin, cout, k, s, p = case
  x, g = data(*case)
  static = dict(stride=s, padding=p, k=k)
  native = jax.jit(functools.partial(kernels.conv_weight_grad, **static))(x, g)
  xla = jax.jit(functools.partial(conv_ops.conv_weight_grad_reference, **static))(x, g)
  assert native.shape == (k, k, cin, cout)
  np.testing.assert_allclose(native, xla, rtol=1e-5, atol=1e-4)


def conv_grads(conv, x, w, s, p):
  """Gradients of sum(conv(x, w) * fixed weights) with respect to x and w."""
  shape = jax.eval_shape(lambda: conv_ops.conv_reference(x, w, s, p)).shape
  weights = jnp.cos(jnp.arange(np.prod(shape), dtype=jnp.float32)).reshape(shape)
  return jax.grad(lambda x, w: (conv(x, w, s, p) * weights).sum(), (0, 1))(x, w)


def test_the_convolution_uses_it_and_keeps_xla_gradients():
  x, _ = data(2, 12, 8, 32, 3, 2, 1, seed=1)
  w = jnp.asarray(np.random.default_rng(2).normal(size=(3, 3, 8, 32)), jnp.float32)
  step = jax.jit(functools.partial(conv_grads, conv_ops.conv, s=2, p=1))
  assert kernels.CONV_WEIGHT_GRAD in step.lower(x, w).compile().as_text()
  dx, dw = step(x, w)
  rx, rw = conv_grads(conv_ops.conv_reference, x, w, 2, 1)
  np.testing.assert_allclose(dx, rx, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, rw, rtol=1e-5, atol=1e-4)


def test_vmap_over_models_as_the_fold_axis_uses_it():
  x, _ = data(2, 8, 6, 16, 3, 1, 1, seed=3)
  w = jnp.asarray(np.random.default_rng(4).normal(size=(3, 3, 6, 16)), jnp.float32)
  xs, ws = jnp.stack([x, 2 * x, x - 1]), jnp.stack([w, 0.5 * w, -w])
  got = jax.jit(jax.vmap(functools.partial(conv_grads, conv_ops.conv, s=1, p=1)))(xs, ws)
  want = jax.vmap(functools.partial(conv_grads, conv_ops.conv_reference, s=1, p=1))(xs, ws)
  for a, r in zip(got, want):
    np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-4)


def test_weight_gradient_is_deterministic():
  x, g = data(8, 20, 32, 64, 3, 1, 1, seed=5)
  fn = jax.jit(functools.partial(kernels.conv_weight_grad, stride=1, padding=1, k=3))
  first = np.asarray(fn(x, g))
  for _ in range(3):
    np.testing.assert_array_equal(np.asarray(fn(x, g)), first)


def test_few_output_channels_stay_with_xla_others_run_padded_to_16():
  """Below PADDED_WEIGHT_GRAD_FROM output channels XLA's weight gradient; from it on, a count
  that is not a multiple of 16 runs the kernel on the gradient padded with zero channels."""
  for cout in (4, 6, 8):
    x, _ = data(1, 6, 4, cout, 3, 1, 1)
    w = jnp.asarray(np.random.default_rng(cout).normal(size=(3, 3, 4, cout)), jnp.float32)
    step = jax.jit(functools.partial(conv_grads, conv_ops.conv, s=1, p=1))
    native = cout >= conv_ops.PADDED_WEIGHT_GRAD_FROM
    assert (kernels.CONV_WEIGHT_GRAD in step.lower(x, w).as_text()) == native
    for a, r in zip(step(x, w), conv_grads(conv_ops.conv_reference, x, w, 1, 1)):
      np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
  'side, cin, cout, k, s, p',
  [
    (4, 8, 16, 3, 2, 1),
    (3, 4, 8, 3, 2, 1),
    (2, 8, 16, 3, 2, 1),
    (4, 6, 16, 1, 2, 0),
    (5, 3, 16, 3, 3, 1),
  ],
)
def test_strided_input_gradient_at_small_outputs_matches_xla(side, cin, cout, k, s, p):
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.normal(size=(2, side, side, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
  y = conv_ops.conv_reference(x, w, s, p)
  assert y.shape[1] * y.shape[2] <= 4  # the outputs where it is used
  g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
  want = jax.vjp(lambda x: conv_ops.conv_reference(x, w, s, p), x)[1](g)[0]
  got = jax.jit(
    functools.partial(conv_ops.small_map_input_grad, stride=s, padding=p, size=(side, side))
  )(g, w)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  dx, _ = conv_grads(conv_ops.conv, x, w, s, p)
  np.testing.assert_allclose(
    dx, conv_grads(conv_ops.conv_reference, x, w, s, p)[0], rtol=1e-5, atol=1e-5
  )


@pytest.mark.parametrize(
  'side, k, s, p', [(2, 3, 2, 1), (3, 3, 2, 1), (4, 3, 2, 1), (2, 1, 2, 0), (3, 3, 1, 0)]
)
def test_forward_at_small_outputs_matches_xla(side, k, s, p):
  rng = np.random.default_rng(7)
  x = jnp.asarray(rng.normal(size=(2, side, side, 5)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, 5, 16)), jnp.float32)
  want = conv_ops.conv_reference(x, w, s, p)
  assert want.shape[1] * want.shape[2] <= 4
  np.testing.assert_allclose(conv_ops.conv(x, w, s, p), want, rtol=1e-5, atol=1e-5)


def test_fold_vmap_lowers_for_accelerators_without_the_native_kernels():
  """GPU/TPU programs of the fold-vmapped gradient lower without the CPU-only custom calls."""
  x, _ = data(2, 8, 6, 16, 3, 2, 1, seed=8)
  w = jnp.ones((3, 3, 6, 16), jnp.float32)
  xs, ws = jnp.stack([x, x]), jnp.stack([w, w])
  fn = jax.jit(jax.vmap(functools.partial(conv_grads, conv_ops.conv, s=2, p=1)))
  for platform in ('cuda', 'tpu'):
    text = jax.export.export(fn, platforms=(platform,))(xs, ws).mlir_module()
    assert 'stablehlo.convolution' in text and kernels.CONV_WEIGHT_GRAD not in text
  assert kernels.CONV_WEIGHT_GRAD in fn.lower(xs, ws).as_text()  # the CPU program


@pytest.mark.parametrize('shape, features', [((2, 7, 9, 32), 16), ((131, 24), 48), ((3, 5, 8), 7)])
def test_dense_layer_gradients_match_a_plain_matmul(shape, features):
  rng = np.random.default_rng(9)
  x = jnp.asarray(rng.normal(size=shape), jnp.float32)
  layer = layers.dense(features)
  params = layer.init(jax.random.PRNGKey(0), x)['params']
  weights = jnp.cos(jnp.arange(np.prod(shape[:-1]) * features, dtype=jnp.float32))
  weights = weights.reshape(*shape[:-1], features)
  loss = lambda p, x: (layer.apply({'params': p}, x) * weights).sum()
  plain = lambda p, x: ((x @ p['kernel'] + p['bias']) * weights).sum()
  grad = jax.jit(jax.grad(loss, (0, 1)))
  assert (kernels.CONV_WEIGHT_GRAD in grad.lower(params, x).as_text()) == (features % 16 == 0)
  got, want = grad(params, x), jax.grad(plain, (0, 1))(params, x)
  for a, r in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-4)
  folds = jax.tree.map(lambda t: jnp.stack([t, -t]), params)
  got = jax.jit(jax.vmap(jax.grad(loss), (0, None)))(folds, x)
  want = jax.vmap(jax.grad(plain), (0, None))(folds, x)
  for a, r in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-4)
