"""The array operations behind `hfa_jax.models.layers`, each as its XLA reference form and
the fast form the model uses (same numbers to float32 rounding; gradients written out).

    attention.py       RMT's softmax(q k^T + mask) v (`attention`, `attention_reference`)
    conv.py            dense convolutions (`conv`, `conv_reference`, `patch_conv`)
    depthwise_conv.py  depthwise convolutions (`depthwise_conv`, `depthwise_conv_reference`)
    max_pool.py        PyTorch's max_pool2d (`max_pool`, `max_pool_disjoint`, `max_pool_reference`)
    dense.py           x @ w of Linear layers (`dense`, `dense_reference`)
    stem.py            conv + ReLU/BatchNorm + disjoint max-pool fused for training
                       (`conv_bn_pool`, `conv_bn_pool_reference`; STSTNet's, RCN-A's first stage)
    dispatch.py        CPU/native dispatch and the per-fold vmap rule the fast forms share
    windows.py         padding, k*k strided window slices, non-overlapping patches

The native CPU kernels they call are `hfa_jax.kernels`; docs/performance.md has the timings.
"""

from hfa_jax.ops import (
  attention,
  conv,
  dense,
  depthwise_conv,
  dispatch,
  max_pool,
  stem,
  windows,
)

__all__ = [
  'attention',
  'conv',
  'dense',
  'depthwise_conv',
  'dispatch',
  'max_pool',
  'stem',
  'windows',
]
