"""STSTNet, a shallow three-stream CNN baseline for micro-expression recognition from flow.

Liong, Gan, See, Khor, Huang, "Shallow Triple Stream Three-dimensional CNN (STSTNet) for
Micro-expression Recognition", IEEE FG 2019 (arXiv:1902.03634).
Code: github.com/christy1206/STSTNet.

Checked against that repository (commit 1afb56e): the PyTorch port `main.py` (class STSTNet,
lines 15-50), the MATLAB layer graph `STSTNet.mat` (the authors' first version) and the
paper's Table I:
- three 3x3 convolutions over all input channels, 3, 5 and 8 filters, stride 1, with bias
  (main.py 18-20, Table I); padding 2 in main.py, 'same' (1) in STSTNet.mat and Table I: both
  give 10x10 after the max-pool at 28x28. `conv_padding` picks (default 2, main.py's);
- per stream: conv -> ReLU -> BatchNorm2d (PyTorch defaults: eps 1e-5, momentum 0.1) ->
  max-pool 3x3 stride 3 padding 1 -> dropout p=0.5 (main.py 21-27, 31-45; STSTNet.mat lists
  conv_1, relu_1, batchnorm_1, maxpool_6, dropout_1 in this order; Table I omits BN/dropout);
- streams concatenated (3 + 5 + 8 = 16 channels), average pool 2x2 stride 2 no padding
  (floor), flatten, one Linear 5*5*16 = 400 -> classes, logits (main.py 26-28, 46-49, Table I).
  Per-stream dropout equals one dropout on the concatenation (independent per element).
Parameters at 28x28, 3 classes: 1,683 (convs 448, BatchNorm 32, Linear 1,203). The paper
(Sec. IV, Table V) reports 1670 (0.00167 million), which this count does not reproduce
(without BatchNorm it would be 1,651).

Dropout masks: `layers.Dropout`, each entry kept with probability 1/2 as in PyTorch, from one
random bit each (nn.Dropout spends a 32-bit word per entry: ~20 % of the training step of 120
folds with the fused first stage).

Initialisation: convolution and Linear weights as PyTorch's defaults (U(+-1/sqrt(fan_in)));
biases zero (PyTorch draws them U(+-1/sqrt(fan_in)); MATLAB starts them at zero).

Loading the published weights (STSTNet_Weights/*.pth): conv `weight` (O, I, 3, 3) ->
`kernel` (3, 3, I, O); BatchNorm weight/bias/running_mean/running_var -> scale/bias and
batch_stats mean/var; fc.weight (classes, 400) flattens PyTorch's (C, H, W) = (16, 5, 5)
while this module flattens NHWC's (H, W, C), so kernel = W.reshape(classes, 16, 5, 5)
.transpose(2, 3, 1, 0).reshape(400, classes). main.py feeds raw cv2.imread pixels (0-255,
BGR channel order) of the flow images; the MATLAB version zero-centres on the mean image.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from hfa_jax.models.layers import (
  BatchNormVariables,
  Dropout,
  batch_norm,
  running_statistics,
  torch_conv_default,
)
from hfa_jax.ops import stem
from hfa_jax.ops.conv import conv
from hfa_jax.ops.max_pool import max_pool_disjoint

STREAM_WIDTHS = (3, 5, 8)
EDGES = (0, 3, 8, 16)  # each stream's channels in the 16: EDGES[i]:EDGES[i + 1]


def avg_pool_2x2(x: jax.Array) -> jax.Array:
  """PyTorch's AvgPool2d(2, 2) (floor mode): (B, H, W, C) -> (B, H//2, W//2, C)."""
  b, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean((2, 4))


class _ConvParams(nn.Module):
  """The kernel (3, 3, C, width) and bias of one stream's 3x3 convolution (as Conv2d's)."""

  width: int

  @nn.compact
  def __call__(self, channels: int):
    kernel = self.param('kernel', torch_conv_default, (3, 3, channels, self.width), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (self.width,), jnp.float32)
    return kernel, bias


class STSTNet(nn.Module):
  """x (B, H, W, C) flow image (u, v, optical strain; 28x28 natively) -> logits (B, classes).

  Any side from 4 up: the Linear layer's input size follows the side (at 28/32/64: 5x5,
  6x6, 11x11 maps of 16 channels). BatchNorm statistics live in `batch_stats`; dropout
  draws from the 'dropout' rng when train=True. `dtype` is the compute dtype; parameters,
  BatchNorm statistics and the logits stay float32. The three streams' convolutions (same
  input, same shape) run as one of 16 filters; each keeps its own parameters.
  """

  num_classes: int = 3
  dropout: float = 0.5
  conv_padding: int = 2
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f'STSTNet expects (B, H, W, C) images, got shape {x.shape}')
    if self.dtype is not None:
      x = x.astype(self.dtype)
    params = [
      _ConvParams(w, name=f'conv{i}')(x.shape[-1]) for i, w in enumerate(STREAM_WIDTHS, start=1)
    ]
    kernel = jnp.concatenate([k for k, _ in params], -1)
    bias = jnp.concatenate([b for _, b in params], -1)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    # Each stream's BatchNorm (bn1-bn3, own variables) normalises its own channels: one
    # normalisation of all 16 channels computes the three (per channel, so the same numbers)
    # without splitting the largest activation into three.
    streams = [
      BatchNormVariables(w, name=f'bn{i}')() for i, w in enumerate(STREAM_WIDTHS, start=1)
    ]  # (scale, bias, mean, var) of each
    scale, shift = (jnp.concatenate([s[i] for s in streams]) for i in (0, 1))
    mean, var = (jnp.concatenate([s[i].value for s in streams]) for i in (2, 3))
    if train:
      # conv -> ReLU -> BatchNorm -> MaxPool2d(3, 3, padding=1) in one pass in CPU programs
      # (ops.stem): the (B, H', W', 16) activation is the program's largest.
      y, batch_mean, batch_var = stem.conv_bn_pool(
        x,
        kernel,
        bias,
        scale,
        shift,
        padding=self.conv_padding,
        pool=3,
        pool_padding=1,
        relu_first=True,
      )
      n = stem.positions(x.shape, 3, self.conv_padding)
      mean, var = running_statistics(batch_mean, batch_var, n, mean, var)
      if not self.is_initializing():
        for (_, _, stream_mean, stream_var), a, b in zip(streams, EDGES, EDGES[1:]):
          stream_mean.value, stream_var.value = mean[a:b], var[a:b]
    else:
      y = nn.relu(conv(x, kernel, 1, self.conv_padding) + bias)  # (B, H', W', 16)
      y, _, _ = batch_norm(y, scale, shift, mean, var, train)
      y = max_pool_disjoint(y, 3, 1)  # MaxPool2d(3, 3, padding=1)
    y = Dropout(self.dropout)(y, train)
    y = avg_pool_2x2(y)
    if y.shape[1] == 0 or y.shape[2] == 0:
      raise ValueError(f'STSTNet: input {x.shape[1:3]} is too small (pooled map {y.shape[1:3]})')
    y = y.astype(jnp.float32).reshape(y.shape[0], -1)  # NHWC flatten: (H, W, C) order
    return nn.Dense(self.num_classes, kernel_init=torch_conv_default, name='fc')(y)
