"""How a model's scored output is computed from flow images, in one place for the LOSO fold
program, the re-scoring of a run, the final model and predict:

    x = model_input(images, flow_norm)                  # (B, S, S, 3), normalised per image
    logits = scored_logits(lambda x: model.apply(variables, x, train=False), x, test_flip)
    probs = softmax(np.asarray(logits))                 # NumPy, float64

`flow_norm` and `test_flip` are the recipe's settings (hfa_jax.loso.config.Training).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from hfa_jax.augment import mirror

FLOW_NORMS = ('none', 'median', 'centre')


def model_input(images: jax.Array, flow_norm: str = 'none') -> jax.Array:
  """The images a model sees for the recipe's `flow_norm`: 'none' as given, 'median' and
  'centre' as normalise_flow makes them (training and evaluation alike)."""
  if flow_norm not in FLOW_NORMS:
    raise ValueError(f'flow_norm must be one of {FLOW_NORMS}, got {flow_norm!r}')
  if flow_norm == 'none':
    return images
  return normalise_flow(images, scale=flow_norm == 'median')


def scored_logits(apply: Callable[[jax.Array], jax.Array], x: jax.Array, test_flip: bool):
  """apply(x) (B, C), or with `test_flip` the mean of the logits of x and of its mirror (u
  negated)."""
  logits = apply(x)
  if test_flip:
    logits = (logits + apply(mirror(x))) / 2
  return logits


def softmax(logits) -> np.ndarray:
  """Class probabilities (..., C) of logits, in float64 (NumPy)."""
  z = np.asarray(logits, np.float64)
  z = np.exp(z - z.max(-1, keepdims=True))
  return z / z.sum(-1, keepdims=True)


def normalise_flow(images: jax.Array, scale: bool = True) -> jax.Array:
  """Per-image flow normalisation of (B, S, S, 3) -> same shape: u and v centred on their
  medians (the background's motion) and, with `scale`, divided by the root-mean-square of
  the centred (u, v); strain unchanged. The databases were filmed at different frame rates and
  distances, and the flow images were min-max scaled per image, so 0 is not "no motion"
  and magnitudes differ by database; each image's own statistics are no leak."""
  flat = images[..., :2].reshape(images.shape[0], -1, 2)
  centred = flat - jnp.median(flat, axis=1, keepdims=True)
  rms = jnp.sqrt(jnp.mean(jnp.sum(centred**2, axis=-1), axis=1) / 2)
  uv = centred / jnp.maximum(rms, 1e-6)[:, None, None] if scale else centred
  return jnp.concatenate([uv.reshape(images.shape[:3] + (2,)), images[..., 2:]], axis=-1)
