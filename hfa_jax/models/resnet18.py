"""ResNet-18 trained from scratch on flow images: the ImageNet baseline of MEB, without the
ImageNet weights.

He, Zhang, Ren, Sun, "Deep residual learning for image recognition", CVPR 2016 (the 18-layer
network of its Table 1). Code: torchvision's `torchvision/models/resnet.py`, `resnet18`
(github.com/pytorch/vision; checked against the torchvision 0.28.0 wheel from PyPI, the
release paired with the torch 2.13.0 installed here), the architecture MEB's benchmarks train
as `timm.models.resnet18(pretrained=True)` or `torchvision.models.resnet18(pretrained=True)`
with a new last layer (github.com/tvaranka/meb, commit f731b0a, "Table 11. Composite
dataset.ipynb"; commit 91d33fb, "RCN-A and SSSNet for megc.ipynb").

Checked against torchvision's class, layer by layer, and numerically (tests/test_resnet18.py
against tests/fixtures/resnet18_torch.npz, which tests/fixtures/make_resnet18_fixture.py
writes from the original class):
- stem: Conv2d(3, 64, 7, stride 2, padding 3, no bias); BatchNorm2d (eps 1e-5, momentum 0.1);
  ReLU; MaxPool2d(3, 2, padding 1);
- layer1-4: two BasicBlocks each, 64, 128, 256, 512 channels, the first block of layers 2-4
  with stride 2 (on its first 3x3 convolution) and a downsample shortcut (Conv2d 1x1 stride 2,
  no bias; BatchNorm2d). A BasicBlock: conv 3x3 (stride), BN, ReLU, conv 3x3, BN, plus the
  shortcut, ReLU;
- global average pool, Linear(512, classes); logits.
Parameters, 3 classes: 11,178,051 at any side (the original's count with `num_classes=3`;
11,689,512 with ImageNet's 1000 classes, the paper's "11.7M" figure as usually quoted; the
paper's Table 1 gives FLOPs, 1.8e9, not parameters). Any side from 1 up: the spatial
arithmetic is PyTorch's (64 px: 32, 16, 16, 8, 4, 2; 28 px: 14, 7, 7, 4, 2, 1).

Differences from the original:
- Trained from scratch: MEB fine-tunes ImageNet weights (timm's or torchvision's); this
  project loads none (`variables_from_torch` converts a state dict, ImageNet's included, if
  one is at hand: the class count of its `fc` is its own).
- NHWC, not NCHW (the pooled features are 1x1, so no flatten-order change).
- `dtype` (compute dtype, e.g. bfloat16): convolutions and BatchNorm's output compute in it;
  parameters, BatchNorm statistics and the last Linear layer (the logits) stay float32.
- Initialisation as torchvision's: convolutions Kaiming normal (fan_out, ReLU gain),
  BatchNorm 1/0, Linear PyTorch's default U(+-1/sqrt(fan_in)) weight and bias
  (`zero_init_residual=False`); drawn from JAX's generator.
- Inputs: the project's flow images, u, v, optical strain in [-1, 1], resized to the recipe's
  side; MEB feeds per-channel min-max [0, 1] flows of its own, without ImageNet's mean and
  standard deviation (experiments/configs/resnet18.py).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hfa_jax.models.layers import BatchNorm, conv, kaiming_fan_out
from hfa_jax.models.sssnet import Linear
from hfa_jax.ops.max_pool import max_pool

WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
  """torchvision's BasicBlock: x (B, H, W, C) -> (B, H/stride, W/stride, planes)."""

  planes: int
  stride: int = 1
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    p, s, dt = self.planes, self.stride, self.dtype
    conv3x3 = lambda stride, name: conv(
      p, 3, stride, 1, bias=False, kernel_init=kaiming_fan_out, name=name, dtype=dt
    )
    out = nn.relu(BatchNorm(name='bn1')(conv3x3(s, 'conv1')(x), train))
    out = BatchNorm(name='bn2')(conv3x3(1, 'conv2')(out), train)
    identity = x
    if s != 1 or x.shape[-1] != p:
      identity = conv(
        p, 1, s, bias=False, kernel_init=kaiming_fan_out, name='downsample_0', dtype=dt
      )(x)
      identity = BatchNorm(name='downsample_1')(identity, train)
    return nn.relu(out + identity)


class ResNet18(nn.Module):
  """x (B, S, S, 3) flow images (u, v, optical strain) -> logits (B, classes). BatchNorm
  statistics live in `batch_stats`; the network has no dropout."""

  num_classes: int = 3
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f'ResNet18 expects (B, H, W, C) images, got shape {x.shape}')
    dt = self.dtype
    if dt is not None:
      x = x.astype(dt)
    x = conv(64, 7, 2, 3, bias=False, kernel_init=kaiming_fan_out, name='conv1', dtype=dt)(x)
    x = max_pool(nn.relu(BatchNorm(name='bn1')(x, train)), 3, 2, 1)
    for i, width in enumerate(WIDTHS, start=1):
      for j in range(2):
        stride = 2 if i > 1 and j == 0 else 1
        x = BasicBlock(width, stride, dtype=dt, name=f'layer{i}_{j}')(x, train)
    x = x.astype(jnp.float32).mean((1, 2))  # AdaptiveAvgPool2d(1), flatten
    return Linear(self.num_classes, name='fc')(x)


def variables_from_torch(state_dict: dict) -> dict:
  """torchvision's resnet18 state dict (key -> NumPy array) -> {'params', 'batch_stats'} of
  ResNet18 (float32): `layer2.0.downsample.1.running_mean` -> batch_stats['layer2_0']
  ['downsample_1']['mean'] and so on. num_batches_tracked is dropped."""
  params, stats = {}, {}
  for key, value in state_dict.items():
    *path, leaf = key.split('.')
    if leaf == 'num_batches_tracked':
      continue
    if path[0].startswith('layer'):  # layer2.0.downsample.1 -> layer2_0 / downsample_1
      path = ['_'.join(path[:2])] + (['_'.join(path[2:])] if len(path) > 2 else [])
    value = np.asarray(value, np.float32)
    if leaf in ('running_mean', 'running_var'):
      tree, leaf = stats, {'running_mean': 'mean', 'running_var': 'var'}[leaf]
    elif value.ndim == 4:  # a convolution's (O, I, k, k)
      tree, leaf, value = params, 'kernel', value.transpose(2, 3, 1, 0)
    elif value.ndim == 2:  # fc (classes, 512)
      tree, leaf, value = params, 'kernel', value.T
    else:  # BatchNorm weight/bias, fc bias
      tree = params
      leaf = 'scale' if leaf == 'weight' else leaf
    for part in path:
      tree = tree.setdefault(part, {})
    tree[leaf] = jnp.asarray(value)
  return {'params': params, 'batch_stats': stats}
