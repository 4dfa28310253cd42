"""SSSNet, the Shallow Single Stream network: a two-convolution baseline for micro-expression
recognition from flow images.

Varanka, Peng, Zhao, "Micro-expression recognition with noisy labels", IS&T International
Symposium on Electronic Imaging 2021, Human Vision and Electronic Imaging, 33(11), 157-1 -
157-8, doi 10.2352/ISSN.2470-1173.2021.11.HVEI-157 (the reference MEB's docstring gives).
Code: github.com/tvaranka/meb, `meb/models/me_networks.py`, class SSSNet (commit f731b0a,
2024-05-31; the file last changed in fead619, 2022-11-29), the same network as the `Net` of
"RCN-A and SSSNet for megc.ipynb" (commit 91d33fb, 2022-04-01, removed in 8af28c6).

Checked against that class, layer by layer, and numerically (tests/test_sssnet.py against
tests/fixtures/sssnet_torch.npz, which tests/fixtures/make_sssnet_fixture.py writes from the
original class):
- conv1: Conv2d(3, 32, 5), stride 1, no padding, with bias; ReLU; MaxPool2d(3, 3) (no
  padding, floor); BatchNorm2d(32) (eps 1e-5, momentum 0.1); Dropout2d(p) (whole channels);
- conv2: Conv2d(32, 64, 3), stride 1, no padding, with bias; ReLU; MaxPool2d(2, 2);
  BatchNorm2d(64); Dropout2d(p);
- flatten in (C, H, W) order; fc1 Linear(9 * 9 * 64, 256); ReLU; Dropout(p); fc Linear(256,
  classes); logits (the original's `softmax=True` option, off by default, is not offered).
  `dropout` p is the original's one value for all three (default 0.5); `h_dims` its widths.
Input side: fc1 expects a 9x9 map, so the original takes sides 64 to 69 (at 64: conv1 60,
pool 20, conv2 18, pool 9); MEB feeds 64 x 64 (`resize=64` in every SSSNet notebook, and its
tests/test_models). This module takes any side from 16 up: fc1's input size follows the side
(28 px: 3x3x64 = 576; 64 px: 9x9x64 = 5,184).
Parameters at 64 px, 3 classes: 1,349,251 (conv1 2,432, bn1 64, conv2 18,496, bn2 128, fc1
1,327,360, fc 771), the original's count; at 28 px 169,603. The paper's count was not
available here.

Differences from the original:
- NHWC, not NCHW: fc1's kernel rows are in (H, W, C) order; `variables_from_torch` permutes
  the original's weight.
- `dtype` (compute dtype, e.g. bfloat16): convolutions, BatchNorm's output and fc1 compute in
  it; parameters, BatchNorm statistics and the last Linear layer (the logits) stay float32.
- conv1, ReLU and the pool run as one pass on a CPU with the native kernels
  (`ops.stem.conv_relu_pool`: the (B, 60, 60, 32) activation is never written); the same
  function to float32 rounding (tests/test_stem.py).
- Initialisation as PyTorch's defaults (weights and biases U(+-1/sqrt(fan_in)), BatchNorm 1/0)
  but drawn from JAX's generator, so not the same numbers.
- Inputs: the project's flow images, u, v, optical strain in [-1, 1] (2 x the per-channel
  min-max value - 1), resized to the recipe's side; MEB feeds per-channel min-max [0, 1] flows
  of its own (Sun et al.'s classic+nl-fast, not TV-L1) resized to 64 from the cropped face's
  resolution, where this project upsamples its 28 px images (experiments/configs/sssnet.py).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hfa_jax.models.layers import BatchNorm, torch_conv_default
from hfa_jax.ops.conv import conv
from hfa_jax.ops.dense import dense
from hfa_jax.ops import stem
from hfa_jax.ops.max_pool import max_pool_disjoint


def torch_bias(fan_in: int):
  """PyTorch's default bias initialiser of a Conv2d/Linear: U(+-1/sqrt(fan_in))."""
  bound = 1.0 / np.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class Conv(nn.Module):
  """Conv2d(in, features, kernel, padding) with bias, PyTorch's default initialisation:
  x (B, H, W, in) -> (B, H + 2p - k + 1, W + 2p - k + 1, features). Parameters `kernel`
  (k, k, in, features) and `bias`, float32; computes in `dtype` (None: x's)."""

  features: int
  kernel: int
  padding: int = 0
  dtype: jnp.dtype | None = None
  # >0: then ReLU and MaxPool2d(relu_pool, relu_pool), in one pass on CPU, where the input gets
  # no gradient (a first layer's: the data).
  relu_pool: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, c = self.kernel, x.shape[-1]
    w = self.param('kernel', torch_conv_default, (k, k, c, self.features), jnp.float32)
    b = self.param('bias', torch_bias(k * k * c), (self.features,), jnp.float32)
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    if self.relu_pool:
      return stem.conv_relu_pool(x, w, b, padding=self.padding, pool=self.relu_pool, pool_padding=0)
    return conv(x, w, 1, self.padding) + b


class Linear(nn.Module):
  """Linear(in, features) with PyTorch's default initialisation: x (..., in) -> (...,
  features). Parameters `kernel` (in, features) and `bias`, float32; computes in `dtype`."""

  features: int
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n = x.shape[-1]
    w = self.param('kernel', torch_conv_default, (n, self.features), jnp.float32)
    b = self.param('bias', torch_bias(n), (self.features,), jnp.float32)
    x, w, b = nn.dtypes.promote_dtype(x, w, b, dtype=self.dtype)
    return dense(x, w) + b


class SSSNet(nn.Module):
  """x (B, S, S, 3) flow images (u, v, optical strain; 64 x 64 as published) -> logits
  (B, classes). BatchNorm statistics live in `batch_stats`; dropout (Dropout2d on the two
  convolution stages, element dropout before the last layer) draws from the 'dropout' rng
  only when train=True."""

  num_classes: int = 3
  dropout: float = 0.5
  h_dims: tuple[int, int, int] = (32, 64, 256)
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4 or min(x.shape[1:3]) < 16:
      raise ValueError(f'SSSNet expects (B, H, W, C) images of side >= 16, got shape {x.shape}')
    h1, h2, h3 = self.h_dims
    if self.dtype is not None:
      x = x.astype(self.dtype)
    channels = lambda: nn.Dropout(self.dropout, broadcast_dims=(1, 2), deterministic=not train)
    y = Conv(h1, 5, dtype=self.dtype, relu_pool=3, name='conv1')(x)  # ReLU, MaxPool2d(3, 3)
    y = BatchNorm(name='bn1')(y, train)
    y = channels()(y)  # Dropout2d
    y = nn.relu(Conv(h2, 3, dtype=self.dtype, name='conv2')(y))
    y = BatchNorm(name='bn2')(max_pool_disjoint(y, 2, 0), train)  # MaxPool2d(2, 2)
    y = channels()(y)
    y = y.reshape(y.shape[0], -1)  # NHWC flatten: (H, W, C) order
    y = nn.relu(Linear(h3, dtype=self.dtype, name='fc1')(y))
    y = nn.Dropout(self.dropout, deterministic=not train)(y)
    return Linear(self.num_classes, name='fc')(y.astype(jnp.float32))


def linear_kernel_from_torch(weight: np.ndarray, channels: int) -> np.ndarray:
  """A Linear weight (out, C*H*W) that reads a PyTorch (C, H, W) flatten -> the kernel
  (H*W*C, out) that reads this project's NHWC (H, W, C) flatten of the same map (H = W)."""
  out, n = weight.shape
  side = int(round(np.sqrt(n // channels)))
  if channels * side * side != n:
    raise ValueError(f'{n} inputs are not {channels} channels of a square map')
  return weight.reshape(out, channels, side, side).transpose(2, 3, 1, 0).reshape(n, out)


def variables_from_torch(state_dict: dict) -> dict:
  """The original's state dict (key -> NumPy array, as `{k: v.numpy() for k, v in
  model.state_dict().items()}`) -> {'params', 'batch_stats'} of SSSNet (float32).
  num_batches_tracked is dropped (PyTorch's BatchNorm uses it only with momentum=None)."""
  sd = {k: np.asarray(v, np.float32) for k, v in state_dict.items()}
  params, stats = {}, {}
  for name in ('conv1', 'conv2'):
    params[name] = {
      'kernel': sd[f'{name}.weight'].transpose(2, 3, 1, 0),
      'bias': sd[f'{name}.bias'],
    }
  for name in ('bn1', 'bn2'):
    params[name] = {'scale': sd[f'{name}.weight'], 'bias': sd[f'{name}.bias']}
    stats[name] = {'mean': sd[f'{name}.running_mean'], 'var': sd[f'{name}.running_var']}
  channels = sd['conv2.weight'].shape[0]
  params['fc1'] = {
    'kernel': linear_kernel_from_torch(sd['fc1.weight'], channels),
    'bias': sd['fc1.bias'],
  }
  params['fc'] = {'kernel': sd['fc.weight'].T, 'bias': sd['fc.bias']}
  to_jax = lambda tree: jax.tree.map(jnp.asarray, tree)
  return {'params': to_jax(params), 'batch_stats': to_jax(stats)}
