"""A tiny stand-in model and a learnable toy dataset for fast trainer tests."""

import os
import signal
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class TinyNet(nn.Module):
  """conv 3x3 (no bias) -> BatchNorm -> ReLU -> global average pool -> Dense; called as
  (x, train). `dtype`: the compute dtype of the conv and BatchNorm (e.g. jnp.bfloat16; None:
  the inputs'); parameters, BatchNorm statistics and the logits stay float32."""

  num_classes: int = 3
  width: int = 8
  dtype: Any = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.dtype is not None:
      x = x.astype(self.dtype)
    # no bias: one before BN only gathers noise
    x = nn.Conv(self.width, (3, 3), use_bias=False, dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
    x = nn.relu(x).mean((1, 2))
    if self.dtype is not None:
      x = x.astype(jnp.float32)
    return nn.Dense(self.num_classes)(x)


class SlowTinyNet(TinyNet):
  """TinyNet that sleeps 0.2 s on the host at every call (tests stop a run mid-epoch)."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    jax.debug.callback(lambda: time.sleep(0.2))
    return TinyNet.__call__(self, x, train)


class SigtermTinyNet(TinyNet):
  """TinyNet whose host callback sends SIGTERM to its own process at its Nth call, N from the
  environment variable TINY_SIGTERM_AT (unset: never): a stop that lands inside a callback, as
  a scheduler's preemption can, without depending on timing."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    jax.debug.callback(_count_and_maybe_terminate)
    return TinyNet.__call__(self, x, train)


_calls = [0]


def _count_and_maybe_terminate():
  _calls[0] += 1
  if _calls[0] == int(os.environ.get('TINY_SIGTERM_AT', '0')):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(1)  # the handler runs here, inside the callback, when JAX calls it on this thread


def toy_data(n_subjects=4, per_subject=6, side=8, num_classes=3, seed=0):
  """Flow-like images whose mean u/v direction depends on the class.

  Returns images (N, side, side, 3) float32, labels (N,), subjects (N,) str.
  """
  rng = np.random.default_rng(seed)
  n = n_subjects * per_subject
  labels = np.arange(n) % num_classes
  subjects = np.repeat([f's{i + 1}' for i in range(n_subjects)], per_subject)
  angles = 2 * np.pi * labels / num_classes
  images = rng.normal(0, 0.5, (n, side, side, 3)).astype(np.float32)
  images[..., 0] += np.cos(angles)[:, None, None]
  images[..., 1] += np.sin(angles)[:, None, None]
  return images, labels, subjects
