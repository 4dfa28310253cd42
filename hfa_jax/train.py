"""Train state, loss, train_step and eval_step for one model (its optimiser:
`hfa_jax.optimiser`; its augmentation: `hfa_jax.augment`).

Everything here is functional and jit-able: the fold-parallel LOSO trainer
(`hfa_jax.loso.program`) vmaps these functions over a leading fold axis.

The model is any linen module called as `model.apply(variables, x, train=...)` on
NHWC float32 flow images (B, S, S, 3) with channels (u, v, strain), returning logits
(B, num_classes), with a `batch_stats` collection (e.g. `hfa_jax.HFANet`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from hfa_jax.optimiser import OptimConfig, make_optimizer


class TrainState(train_state.TrainState):
  """flax TrainState + BatchNorm statistics + the fold's PRNG key (raw uint32[2]) + an
  optional exponential moving average of params and batch_stats (`ema`, see update_ema)."""

  batch_stats: Any = None
  rng: jax.Array | None = None
  ema: Any = None

  def apply_gradients(self, *, grads, **kwargs) -> TrainState:
    """flax's apply_gradients; an optimiser with `apply` (hfa_jax.adamw) steps in one call."""
    if not hasattr(self.tx, 'apply'):
      return super().apply_gradients(grads=grads, **kwargs)
    params, opt_state = self.tx.apply(grads, self.opt_state, self.params)
    return self.replace(step=self.step + 1, params=params, opt_state=opt_state, **kwargs)


def create_train_state(
  rng: jax.Array,
  model: nn.Module,
  input_shape,
  tx: OptimConfig | optax.GradientTransformation,
  ema: bool = False,
) -> TrainState:
  """Initialises the model on zeros of `input_shape` (1, S, S, 3) and the optimiser.

  `tx` is an optax transformation or an OptimConfig for `make_optimizer`. States
  that should share a compiled step must share the same `tx` object (it is static
  pytree metadata).

  `rng` is a raw uint32[2] key; it is split into the init key and the training key
  stored in the state (from which every epoch's and step's keys are derived).
  With `ema`, the state also keeps a moving average of the weights (update_ema).
  """
  init_rng, train_rng = jax.random.split(rng)
  variables = model.init(init_rng, jnp.zeros(input_shape, jnp.float32), train=False)
  batch_stats = variables.get('batch_stats', {})
  return TrainState.create(
    apply_fn=model.apply,
    params=variables['params'],
    batch_stats=batch_stats,
    tx=make_optimizer(tx) if isinstance(tx, OptimConfig) else tx,
    rng=train_rng,
    ema=dict(params=variables['params'], batch_stats=batch_stats) if ema else None,
  )


def update_ema(state: TrainState, decay: float) -> TrainState:
  """The weights' exponential moving average after a step (params and BatchNorm
  statistics alike, as timm's ModelEmaV2): ema = d * ema + (1 - d) * current, with
  d = min(decay, (1 + step) / (10 + step)) so that early steps are not averaged with
  the initial weights for long."""
  step = jnp.asarray(state.step, jnp.float32)
  d = jnp.minimum(decay, (1 + step) / (10 + step))
  mix = lambda e, x: d * e + (1 - d) * x
  current = dict(params=state.params, batch_stats=state.batch_stats)
  return state.replace(ema=jax.tree.map(mix, state.ema, current))


def averaged(state: TrainState) -> TrainState:
  """The state with the moving-average weights in place of the current ones (if kept)."""
  if state.ema is None:
    return state
  return state.replace(params=state.ema['params'], batch_stats=state.ema['batch_stats'])


def cross_entropy(
  logits: jax.Array,
  labels: jax.Array,
  num_classes: int,
  label_smoothing: float = 0.0,
  class_weights: jax.Array | None = None,
) -> jax.Array:
  """Softmax cross-entropy of logits (B, C) against integer labels (B,) or targets (B, C).

  With `class_weights` w (C,), torch.nn.CrossEntropyLoss(weight=w, label_smoothing=e) for
  integer labels: each class's log-probability term weighs w[c] under the (smoothed) target,
  and the sum is divided by the weight of each sample's (unsmoothed) target, sum_i w[y_i]; a
  mixed (mixup) target weighs the mix of its classes' weights. Else the plain mean.
  """
  targets = labels if labels.ndim == 2 else jax.nn.one_hot(labels, num_classes)
  norm = None if class_weights is None else (targets @ class_weights).sum()
  if label_smoothing > 0:
    targets = optax.smooth_labels(targets, label_smoothing)
  if class_weights is None:
    return optax.softmax_cross_entropy(logits, targets).mean()
  log_p = jax.nn.log_softmax(logits)
  return -(targets * class_weights * log_p).sum() / norm


def train_step(
  state: TrainState,
  images: jax.Array,
  labels: jax.Array,
  label_smoothing: float = 0.0,
  rng: jax.Array | None = None,
  class_weights: jax.Array | None = None,
) -> tuple[TrainState, dict]:
  """One optimiser step on a batch: images (B, S, S, 3), labels (B,) int or (B, C) targets.

  `rng` feeds the model's 'dropout' stream (models without dropout ignore it);
  `class_weights` (C,) weigh the loss per class (see cross_entropy).
  Returns the new state and {'loss', 'accuracy'} (scalars) of the batch.
  """
  rngs = None if rng is None else {'dropout': rng}

  def loss_fn(params):
    logits, new_vars = state.apply_fn(
      {'params': params, 'batch_stats': state.batch_stats},
      images,
      train=True,
      mutable=['batch_stats'],
      rngs=rngs,
    )
    loss = cross_entropy(logits, labels, logits.shape[-1], label_smoothing, class_weights)
    return loss, (logits, new_vars['batch_stats'])

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  truth = labels.argmax(-1) if labels.ndim == 2 else labels
  accuracy = (logits.argmax(-1) == truth).mean()
  return state, {'loss': loss, 'accuracy': accuracy}


def eval_step(state: TrainState, images: jax.Array) -> jax.Array:
  """Logits (B, C) of images (B, S, S, 3) with BatchNorm running statistics."""
  return state.apply_fn(
    {'params': state.params, 'batch_stats': state.batch_stats}, images, train=False
  )


def precise_batch_stats(state: TrainState, images: jax.Array) -> Any:
  """BatchNorm statistics of `images` (B, S, S, 3) under the current parameters.

  Few training steps leave the running averages far from the population statistics
  ("precise BN", Wu & Johnson 2021, recomputes them). A running statistic is updated
  as new = k * old + (1 - k) * batch whatever the layer's momentum, so two train-mode
  passes, from old = 0 and from old = 1, give the batch statistic of every layer:
  k = r1 - r0 (one value per layer, the median guards against rounding) and
  batch = r0 / (1 - k). Uses training images only, so evaluation stays honest.
  """

  def run(fill):
    stats = jax.tree.map(lambda s: jnp.full_like(s, fill), state.batch_stats)
    _, new = state.apply_fn(
      {'params': state.params, 'batch_stats': stats},
      images,
      train=True,
      mutable=['batch_stats'],
      rngs={'dropout': jax.random.PRNGKey(0)},
    )
    return new['batch_stats']

  def solve(r0, r1):
    keep = jnp.median(r1 - r0)
    return jnp.where(jnp.abs(1 - keep) > 1e-6, r0 / (1 - keep), r0)

  return jax.tree.map(solve, run(0.0), run(1.0))
