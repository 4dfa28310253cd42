"""Where the fast forms run: native kernels in CPU programs; the folds' convolutions as
stacked forms (or one per fold) in CPU programs; matmul operands transposed as arrays in CPU
programs."""

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from hfa_jax import kernels


def on_cpu(native: Callable, fallback: Callable, x: jax.Array, y: jax.Array, **static):
  """native(x, y, **static) in CPU programs when the native kernels are available (float32),
  else fallback(x, y, **static)."""
  if x.dtype != jnp.float32 or y.dtype != jnp.float32 or not kernels.native_available():
    return fallback(x, y, **static)
  return jax.lax.platform_dependent(
    x, y, cpu=functools.partial(native, **static), default=functools.partial(fallback, **static)
  )


def per_model(fn: Callable, stacked: Callable | None = None) -> Callable:
  """fn(a, b) with a vmap rule for CPU programs: stacked(a, b) on the models stacked along a
  leading axis (both inputs broadcast to it) where given, else fn once per model.

  Under jax.vmap over stacked models (the folds) XLA merges the models' convolutions into
  one grouped convolution, which XLA:CPU runs far more slowly than separate ones. GPU and
  TPU programs keep the plain vmap (the folds may be sharded over devices there).
  """
  wrapped = jax.custom_batching.custom_vmap(fn)

  @wrapped.def_vmap
  def rule(axis_size, in_batched, a, b):
    pick = lambda t, batched, i: t[i] if batched else t
    unrolled = lambda a, b: jnp.stack(
      [fn(pick(a, in_batched[0], i), pick(b, in_batched[1], i)) for i in range(axis_size)]
    )
    if stacked is not None:
      spread = lambda t, batched: t if batched else jnp.broadcast_to(t, (axis_size, *t.shape))
      unrolled = lambda a, b: stacked(spread(a, in_batched[0]), spread(b, in_batched[1]))
    vmapped = jax.vmap(fn, in_axes=tuple(0 if batched else None for batched in in_batched))
    return jax.lax.platform_dependent(a, b, cpu=unrolled, default=vmapped), True

  return wrapped


def transposed(a: jax.Array) -> jax.Array:
  """a (..., m, n) -> (..., n, m), as an array of its own in CPU programs.

  For a matmul that contracts the rows of both operands (a^T b, as gradients do): XLA folds
  a plain transpose into the matmul, and in HFA-Net's training program XLA:CPU runs that
  transposed-operand form on a slow path (the retention backward's small products: 10 ms
  per op for 4 folds at 32 px, against 0.7 ms for the same op compiled alone;
  docs/performance.md). The barrier keeps the transposed copy. Other backends fold it.
  """
  swap = lambda a: jnp.swapaxes(a, -1, -2)
  return jax.lax.platform_dependent(
    a, cpu=lambda a: jax.lax.optimization_barrier(swap(a)), default=swap
  )
