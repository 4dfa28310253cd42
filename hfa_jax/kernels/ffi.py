"""Typed wrappers of the native CPU kernels' XLA FFI targets (the only place naming them).

Each wrapper is a `jax.ffi.ffi_call` for float32 arrays in CPU programs, once
`hfa_jax.kernels.native_available()` has registered the targets; callers choose between
them and the pure-JAX forms (`hfa_jax.ops`). Image arrays are NHWC.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

DEPTHWISE_FORWARD = 'hfa_depthwise_forward'
DEPTHWISE_WEIGHT_GRAD = 'hfa_depthwise_weight_grad'
CONV_WEIGHT_GRAD = 'hfa_conv_weight_grad'
CONV_FORWARD = 'hfa_conv_forward'
ADAMW = 'hfa_adamw'
SGD = 'hfa_sgd'
STEM_FORWARD = 'hfa_stem_forward'
STEM_BACKWARD = 'hfa_stem_backward'

# FFI target -> the C++ handler symbol exported by depthwise_cpu.cc / conv_cpu.cc / adamw_cpu.cc.
TARGETS = {
  DEPTHWISE_FORWARD: 'HfaDepthwiseForward',
  DEPTHWISE_WEIGHT_GRAD: 'HfaDepthwiseWeightGrad',
  CONV_WEIGHT_GRAD: 'HfaConvWeightGrad',
  CONV_FORWARD: 'HfaConvForward',
  ADAMW: 'HfaAdamW',
  SGD: 'HfaSgd',
  STEM_FORWARD: 'HfaStemForward',
  STEM_BACKWARD: 'HfaStemBackward',
}


def depthwise_forward(x: jax.Array, w: jax.Array, padding: int) -> jax.Array:
  """Depthwise cross-correlation, stride 1: x (B, H, W, C), w (k, k, C) -> (B, Ho, Wo, C)."""
  k, c = w.shape[0], x.shape[-1]
  h, wd = x.shape[1] + 2 * padding - k + 1, x.shape[2] + 2 * padding - k + 1
  out = jax.ShapeDtypeStruct((x.shape[0], h, wd, c), x.dtype)
  return jax.ffi.ffi_call(DEPTHWISE_FORWARD, out, vmap_method='broadcast_all')(
    x, w, pad=np.int64(padding)
  )


def depthwise_weight_grad(x: jax.Array, g: jax.Array, padding: int) -> jax.Array:
  """d/dw of depthwise_forward: x (B, H, W, C), output gradient g (B, Ho, Wo, C) -> (k, k, C)."""
  k, c = x.shape[1] + 2 * padding - g.shape[1] + 1, x.shape[-1]
  out = jax.ShapeDtypeStruct((k, k, c), x.dtype)
  return jax.ffi.ffi_call(DEPTHWISE_WEIGHT_GRAD, out, vmap_method='broadcast_all')(
    x, g, pad=np.int64(padding)
  )


def conv_weight_grad(x: jax.Array, g: jax.Array, stride: int, padding: int, k: int) -> jax.Array:
  """d/dw of a dense k x k convolution: x (B, H, W, Cin), g (B, Ho, Wo, Cout) -> (k, k, Cin, Cout).

  Vectorised over Cout in blocks of 16 (other counts run its scalar code).
  """
  out = jax.ShapeDtypeStruct((k, k, x.shape[-1], g.shape[-1]), x.dtype)
  return jax.ffi.ffi_call(CONV_WEIGHT_GRAD, out, vmap_method='broadcast_all')(
    x, g, stride=np.int64(stride), pad=np.int64(padding)
  )


def conv_forward(x: jax.Array, w: jax.Array, stride: int, padding: int) -> jax.Array:
  """A dense k x k cross-correlation: x (L..., B, H, W, Cin), w (L..., k, k, Cin, Cout)
  -> (L..., B, Ho, Wo, Cout), L leading model dimensions (none for one model).

  Vectorised over Cout (a last partial vector is computed whole and stored in part).
  """
  k = w.shape[-4]
  ho, wo = ((n + 2 * padding - k) // stride + 1 for n in x.shape[-3:-1])
  out = jax.ShapeDtypeStruct((*x.shape[:-3], ho, wo, w.shape[-1]), x.dtype)
  return jax.ffi.ffi_call(CONV_FORWARD, out, vmap_method='broadcast_all')(
    x, w, stride=np.int64(stride), pad=np.int64(padding)
  )


class AdamWHyperparams(NamedTuple):
  """AdamW's constants (Python floats): b1, c1 = 1 - b1, b2, c2 = 1 - b2, eps, wd (decoupled
  decay), l2 (L2 added to the gradient first: Adam with L2, optax.add_decayed_weights)."""

  b1: float
  c1: float
  b2: float
  c2: float
  eps: float
  wd: float
  l2: float = 0.0


class AdamWStepScalars(NamedTuple):
  """One step's scalars, each (L...) for L stacked models (none for one model): neg_lr =
  -lr(t), bc1 = 1 - b1^t, bc2 = 1 - b2^t."""

  neg_lr: jax.Array
  bc1: jax.Array
  bc2: jax.Array


def adamw(p, g, mu, nu, scalars: AdamWStepScalars, hyper: AdamWHyperparams):
  """One AdamW step in one pass, in place: p, g, mu, nu (L..., N...) -> (p, mu, nu).

  The hyperparameters are float32 attributes (np.float32 of the Python floats, as JAX
  rounds them); p, mu and nu are updated in the buffers they came in (XLA copies them
  first if they are still needed).
  """
  out = (jax.ShapeDtypeStruct(p.shape, p.dtype),) * 3
  attributes = {name: np.float32(value) for name, value in hyper._asdict().items()}
  return jax.ffi.ffi_call(
    ADAMW, out, vmap_method='broadcast_all', input_output_aliases={0: 0, 2: 1, 3: 2}
  )(p, g, mu, nu, *scalars, **attributes)


def sgd(p, g, trace, neg_lr, momentum: float, l2: float):
  """One SGD-with-momentum step in one pass, in place: p, g, trace (L..., N...), neg_lr (L...)
  -> (p, trace); trace = (g + l2 p) + momentum trace, p = p + neg_lr trace."""
  out = (jax.ShapeDtypeStruct(p.shape, p.dtype),) * 2
  return jax.ffi.ffi_call(SGD, out, vmap_method='broadcast_all', input_output_aliases={0: 0, 2: 1})(
    p, g, trace, neg_lr, momentum=np.float32(momentum), l2=np.float32(l2)
  )


def _stem_attributes(padding, pool, pool_padding, relu_first):
  return dict(
    pad=np.int64(padding),
    pool=np.int64(pool),
    pool_pad=np.int64(pool_padding),
    relu_first=np.int64(relu_first),
  )


def stem_forward(x, w, b, padding: int, pool: int, pool_padding: int, relu_first: bool):
  """A first stage's forward statistics (stem_cpu.cc): x (L..., B, H, W, Cin), w (L..., k, k,
  Cin, C), b (L..., C) -> (vmax, vmin (L..., B, Po, Qo, C), mean, var (L..., C)) of
  v = relu(conv(x) + b) (relu_first) or conv(x) + b, over disjoint pool x pool windows."""
  k, c = w.shape[-4], w.shape[-1]
  hc, wc = (n + 2 * padding - k + 1 for n in x.shape[-3:-1])
  po, qo = ((n + 2 * pool_padding - pool) // pool + 1 for n in (hc, wc))
  lead = x.shape[:-4]
  pooled = jax.ShapeDtypeStruct((*lead, x.shape[-4], po, qo, c), x.dtype)
  stats = jax.ShapeDtypeStruct((*lead, c), x.dtype)
  return jax.ffi.ffi_call(
    STEM_FORWARD, (pooled, pooled, stats, stats), vmap_method='broadcast_all'
  )(x, w, b, **_stem_attributes(padding, pool, pool_padding, relu_first))


def stem_backward(x, w, b, g, coeffs, padding, pool, pool_padding, relu_first: bool):
  """The weight and bias gradients of a first stage (stem_cpu.cc): g (L..., B, Po, Qo, C) the
  pooled output's gradient, coeffs (L..., 5, C) = (a, mean, shift, alpha, beta)
  -> (dw (L..., k, k, Cin, C), db (L..., C))."""
  out = (jax.ShapeDtypeStruct(w.shape, w.dtype), jax.ShapeDtypeStruct(b.shape, b.dtype))
  return jax.ffi.ffi_call(STEM_BACKWARD, out, vmap_method='broadcast_all')(
    x, w, b, g, coeffs, **_stem_attributes(padding, pool, pool_padding, relu_first)
  )
