"""softmax(q k^T + mask) v, RMT's retention mixing: XLA's form and the model's.

`attention_reference` is the plain expression, differentiated by JAX. `attention` has the
same forward and a written-out gradient whose matmuls that contract rows (p^T g, ds^T q)
take their transposed operand as an array in CPU programs (`dispatch.transposed`) for maps
of up to `KEEP_TRANSPOSES` positions: left to autodiff, XLA:CPU runs them as slow
transposed-operand matmuls at RMT's small attention maps. At 224 px's 784 positions the
folded form was the faster one (docs/performance.md).
"""

import jax
import jax.numpy as jnp

from hfa_jax.ops.dispatch import transposed


KEEP_TRANSPOSES = 256  # the most positions whose p^T and ds^T are made arrays (measured)


def _transposed(a: jax.Array) -> jax.Array:
  return transposed(a) if a.shape[-1] <= KEEP_TRANSPOSES else jnp.swapaxes(a, -1, -2)


def _probabilities(q, k, mask):
  return jax.nn.softmax(jnp.einsum('...id,...jd->...ij', q, k) + mask, axis=-1)


def _mix(p, v):
  return jnp.einsum('...ij,...jd->...id', p, v)


def attention_reference(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
  """q, k, v (..., T, D), mask broadcasting to (..., T, T) -> (..., T, D)."""
  return _mix(_probabilities(q, k, mask), v)


@jax.custom_vjp
def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
  """attention_reference with a written-out gradient; the mask (a constant of the model)
  gets a zero gradient."""
  return attention_reference(q, k, v, mask)


def _attention_fwd(q, k, v, mask):
  p = _probabilities(q, k, mask)
  return _mix(p, v), (q, k, v, p, mask)


def _attention_bwd(residuals, g):
  q, k, v, p, mask = residuals
  dv = _transposed(p) @ g
  dp = g @ jnp.swapaxes(v, -1, -2)
  ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))  # through the softmax
  return ds @ k, _transposed(ds) @ q, dv, jnp.zeros_like(mask)


attention.defvjp(_attention_fwd, _attention_bwd)
