"""OFF-ApexNet, a shallow CNN on the onset-to-apex optical flow's u and v components.

Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on micro-expression recognition system", Signal
Processing: Image Communication 74:129-139, 2019, doi 10.1016/j.image.2019.02.005 (arXiv
1805.08699, with Liong as first author; MEB's docstring cites it so).
Code: MEB's PyTorch version (github.com/tvaranka/meb, `meb/models/me_networks.py`, class
OffApexNet, commit f731b0a, 2024-05-31; the file last changed in fead619, 2022-11-29), the
network MEB's benchmarks train (no code of the authors' own was found here).

Checked against that class, layer by layer, and numerically (tests/test_offapexnet.py against
tests/fixtures/offapexnet_torch.npz, which tests/fixtures/make_offapexnet_fixture.py writes
from the original class):
- input: u and v only (MEB's notebooks feed `data[:, :2]`, "skip the strain as in original
  publication"); this module takes the project's (u, v, strain) images and drops the strain
  channel itself (2-channel inputs work too);
- conv1 Conv2d(2, 6, 3, padding 1) with bias; ReLU; MaxPool2d(2, 2);
- conv2 Conv2d(6, 16, 3, padding 1) with bias; ReLU; MaxPool2d(2, 2) (the original's forward
  reuses `self.pool`; its `pool2` is the same parameter-free layer, unused);
- flatten in (C, H, W) order; Dropout(p); fc1 Linear(7 * 7 * 16, 1024); ReLU; Dropout(p);
  fc Linear(1024, classes); logits. No BatchNorm. `dropout` p is one value for both (0.5).
Input side: fc1 expects a 7x7 map: 28 to 31 px; MEB feeds 28 x 28 (`resize=28`; its
tests/test_models). This module takes any side from 4 up: fc1's input size follows the side.
Parameters at 28 px, 3 classes: 807,909 (conv1 114, conv2 880, fc1 803,840, fc 3,075), the
original's count. The paper's text was not available here: its own layer sizes, figure and
parameter count are not checked (MEB's version may simplify the paper's network).

Differences from the original:
- NHWC, not NCHW: fc1's kernel rows are in (H, W, C) order; `variables_from_torch` permutes
  the original's weight.
- `dtype` (compute dtype, e.g. bfloat16): convolutions and fc1 compute in it; parameters and
  the last Linear layer (the logits) stay float32.
- Initialisation as PyTorch's defaults (U(+-1/sqrt(fan_in)) weights and biases), drawn from
  JAX's generator.
- Inputs: u, v in [-1, 1] (2 x the per-channel min-max value - 1) at the flow images' native
  28 px; MEB feeds per-channel min-max [0, 1] flows of its own (Sun et al.'s classic+nl-fast,
  not TV-L1) resized to 28 (experiments/configs/offapexnet.py).
- Dropout masks: `layers.Dropout`, each entry kept with probability 1/2 as in PyTorch, from
  one random bit each (nn.Dropout spends a 32-bit word per entry).
- conv1, its ReLU and its pool run as one native pass in CPU programs (`ops.stem.
  conv_relu_pool`; the same function to float32 rounding, tests/test_stem.py).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hfa_jax.models.layers import Dropout
from hfa_jax.models.sssnet import Conv, Linear, linear_kernel_from_torch
from hfa_jax.ops.max_pool import max_pool_disjoint


class OffApexNet(nn.Module):
  """x (B, S, S, 3) flow images (u, v, optical strain; 28 x 28 as published; the strain
  channel is not used) or (B, S, S, 2) (u, v) -> logits (B, classes). Dropout draws from the
  'dropout' rng only when train=True."""

  num_classes: int = 3
  dropout: float = 0.5
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4 or x.shape[-1] not in (2, 3) or min(x.shape[1:3]) < 4:
      raise ValueError(
        f'OffApexNet expects (B, H, W, 3) or (B, H, W, 2) images of side >= 4, got {x.shape}'
      )
    x = x[..., :2]  # u, v: the strain channel is not an input of OFF-ApexNet
    if self.dtype is not None:
      x = x.astype(self.dtype)
    drop = lambda y: Dropout(self.dropout)(y, train)
    y = Conv(6, 3, 1, dtype=self.dtype, relu_pool=2, name='conv1')(x)  # conv, ReLU, pool
    y = max_pool_disjoint(nn.relu(Conv(16, 3, 1, dtype=self.dtype, name='conv2')(y)), 2, 0)
    y = drop(y.reshape(y.shape[0], -1))  # NHWC flatten: (H, W, C) order
    y = nn.relu(Linear(1024, dtype=self.dtype, name='fc1')(y))
    return Linear(self.num_classes, name='fc')(drop(y).astype(jnp.float32))


def variables_from_torch(state_dict: dict) -> dict:
  """The original's state dict (key -> NumPy array) -> {'params'} of OffApexNet (float32;
  no 'batch_stats': the network has no BatchNorm)."""
  sd = {k: np.asarray(v, np.float32) for k, v in state_dict.items()}
  params = {
    name: {'kernel': sd[f'{name}.weight'].transpose(2, 3, 1, 0), 'bias': sd[f'{name}.bias']}
    for name in ('conv1', 'conv2')
  }
  params['fc1'] = {
    'kernel': linear_kernel_from_torch(sd['fc1.weight'], sd['conv2.weight'].shape[0]),
    'bias': sd['fc1.bias'],
  }
  params['fc'] = {'kernel': sd['fc.weight'].T, 'bias': sd['fc.bias']}
  return {'params': jax.tree.map(jnp.asarray, params)}
