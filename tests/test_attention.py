"""ops.attention (RMT's retention mixing with a written-out gradient) against JAX's autodiff of
the plain expression, and dispatch.transposed, which keeps its transposed matmul operands."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax.ops.attention import attention, attention_reference
from hfa_jax.ops.dispatch import transposed


def data(shape, heads, seed=0):
  rng = np.random.default_rng(seed)
  q, k, v = (jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(3))
  t = shape[-2]
  mask = jnp.asarray(-np.abs(rng.normal(size=(heads, 1, t, t))) * 3, jnp.float32)
  return q, k, v, mask


def grads(fn, q, k, v, mask):
  weights = jnp.cos(jnp.arange(q.size, dtype=jnp.float32)).reshape(q.shape)
  return jax.value_and_grad(lambda q, k, v: (fn(q, k, v, mask) * weights).sum(), (0, 1, 2))(q, k, v)


@pytest.mark.parametrize('shape', [(2, 3, 4, 7, 8), (1, 2, 1, 16, 4), (1, 1, 300, 4)])
def test_attention_and_its_gradients_match_autodiff(shape):
  q, k, v, mask = data(shape, shape[1])
  np.testing.assert_allclose(
    attention(q, k, v, mask), attention_reference(q, k, v, mask), rtol=1e-6, atol=1e-6
  )
  (got, got_grads), (want, want_grads) = (
    jax.jit(grads, static_argnums=0)(fn, q, k, v, mask) for fn in (attention, attention_reference)
  )
  np.testing.assert_allclose(got, want, rtol=1e-5)
  for a, b in zip(got_grads, want_grads):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_attention_gradients_under_a_fold_vmap_match_autodiff():
  q, k, v, mask = data((3, 2, 2, 5, 8), 2, seed=1)  # 3 folds
  got = jax.jit(jax.vmap(lambda *a: grads(attention, *a, mask)[1]))(q, k, v)
  want = jax.vmap(lambda *a: grads(attention_reference, *a, mask)[1])(q, k, v)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_transposed_is_an_array_of_its_own_on_cpu_only():
  a = jnp.arange(24.0).reshape(2, 3, 4)
  np.testing.assert_array_equal(transposed(a), jnp.swapaxes(a, 1, 2))
  fn = jax.jit(lambda a, b: transposed(a) @ b)
  b = jnp.ones((2, 3, 5))
  np.testing.assert_allclose(fn(a, b), jnp.swapaxes(a, 1, 2) @ b)
  assert 'optimization_barrier' in fn.lower(a, b).as_text()
  for platform in ('cuda', 'tpu'):
    text = jax.export.export(fn, platforms=(platform,))(a, b).mlir_module()
    assert 'optimization_barrier' not in text
