"""Dense 2-D cross-correlation (NHWC x HWIO, symmetric padding): XLA's form and the model's.

`conv_reference` is lax.conv_general_dilated. `conv` computes the same with a hand-written
gradient and CPU speed-ups where XLA:CPU is slow (docs/performance.md has the timings):
- the weight gradient from the native kernel (`kernels.conv_weight_grad`; float32, Cout a
  multiple of 16, where it is vectorised), else XLA's (`conv_weight_grad_reference`);
- the input gradient at stride 1 as a forward convolution (`conv_input_grad`);
- at outputs of at most 2x2 (any stride), each direction as one matmul per kernel tap over
  only the positions where the tap meets the image (`small_map_*`: a 3x3 kernel on a 1x1 map
  multiplies 1 tap, not 9 with 8 of zeros; XLA:CPU's convolutions, and at strides above 1
  its base-dilated input gradient, are slow at these shapes);
- under a vmap over stacked models (the folds), each direction as one batched matmul of the
  taps with the models as the matmul's batch (`stacked_*`, chosen by `dispatch.per_model`).
`patch_conv` is the non-overlapping case (kernel == stride, no padding) as one matmul.
"""

import functools

import jax
import jax.numpy as jnp

from hfa_jax import kernels
from hfa_jax.ops import windows
from hfa_jax.ops.dispatch import on_cpu, per_model, transposed


def conv_reference(x: jax.Array, w: jax.Array, stride: int, padding: int, groups: int = 1):
  """XLA's convolution: x (B, H, W, Cin), w (k, k, Cin/groups, Cout) -> (B, Ho, Wo, Cout)."""
  return jax.lax.conv_general_dilated(
    x,
    w,
    (stride, stride),
    ((padding, padding),) * 2,
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    feature_group_count=groups,
  )


@jax.custom_vjp
def patch_conv(x: jax.Array, w: jax.Array) -> jax.Array:
  """conv_reference with kernel == stride, no padding: x (B, H, W, Cin), w (k, k, Cin, Cout)
  -> (B, H/k, W/k, Cout) as patches @ the kernel matrix."""
  k = w.shape[0]
  return windows.patches(x, k) @ w.reshape(k * k * x.shape[-1], w.shape[-1])


def _patch_conv_fwd(x, w):
  return patch_conv(x, w), (x, w)


def _patch_conv_bwd(residuals, g):
  x, w = residuals
  k, cin, cout = w.shape[0], w.shape[2], w.shape[3]
  patches, unpatch = jax.vjp(lambda x: windows.patches(x, k), x)
  dx = unpatch(g @ w.reshape(k * k * cin, cout).T)[0]
  dw = transposed(patches.reshape(-1, k * k * cin)) @ g.reshape(-1, cout)
  return dx, dw.reshape(w.shape)


patch_conv.defvjp(_patch_conv_fwd, _patch_conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv(x: jax.Array, w: jax.Array, stride: int, padding: int) -> jax.Array:
  """Dense cross-correlation: x (B, H, W, Cin), w (k, k, Cin, Cout) -> (B, Ho, Wo, Cout)."""
  return conv_forward(x, w, stride, padding)


def conv_forward(x: jax.Array, w: jax.Array, stride: int, padding: int) -> jax.Array:
  """conv's forward: XLA's convolution, or for outputs of at most 2x2 (a slow case of XLA:CPU)
  a matmul per kernel tap that meets the image (`small_map_forward`)."""
  k = w.shape[0]
  ho, wo = ((n + 2 * padding - k) // stride + 1 for n in x.shape[1:3])
  if ho * wo <= SMALL_MAP:
    return small_map_forward(x, w, stride, padding)
  static = dict(stride=stride, padding=padding)
  return per_model(
    functools.partial(conv_reference, **static), functools.partial(stacked_conv, **static)
  )(x, w)


def _conv_fwd(x, w, stride, padding):
  return conv_forward(x, w, stride, padding), (x, w)


def _conv_bwd(stride, padding, residuals, g):
  x, w = residuals
  if g.shape[1] * g.shape[2] <= SMALL_MAP:
    dx = small_map_input_grad(g, w, stride, padding, x.shape[1:3])
    dw = small_map_weight_grad(x, g, stride, padding, w.shape[0])
    return dx, dw.astype(w.dtype)
  static = dict(stride=stride, padding=padding, shape=x.shape[1:])
  dx = per_model(
    functools.partial(conv_input_grad, **static),
    functools.partial(stacked_input_grad, **static),
  )(g, w)
  static = dict(stride=stride, padding=padding, k=w.shape[0])
  xla = per_model(
    functools.partial(conv_weight_grad_reference, **static),
    functools.partial(stacked_weight_grad, **static),
  )
  if native_weight_grad_pays(g.shape[-1]):
    dw = on_cpu(functools.partial(native_weight_grad, **static), xla, x, g)
  else:
    dw = xla(x, g)
  return dx, dw.astype(w.dtype)


conv.defvjp(_conv_fwd, _conv_bwd)


# Outputs of at most this many positions (2x2) take the small-map forms.
SMALL_MAP = 4


def _tap_ranges(k: int, stride: int, padding: int, size: tuple[int, int], out: tuple[int, int]):
  """For a convolution of a (H, W) = size map to (Ho, Wo) = out: each tap (i, j) that meets
  the image, with the output rows and columns it reaches, ((i, j), (r0, r1), (c0, c1)); output
  row r of tap i reads input row stride * r + i - padding (`_tap_input`)."""

  def reach(t, n, m):  # the outputs r in [0, m) with 0 <= stride * r + t - padding < n
    return max(0, -((t - padding) // stride)), min(m, -((t - padding - n) // stride))

  spans = []
  for i in range(k):
    r0, r1 = reach(i, size[0], out[0])
    for j in range(k):
      c0, c1 = reach(j, size[1], out[1])
      if r0 < r1 and c0 < c1:
        spans.append(((i, j), (r0, r1), (c0, c1)))
  return spans


def _tap_input(rows, cols, stride: int, di: int, dj: int):
  """The index of a (B, H, W, C) input that output rows [r0, r1) and columns [c0, c1) of tap
  (di + padding, dj + padding) read."""
  (r0, r1), (c0, c1) = rows, cols
  return (
    slice(None),
    slice(stride * r0 + di, stride * (r1 - 1) + di + 1, stride),
    slice(stride * c0 + dj, stride * (c1 - 1) + dj + 1, stride),
  )


def small_map_forward(x: jax.Array, w: jax.Array, stride: int, padding: int) -> jax.Array:
  """conv_reference for small maps: x (B, H, W, Cin), w (k, k, Cin, Cout) -> (B, Ho, Wo, Cout),
  the sum over the taps that meet the image of the part of the image each reads times the
  tap's (Cin, Cout) matrix."""
  k = w.shape[0]
  out = tuple((n + 2 * padding - k) // stride + 1 for n in x.shape[1:3])
  y = jnp.zeros((x.shape[0], *out, w.shape[-1]), jnp.result_type(x, w))
  for (i, j), rows, cols in _tap_ranges(k, stride, padding, x.shape[1:3], out):
    part = x[_tap_input(rows, cols, stride, i - padding, j - padding)] @ w[i, j]
    y = y.at[:, rows[0] : rows[1], cols[0] : cols[1]].add(part)
  return y


def small_map_input_grad(g: jax.Array, w: jax.Array, stride: int, padding: int, size) -> jax.Array:
  """d/dx of small_map_forward: g (B, Ho, Wo, Cout), w (k, k, Cin, Cout) -> (B, H, W, Cin)
  with size (H, W): each tap's part of g times the tap's matrix transposed (no kernel copy)."""
  k = w.shape[0]
  dx = jnp.zeros((g.shape[0], *size, w.shape[-2]), jnp.result_type(g, w))
  for (i, j), rows, cols in _tap_ranges(k, stride, padding, size, g.shape[1:3]):
    part = jnp.einsum('bhwo,io->bhwi', g[:, rows[0] : rows[1], cols[0] : cols[1]], w[i, j])
    dx = dx.at[_tap_input(rows, cols, stride, i - padding, j - padding)].add(part)
  return dx


def small_map_weight_grad(x: jax.Array, g: jax.Array, stride: int, padding: int, k: int):
  """d/dw of small_map_forward: x (B, H, W, Cin), g (B, Ho, Wo, Cout) -> (k, k, Cin, Cout);
  zero for the taps that never meet the image."""
  dw = jnp.zeros((k, k, x.shape[-1], g.shape[-1]), jnp.result_type(x, g))
  for (i, j), rows, cols in _tap_ranges(k, stride, padding, x.shape[1:3], g.shape[1:3]):
    xs = x[_tap_input(rows, cols, stride, i - padding, j - padding)]
    gs = g[:, rows[0] : rows[1], cols[0] : cols[1]]
    dw = dw.at[i, j].set(jnp.einsum('bhwi,bhwo->io', xs, gs))
  return dw


def conv_input_grad_reference(g: jax.Array, w: jax.Array, stride: int, padding: int, shape):
  """XLA's d/dx of conv_reference: g (B, Ho, Wo, Cout) -> (B, *shape) with shape (H, W, Cin)."""
  x = jnp.zeros(g.shape[:1] + shape, g.dtype)
  return jax.vjp(lambda x: conv_reference(x, w, stride, padding), x)[1](g)[0]


def conv_input_grad(g: jax.Array, w: jax.Array, stride: int, padding: int, shape):
  """conv_input_grad_reference; at stride 1 as the forward correlation of g with the kernel
  flipped and transposed (an array of its own). XLA's own form reads the kernel transposed
  in place; inside the LOSO's training loop XLA:CPU runs that on its slow convolution path,
  not YNNPACK (one fold's LOSO step at 64 px: 415-490 ms with it, 312-356 ms with this;
  docs/performance.md)."""
  if stride != 1:
    return conv_input_grad_reference(g, w, stride, padding, shape)
  k = w.shape[0]
  # conv_forward: at maps of at most 2x2 its small-map form, not XLA's convolution (375 ms
  # per input gradient of ResNet-18's 512-channel layer at 64 px in the LOSO loop). conv's own
  # backward takes such maps to small_map_input_grad, without the flipped kernel's copy.
  return conv_forward(g, flipped_kernel(w), 1, k - 1 - padding)


def flipped_kernel(w: jax.Array) -> jax.Array:
  """(..., k, k, Cin, Cout) -> (..., k, k, Cout, Cin), the spatial taps reversed: the kernel
  that correlates an output gradient back to the input."""
  return jnp.swapaxes(jnp.flip(w, (-4, -3)), -2, -1)


def conv_weight_grad_reference(x: jax.Array, g: jax.Array, stride: int, padding: int, k: int):
  """XLA's d/dw of conv_reference: x (B, H, W, Cin), g (B, Ho, Wo, Cout) -> (k, k, Cin, Cout)."""
  w = jnp.zeros((k, k, x.shape[-1], g.shape[-1]), x.dtype)
  return jax.vjp(lambda w: conv_reference(x, w, stride, padding), w)[1](g)[0]


# The native weight gradient is vectorised over output channels in blocks of 16; from this
# many output channels on, a count that is not a multiple of 16 runs it on the output
# gradient padded with zero channels (OFF-ApexNet's 6: ~80 ms of XLA's transposed patches
# per step of 40 models at 28 px). Fewer channels (HFA-Net's EMA, 2-4) stay with XLA.
PADDED_WEIGHT_GRAD_FROM = 6


def native_weight_grad_pays(out_channels: int) -> bool:
  """Whether the native weight gradient runs: Cout a multiple of 16, or at least
  PADDED_WEIGHT_GRAD_FROM (padded to one; the kernel's scalar code for a remainder is slower
  than XLA's)."""
  return out_channels % 16 == 0 or out_channels >= PADDED_WEIGHT_GRAD_FROM


def native_weight_grad(x: jax.Array, g: jax.Array, stride: int, padding: int, k: int):
  """kernels.conv_weight_grad with g's channels padded with zeros to a multiple of 16 (and
  the padding's columns of dw dropped): the same sums, in the kernel's vector code."""
  cout = g.shape[-1]
  extra = -cout % 16
  if extra:
    g = jnp.pad(g, [(0, 0)] * (g.ndim - 1) + [(0, extra)])
  dw = kernels.conv_weight_grad(x, g, stride=stride, padding=padding, k=k)
  return dw[..., :cout] if extra else dw


# Many models at once (the folds of a LOSO, stacked along a leading axis F): each
# convolution as one batched matmul of the k*k taps with F as the matmul's batch, rather than
# F separate convolutions (one program whatever F; XLA:CPU merges vmapped convolutions into a
# grouped one, which it runs slowly).


def _stacked_patches(x: jax.Array, k: int, stride: int, padding: int):
  """x (F, B, H, W, C) -> ((F, B*Ho*Wo, k*k*C), (Ho, Wo)): each output position's window,
  tap-major, and the output size."""
  f, b = x.shape[:2]
  taps = windows.taps(x.reshape(f * b, *x.shape[2:]), k, stride, padding)
  patches = jnp.concatenate(taps, axis=-1)  # (F*B, Ho, Wo, k*k*C)
  return patches.reshape(f, -1, patches.shape[-1]), patches.shape[1:3]


# Below this many input channels a stacked convolution is a sum of products, not a matmul.
FEW_INPUT_CHANNELS = 4


def stacked_conv(x: jax.Array, w: jax.Array, stride: int, padding: int) -> jax.Array:
  """conv_reference per model: x (F, B, H, W, Cin), w (F, k, k, Cin, Cout)
  -> (F, B, Ho, Wo, Cout). The native direct convolution where it pays (`native_forward_pays`),
  else a batched matmul of the taps, or for few input channels a sum of products."""
  if native_forward_pays(x, w, stride, padding):
    return kernels.conv_forward(x, w, stride, padding)
  if x.shape[-1] < FEW_INPUT_CHANNELS:
    return stacked_tap_conv(x, w, stride, padding)
  f, b = x.shape[:2]
  patches, (ho, wo) = _stacked_patches(x, w.shape[1], stride, padding)
  out = jax.lax.dot_general(
    patches, w.reshape(f, -1, w.shape[-1]), (((2,), (1,)), ((0,), (0,)))
  )  # (F, B*Ho*Wo, Cout)
  return out.reshape(f, b, ho, wo, w.shape[-1])


def native_forward_pays(x: jax.Array, w: jax.Array, stride: int, padding: int) -> bool:
  """Whether the stacked models' convolution runs as the native direct convolution
  (`kernels.conv_forward`, called only in CPU programs): float32 with the kernels built, and
  outputs of more than 2x2 (at 2x2 and below, with hundreds of channels, each image would
  read all the weights for a handful of positions; the batched matmul reads them once)."""
  k = w.shape[-4]
  ho, wo = ((n + 2 * padding - k) // stride + 1 for n in x.shape[-3:-1])
  return ho * wo > 4 and x.dtype == w.dtype == jnp.float32 and kernels.native_available()


def stacked_tap_conv(x: jax.Array, w: jax.Array, stride: int, padding: int) -> jax.Array:
  """stacked_conv for few input channels (STSTNet's 3): each output channel the sum over the
  k*k taps and the input channels of the tap's channel times its kernel entry, one
  elementwise pass that writes only the output. The matmul form first writes the k*k*Cin-wide
  patches, k*k times the input, for a product with only k*k*Cin terms (the LOSO program of
  40 STSTNets at 28 px: ~1.0-1.4 s for the forward that way, ~0.33 s this way)."""
  f, b = x.shape[:2]
  k, cin = w.shape[1], w.shape[3]
  taps = windows.taps(x.reshape(f * b, *x.shape[2:]), k, stride, padding)  # k*k (F*B, Ho, Wo, Cin)
  ho, wo = taps[0].shape[1:3]
  out = None
  for t, tap in enumerate(taps):
    tap = tap.reshape(f, b, ho, wo, cin)
    for c in range(cin):
      term = tap[..., c : c + 1] * w[:, t // k, t % k, c][:, None, None, None, :]
      out = term if out is None else out + term
  return out


def stacked_input_grad(g: jax.Array, w: jax.Array, stride: int, padding: int, shape):
  """conv_input_grad_reference per model: g (F, B, Ho, Wo, Cout), w (F, k, k, Cin, Cout)
  -> (F, B, *shape): the stride-1 correlation of g spread out by the stride, with each
  model's kernel flipped and transposed."""
  k = w.shape[1]
  lo = k - 1 - padding
  if stride == 1 and lo >= 0 and native_forward_pays(g, w, 1, lo):
    return kernels.conv_forward(g, flipped_kernel(w), 1, lo)  # the padding in the kernel
  spread = (
    [(0, 0, 0)] * 2
    + [
      (lo, n - (stride * (m - 1) + 1) + padding, stride - 1)
      for n, m in zip(shape[:2], g.shape[2:4])
    ]
    + [(0, 0, 0)]
  )
  g = jax.lax.pad(g, jnp.zeros((), g.dtype), spread)
  return stacked_conv(g, flipped_kernel(w), 1, 0)


def stacked_weight_grad(x: jax.Array, g: jax.Array, stride: int, padding: int, k: int):
  """conv_weight_grad_reference per model: x (F, B, H, W, Cin), g (F, B, Ho, Wo, Cout)
  -> (F, k, k, Cin, Cout)."""
  f = x.shape[0]
  patches, _ = _stacked_patches(x, k, stride, padding)
  dw = transposed(patches) @ g.reshape(f, -1, g.shape[-1])  # (F, k*k*Cin, Cout)
  return dw.reshape(f, k, k, x.shape[-1], g.shape[-1])
