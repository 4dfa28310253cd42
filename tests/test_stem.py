"""ops.stem: a first stage (convolution, ReLU and BatchNorm in either order, disjoint
max-pool) fused in the native kernels against XLA's composition, values and gradients, under
the folds' vmap; conv -> ReLU -> pool (no BatchNorm) alike; the max-pool's gradient under jit;
STSTNet's, RCN-A's, SSSNet's and OFF-ApexNet's training gradients with the fused stage against
the plain one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax import kernels
from hfa_jax.models import registry
from hfa_jax.ops import stem
from hfa_jax.ops.conv import conv
from hfa_jax.ops.max_pool import max_pool_disjoint

native = pytest.mark.skipif(
  not kernels.native_available(), reason='no C++ compiler: the native kernels are not built'
)

# (models, batch, side, Cin, C, kernel, padding, pool, pool padding, relu first): STSTNet's
# (rows and columns past the last window), RCN-A's, 32 channels, 2 input channels.
CASES = [
  (2, 4, 12, 3, 16, 3, 2, 3, 1, True),
  (2, 3, 14, 3, 64, 5, 0, 2, 0, False),
  (1, 2, 11, 3, 32, 3, 1, 3, 1, True),
  (3, 2, 10, 2, 16, 3, 1, 2, 0, False),
  (1, 2, 12, 3, 16, 3, 2, 3, 1, False),
]


def operands(case, seed=0):
  f, b, side, cin, c, k = case[:6]
  rng = np.random.default_rng(seed)
  draw = lambda *shape, s=1.0: jnp.asarray(rng.normal(size=(f, *shape)) * s, jnp.float32)
  return draw(b, side, side, cin), draw(k, k, cin, c, s=0.3), draw(c, s=0.3), draw(c), draw(c)


def value_and_grads(fn, case):
  static = dict(zip(('padding', 'pool', 'pool_padding', 'relu_first'), case[6:]))

  def per_model(x, w, b, scale, shift):
    p, mean, var = fn(x, w, b, scale, shift, **static)
    weights = jnp.cos(jnp.arange(p.size, dtype=jnp.float32)).reshape(p.shape)
    return (p * weights).sum() + jnp.sin(mean).sum() + (var * var).sum()

  return jax.jit(jax.vmap(jax.value_and_grad(per_model, (1, 2, 3, 4))))


@native
@pytest.mark.parametrize('case', CASES)
def test_fused_stage_matches_the_composition_under_the_folds_vmap(case):
  """Values and the gradients of the kernel, bias, BatchNorm scale (some negative) and shift
  (also through the batch mean and variance outputs), model by model."""
  args = operands(case)
  fused = value_and_grads(stem.conv_bn_pool, case)
  assert kernels.STEM_BACKWARD in fused.lower(*args).as_text()
  got, want = fused(*args), value_and_grads(stem.conv_bn_pool_reference, case)(*args)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()))


# (models, batch, side, Cin, C, kernel, padding, pool): SSSNet's (5x5, 3x3 windows, the
# 60 x 60 map's last columns in none at side 64: here 14 -> 10, one row and column past the
# windows), a padded one with 2 x 2 windows, OFF-ApexNet's 6 channels (padded to 16 there).
RELU_POOL_CASES = [(2, 3, 14, 3, 32, 5, 0, 3), (1, 2, 9, 2, 16, 3, 1, 2), (2, 3, 12, 2, 6, 3, 1, 2)]


@native
@pytest.mark.parametrize('case', RELU_POOL_CASES)
def test_fused_relu_pool_matches_the_composition_under_the_folds_vmap(case):
  """conv -> ReLU -> disjoint max-pool (SSSNet's first stage, its BatchNorm after the pool):
  the value and the kernel's and bias's gradients, model by model; windows of all-negative
  u (ReLU's 0 everywhere, no gradient) included: a bias drawn around -1 makes many."""
  x, w, b = operands(case)[:3]
  b = b - 1.5
  static = dict(padding=case[6], pool=case[7], pool_padding=0)

  def per_model(fn):
    def loss(x, w, b):
      p = fn(x, w, b, **static)
      return (p * jnp.cos(jnp.arange(p.size, dtype=jnp.float32)).reshape(p.shape)).sum()

    return jax.jit(jax.vmap(jax.value_and_grad(loss, (1, 2))))

  fused = per_model(stem.conv_relu_pool)
  assert kernels.STEM_BACKWARD in fused.lower(x, w, b).as_text()
  got, want = fused(x, w, b), per_model(stem.conv_relu_pool_reference)(x, w, b)
  assert float((stem.conv_relu_pool_reference(x[0], w[0], b[0], **static) == 0).mean()) > 0.02
  for a, c in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4 * float(jnp.abs(c).max()))


def test_max_pool_gradient_after_batch_norm_is_whole_under_jit():
  """BatchNorm's affine map fused into the pool's maximum and into its gradient rounds
  differently in each (one FMA contracted): the gradient must not test x == max again.
  The shift's gradient is the sum of the output gradients, under jit as eagerly."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 12, 12, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 3, 16)) * 0.3, jnp.float32)
  scale, shift = (jnp.asarray(rng.normal(size=16), jnp.float32) for _ in range(2))

  def loss(shift, x, w, scale):
    u = jax.nn.relu(conv(x, w, 1, 2))
    mean = u.mean((0, 1, 2))
    y = (u - mean) * (jax.lax.rsqrt(jnp.square(u - mean).mean((0, 1, 2)) + 1e-5) * scale) + shift
    p = max_pool_disjoint(y, 3, 1)
    return (p * jnp.cos(jnp.arange(p.size, dtype=jnp.float32)).reshape(p.shape)).sum()

  grad = jax.grad(loss)
  expected = jnp.cos(jnp.arange(2 * 5 * 5 * 16, dtype=jnp.float32)).reshape(2, 5, 5, 16)
  np.testing.assert_allclose(jax.jit(grad)(shift, x, w, scale), expected.sum((0, 1, 2)), atol=1e-5)
  np.testing.assert_allclose(grad(shift, x, w, scale), expected.sum((0, 1, 2)), atol=1e-5)


@native
@pytest.mark.parametrize(
  'name, side', [('ststnet', 28), ('rcn_a', 20), ('sssnet', 64), ('offapexnet', 28)]
)
def test_models_train_with_the_fused_stage_as_with_the_composition(name, side, monkeypatch):
  """A training step's loss, gradients and BatchNorm statistics of STSTNet, RCN-A, SSSNet and
  OFF-ApexNet, two models under vmap, with the fused first stage and with XLA's composition."""
  model = registry.build(name, 3, dropout=0.0)
  x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 8, side, side, 3)), jnp.float32)
  labels = jnp.asarray([[0, 1, 2, 0, 1, 2, 0, 1]] * 2)
  variables = jax.vmap(lambda k: model.init(k, x[0], train=False))(
    jax.random.split(jax.random.key(0))
  )

  def step(variables, x, labels):
    def loss(params):
      logits, new = model.apply(
        {**variables, 'params': params}, x, train=True, mutable=['batch_stats']
      )
      return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(8), labels]), new

    (value, new), grads = jax.value_and_grad(loss, has_aux=True)(variables['params'])
    return value, grads, new

  run = lambda: jax.jit(jax.vmap(step))(variables, x, labels)
  got = run()
  monkeypatch.setattr(stem.kernels, 'native_available', lambda: False)
  want = run()
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 + 1e-4 * float(jnp.abs(b).max()))
