"""x @ w of a Linear layer (x (..., in), w (in, out)): the plain form and the model's.

`dense` has the same numbers as `dense_reference`; on CPU (float32, out a multiple of 16) its
weight gradient, x^T g summed over all rows, comes from the native dense-convolution
weight-gradient kernel as a 1x1 convolution (`weight_grad_native`): XLA transposes the
rows x channels activations first.
"""

import jax

from hfa_jax import kernels
from hfa_jax.ops.dispatch import on_cpu, transposed


def dense_reference(x: jax.Array, w: jax.Array) -> jax.Array:
  """x (..., in) @ w (in, out) -> (..., out)."""
  return x @ w


@jax.custom_vjp
def dense(x: jax.Array, w: jax.Array) -> jax.Array:
  """x (..., in) @ w (in, out) -> (..., out)."""
  return x @ w


def _dense_fwd(x, w):
  return x @ w, (x, w)


def _dense_bwd(residuals, g):
  x, w = residuals
  dx = g @ w.T
  rows = x.reshape(-1, x.shape[-1])
  grads = g.reshape(-1, g.shape[-1])
  xla = lambda a, b: transposed(a) @ b
  if g.shape[-1] % 16 == 0:  # the kernel's vector code (its scalar code is slower than XLA)
    dw = on_cpu(weight_grad_native, xla, rows, grads)
  else:
    dw = xla(rows, grads)
  return dx, dw.astype(w.dtype)


dense.defvjp(_dense_fwd, _dense_bwd)


def weight_grad_native(rows: jax.Array, grads: jax.Array) -> jax.Array:
  """rows^T grads for (M, in), (M, out) -> (in, out), as a 1x1 convolution's weight gradient."""
  m = rows.shape[0]
  width = max(d for d in range(1, 129) if m % d == 0)  # positions per image row
  as_map = lambda t: t.reshape(m // width, 1, width, t.shape[-1])
  return kernels.conv_weight_grad(as_map(rows), as_map(grads), stride=1, padding=0, k=1)[0, 0]
