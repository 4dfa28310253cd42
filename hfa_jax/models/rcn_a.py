"""RCN-A, a recurrent convolutional network with a parameter-free attention unit, for
micro-expression recognition from optical flow.

Xia, Peng, Khor, Feng, Zhao, "Revealing the Invisible with Model and Data Shrinking for
Composite-database Micro-expression Recognition", IEEE Transactions on Image Processing 29,
2020 (arXiv:2006.09674). Code: github.com/xiazhaoqiang/ParameterFreeRCNs-MicroExpressionRec
(commit 0c516cb, 2020-12-11): `MeNets.py` (classes RclBlock, SpatialAttentionBlock_P, RCN_A)
and the training script `ModelTrain_Final.py`. MEB (github.com/tvaranka/meb, commit f731b0a,
`meb/models/RCNs.py`) carries the same code, reformatted, with the classifier named `fc`.

Checked against MeNets.py's RCN_A with `model_version=3` (the script's default and the only
version whose forward runs: versions 1 and 2 call the attention unit with one argument of
its three), `num_input=3`, `num_layers=1` (what the script passes):
- conv1: Conv2d(3, F, 5, stride 1, padding 0, bias) -> BatchNorm2d -> ReLU ->
  MaxPool2d(2, 2) -> Dropout(0.5);
- attention (SpatialAttentionBlock_P): the conv1 output (after its dropout) average-pooled
  to P x P (AdaptiveAvgPool2d); for each class k, the classifier's weight row k read as a
  (F, P, P) map times those features, averaged over channels (B, 1, P, P), shifted to a
  minimum of 0 and divided by its maximum per sample; the mean over the classes;
- `num_layers` recurrent convolution layers (RclBlock): y = ReLU(BN(Conv1x1(x))), then the
  same Conv3x3 (padding 1) + BN + ReLU applied twice, y = rr(x + y), y = rr(x + y) (one
  feed-forward and two recurrent steps sharing their weights and their BatchNorm, whose
  running statistics therefore move twice per training pass), MaxPool2d(2, 2), Dropout(0.5);
- AdaptiveAvgPool2d(P) of the features times the attention map (broadcast over channels),
  flatten in (C, H, W) order, Linear(P * P * F -> classes), logits.
The attention unit has no parameters of its own: it reuses the classifier's weights (no
detach, so the classifier also learns through it).

Sizes: ModelTrain_Final.py's defaults are F = 64 feature maps and pool side P = 7 (its README
example runs F = 32, P = 5 with a script not in the repository; MEB keeps the class default
P = 5 with F = 64). This module defaults to the training script's (64, 7). The published
input side is 60 px (MEB's benchmark notebook "Optical flow networks.ipynb" resizes the flow
to 60 for RCN-A alone; 28 for STSTNet, 64 for SSSNet): 60 -> conv 56 -> pool 28 -> RCL pool
14 -> average pool 7 (2x2 windows), the attention's 28 -> 7 (4x4 windows). Any side from 8
works (PyTorch's adaptive windows are reproduced exactly, also where they overlap, e.g.
6 -> 7 at 28 px). The paper's text was not available when this was written: its own
parameter count and input side are not checked here.

Parameters at 60 px, 3 classes (any side: none depends on it), F = 64, P = 7: 55,747, as
the PyTorch class: conv1 4,864, its BN 128, the 1x1 conv 4,160, its BN 128, the 3x3 conv
36,928, its BN 128, classifier 7 * 7 * 64 * 3 + 3 = 9,411. (F = 64, P = 5: 51,139;
F = 32, P = 5: 15,331.) Parity with the PyTorch class (MeNets.py and MEB's copy give the
same numbers) on the same weights at 60 px, float32: eval and train-mode logits within
1.1e-6 (relative 9e-6), BatchNorm running statistics after a training pass within 1e-6,
the gradients of conv1's and the classifier's weights within 6e-6 of their largest entry:
tests/test_rcn_a.py, fixture made by tests/fixtures/make_rcn_a_fixture.py.

Differences from the original:
- NHWC instead of NCHW; the classifier's kernel (P * P * F, classes) flattens (H, W, C), so
  `variables_from_torch` permutes PyTorch's (classes, F * P * P) weight (and the attention
  reads the same kernel in that order): the same numbers.
- The attention's division by each map's maximum is guarded: where a class map is flat
  (maximum 0 after the shift, e.g. when every pooled conv1 feature is 0) the original
  divides 0 by 0 and returns NaN logits; here that map is 0. Elsewhere the division is the
  original's.
- Gradients through the attention's minimum and maximum, and the max-pools' on ties, share
  the gradient among tied entries (JAX) where PyTorch gives it to one.
- Initialisation follows the original's code: convolution weights Kaiming normal (fan-out,
  ReLU gain, untruncated), convolution biases PyTorch's default U(+-1/sqrt(fan_in)) (the
  original's init loop leaves them), BatchNorm 1/0, classifier weight N(0, 0.01), bias 0.
  Same distributions, other random numbers.
- Dropout masks: `layers.Dropout`, each entry kept with probability 1/2 as in PyTorch, from
  one random bit each (nn.Dropout spends a 32-bit word per entry; the bits were ~10 % of the
  training step).
- `dtype` (compute dtype, e.g. bfloat16) is this project's: convolutions run in it; BatchNorm
  statistics, the attention, the classifier and the logits stay float32.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hfa_jax.models.layers import (
  BatchNorm,
  BatchNormVariables,
  Dropout,
  kaiming_fan_out,
  running_statistics,
)
from hfa_jax.ops import stem
from hfa_jax.ops.conv import conv
from hfa_jax.ops.max_pool import max_pool_disjoint

RECURRENT_STEPS = 2  # RclBlock.forward applies rrconv twice


def _torch_bias_init(fan_in: int):
  """PyTorch's default Conv2d bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def adaptive_windows(n: int, p: int) -> np.ndarray:
  """(p, n) averaging matrix of PyTorch's adaptive_avg_pool over one axis of length n: row i
  averages entries floor(i n / p) .. ceil((i + 1) n / p) - 1."""
  a = np.zeros((p, n), np.float32)
  for i in range(p):
    start, end = (i * n) // p, -(-((i + 1) * n) // p)
    a[i, start:end] = 1.0 / (end - start)
  return a


def adaptive_avg_pool(x: jax.Array, p: int) -> jax.Array:
  """AdaptiveAvgPool2d((p, p)): (B, H, W, C) -> (B, p, p, C)."""
  rows = jnp.asarray(adaptive_windows(x.shape[1], p), x.dtype)
  cols = jnp.asarray(adaptive_windows(x.shape[2], p), x.dtype)
  x = jnp.einsum('ph,bhwc->bpwc', rows, x)
  return jnp.einsum('qw,bpwc->bpqc', cols, x)


def attention_map(features: jax.Array, kernel: jax.Array) -> jax.Array:
  """SpatialAttentionBlock_P: features (B, P, P, F) (the pooled conv1 output), kernel
  (P * P * F, classes) the classifier's -> (B, P, P, 1), each class's map min-max scaled to
  [0, 1] per sample, then averaged over the classes."""
  b, p, _, f = features.shape
  weights = kernel.T.reshape(-1, p, p, f)  # (classes, P, P, F): each row in (H, W, C) order
  cam = jnp.einsum('bpqc,kpqc->bkpq', features, weights) / f  # mean over channels
  cam = cam - cam.min((2, 3), keepdims=True)
  top = cam.max((2, 3), keepdims=True)
  cam = cam / jnp.maximum(top, jnp.finfo(cam.dtype).tiny)  # a flat map: 0, not 0/0
  return cam.mean(1)[..., None]


class _ConvParams(nn.Module):
  """The kernel (k, k, in, features) and bias of a Conv2d, the original's init."""

  features: int
  kernel: int

  @nn.compact
  def __call__(self, channels: int):
    k = self.kernel
    w = self.param('kernel', kaiming_fan_out, (k, k, channels, self.features), jnp.float32)
    b = self.param('bias', _torch_bias_init(k * k * channels), (self.features,), jnp.float32)
    return w, b


class _Conv(nn.Module):
  """Conv2d(in, features, kernel, stride 1, padding) with bias, the original's init."""

  features: int
  kernel: int
  padding: int = 0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, c = self.kernel, x.shape[-1]
    w = self.param('kernel', kaiming_fan_out, (k, k, c, self.features), jnp.float32)
    b = self.param('bias', _torch_bias_init(k * k * c), (self.features,), jnp.float32)
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    return conv(x, w, 1, self.padding) + b


class RclBlock(nn.Module):
  """One recurrent convolution layer: (B, H, W, F) -> (B, H // 2, W // 2, F)."""

  features: int
  dropout: float = 0.5
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = _Conv(self.features, 1, 0, self.dtype, name='ff_conv')(x)
    y = nn.relu(BatchNorm(name='ff_bn')(y, train))
    rr_conv = _Conv(self.features, 3, 1, self.dtype, name='rr_conv')
    rr_bn = BatchNorm(name='rr_bn')  # shared by the steps: its statistics move at each
    for _ in range(RECURRENT_STEPS):
      y = nn.relu(rr_bn(rr_conv(x + y), train))
    y = max_pool_disjoint(y, 2, 0)
    return Dropout(self.dropout)(y, train)


class _DenseParams(nn.Module):
  """The classifier's kernel (inputs, classes) and bias, declared before the attention
  unit reads the kernel."""

  inputs: int
  classes: int

  @nn.compact
  def __call__(self):
    kernel = self.param(
      'kernel', nn.initializers.normal(0.01), (self.inputs, self.classes), jnp.float32
    )
    return kernel, self.param('bias', nn.initializers.zeros, (self.classes,), jnp.float32)


class RCNA(nn.Module):
  """x (B, S, S, 3) flow images (u, v, optical strain; 60 px published) -> logits (B, classes).

  Any side from 8. BatchNorm statistics live in `batch_stats` (PyTorch's momentum 0.1 and
  unbiased running variance); dropout draws from the 'dropout' rng when train=True.
  `featuremaps` F and `pool_size` P are the original's `featuremaps` and `pool_size`;
  `num_layers` its number of recurrent convolution layers. `dtype` is the compute dtype;
  parameters, BatchNorm statistics, the attention and the logits stay float32.
  """

  num_classes: int = 3
  featuremaps: int = 64
  pool_size: int = 7
  num_layers: int = 1
  dropout: float = 0.5
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    smallest = 4 + 2 ** (self.num_layers + 1)  # conv 5x5 (-4), then a 2x2 pool per stage
    if x.ndim != 4 or min(x.shape[1:3]) < smallest:
      raise ValueError(f'RCNA expects (B, H, W, C) images of side >= {smallest}, got {x.shape}')
    f, p = self.featuremaps, self.pool_size
    if self.dtype is not None:
      x = x.astype(self.dtype)
    kernel, bias = _DenseParams(p * p * f, self.num_classes, name='classifier')()
    if train:  # conv -> BatchNorm -> ReLU -> MaxPool2d(2, 2) in one pass on CPU (ops.stem)
      w, b = _ConvParams(f, 5, name='conv1')(x.shape[-1])
      scale, shift, mean, var = BatchNormVariables(f, name='bn1')()
      x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
      y, batch_mean, batch_var = stem.conv_bn_pool(
        x, w, b, scale, shift, padding=0, pool=2, pool_padding=0, relu_first=False
      )
      if not self.is_initializing():
        n = stem.positions(x.shape, 5, 0)
        mean.value, var.value = running_statistics(batch_mean, batch_var, n, mean.value, var.value)
    else:
      y = _Conv(f, 5, 0, self.dtype, name='conv1')(x)
      y = max_pool_disjoint(nn.relu(BatchNorm(name='bn1')(y, train)), 2, 0)
    y = Dropout(self.dropout)(y, train)
    attention = attention_map(adaptive_avg_pool(y.astype(jnp.float32), p), kernel)
    for i in range(self.num_layers):
      y = RclBlock(f, self.dropout, self.dtype, name=f'rcl{i}')(y, train)
    y = adaptive_avg_pool(y.astype(jnp.float32), p) * attention
    return y.reshape(y.shape[0], -1) @ kernel + bias  # NHWC flatten: (H, W, C) order


def variables_from_torch(state_dict: dict) -> dict:
  """The original's state dict (MeNets.RCN_A or MEB's RCN_A; NumPy arrays or anything
  np.asarray takes) -> {'params', 'batch_stats'} of RCNA with the same numbers.

  conv `weight` (O, I, k, k) -> `kernel` (k, k, I, O); BatchNorm weight/bias -> scale/bias,
  running_mean/var -> batch_stats mean/var (num_batches_tracked is dropped: momentum is set);
  the classifier (`classifier` in MeNets.py, `fc` in MEB) weight (classes, F * P * P) in
  PyTorch's (C, H, W) flatten -> kernel (P * P * F, classes) in NHWC's (H, W, C).
  """
  sd = {k.removeprefix('module.'): np.asarray(v, np.float32) for k, v in state_dict.items()}
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  params, stats = {}, {}

  def conv_(prefix):
    w = sd[f'{prefix}.weight'].transpose(2, 3, 1, 0)
    return {'kernel': f32(w), 'bias': f32(sd[f'{prefix}.bias'])}

  def bn(prefix, name, into):
    into[name] = {'scale': f32(sd[f'{prefix}.weight']), 'bias': f32(sd[f'{prefix}.bias'])}
    return {'mean': f32(sd[f'{prefix}.running_mean']), 'var': f32(sd[f'{prefix}.running_var'])}

  params['conv1'] = conv_('conv1.0')
  stats['bn1'] = bn('conv1.1', 'bn1', params)
  layers = sorted({int(k.split('.')[1]) for k in sd if k.startswith('rcls.')})
  for i in layers:
    block, block_stats = {}, {}
    for step, name in (('ffconv', 'ff'), ('rrconv', 'rr')):
      block[f'{name}_conv'] = conv_(f'rcls.{i}.{step}.0')
      block_stats[f'{name}_bn'] = bn(f'rcls.{i}.{step}.1', f'{name}_bn', block)
    params[f'rcl{i}'], stats[f'rcl{i}'] = block, block_stats
  head = 'classifier' if 'classifier.weight' in sd else 'fc'
  w = sd[f'{head}.weight']
  classes, f = w.shape[0], sd['conv1.0.weight'].shape[0]
  p = int(round(math.sqrt(w.shape[1] // f)))
  kernel = w.reshape(classes, f, p, p).transpose(2, 3, 1, 0).reshape(-1, classes)
  params['classifier'] = {'kernel': f32(kernel), 'bias': f32(sd[f'{head}.bias'])}
  return {'params': params, 'batch_stats': stats}
