"""Train state, optimiser, augmentation, train_step and eval_step for one model.

Everything here is functional and jit-able: the fold-parallel LOSO trainer
(`hfa_jax.loso.program`) vmaps these functions over a leading fold axis.

The model is any linen module called as `model.apply(variables, x, train=...)` on
NHWC float32 flow images (B, S, S, 3) with channels (u, v, strain), returning logits
(B, num_classes), with a `batch_stats` collection (e.g. `hfa_jax.HFANet`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from hfa_jax import adamw as adamw_lib
from hfa_jax.loso.config import Optimiser


@dataclasses.dataclass(frozen=True)
class OptimConfig(Optimiser):
  """The optimiser of one model: the `Optimiser` settings (declared once, in
  `hfa_jax.loso.config`) and the run's length in steps (warmup, and the cosine decay's)."""

  warmup_steps: int = 0
  total_steps: int = 1000

  @classmethod
  def of(cls, settings: Optimiser, **steps) -> OptimConfig:
    """The OptimConfig of any settings object with the Optimiser fields (a LosoConfig)."""
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Optimiser)}
    return cls(**fields, **steps)


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


def make_schedule(cfg: OptimConfig) -> optax.Schedule:
  """Linear warmup from 0, then cosine decay to 0 or constant."""
  warmup = max(int(cfg.warmup_steps), 0)
  if cfg.schedule == 'cosine':
    main = optax.cosine_decay_schedule(cfg.learning_rate, max(cfg.total_steps - warmup, 1))
  elif cfg.schedule == 'constant':
    main = optax.constant_schedule(cfg.learning_rate)
  else:
    raise ValueError(f"schedule must be 'cosine' or 'constant', got {cfg.schedule!r}")
  if warmup == 0:
    return main
  ramp = optax.linear_schedule(0.0, cfg.learning_rate, warmup)
  return optax.join_schedules([ramp, main], [warmup])


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
  """AdamW (decoupled weight decay), Adam (+ L2) or SGD with momentum (+ L2, PyTorch's
  torch.optim.SGD without dampening or Nesterov), with the schedule and optional clipping."""
  lr = make_schedule(cfg)
  if cfg.optimizer == 'adamw' and cfg.grad_clip == 0:
    return adamw_lib.adamw(lr, weight_decay=cfg.weight_decay)  # optax.adamw, one pass
  if cfg.optimizer == 'adamw':
    tx = optax.adamw(lr, weight_decay=cfg.weight_decay)
  elif cfg.optimizer == 'adam':
    tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay), optax.adam(lr))
  elif cfg.optimizer == 'sgd':
    sgd = optax.sgd(lr, momentum=cfg.momentum or None)
    tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay), sgd)
  else:
    raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd', got {cfg.optimizer!r}")
  if cfg.grad_clip > 0:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  return tx


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


def mirror(images: jax.Array) -> jax.Array:
  """Flow images (B, S, S, 3) mirrored left-right: the flow then points the other way
  horizontally, so u (channel 0) is negated; v and strain are only mirrored."""
  return images[:, :, ::-1, :] * jnp.array([-1.0, 1.0, 1.0], images.dtype)


def augment(rng: jax.Array, images: jax.Array, flip: bool = True, shift: int = 0) -> jax.Array:
  """Random horizontal flip and shift of flow images (B, S, S, 3) -> same shape.

  A mirrored flow field points the other way horizontally, so a flip also negates
  u (channel 0); v and strain are only mirrored (exact for images centred on 0, as
  the input pipeline gives them). A shift moves the image by up to `shift` pixels in
  each direction, filling with the replicated edge: after a per-image min-max scaling
  0 is not "no motion", so zeros would paint a border that the data never has.
  """
  b, h, w, _ = images.shape
  flip_rng, shift_rng = jax.random.split(rng)
  if flip:
    do = jax.random.bernoulli(flip_rng, 0.5, (b, 1, 1, 1))
    images = jnp.where(do, mirror(images), images)
  if shift > 0:
    padded = jnp.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode='edge')
    offsets = jax.random.randint(shift_rng, (b, 2), 0, 2 * shift + 1)
    crop = lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1]))
    images = jax.vmap(crop)(padded, offsets)
  return images


def warp(rng: jax.Array, images: jax.Array, max_rotation: float, max_scale: float) -> jax.Array:
  """Random small rotations and scalings of flow images (B, S, S, 3) -> same shape, the
  flow vectors turned and scaled with the image.

  Each image is rotated by an angle drawn uniformly within +-`max_rotation` degrees and
  scaled by a factor within 1 +- `max_scale` about its centre (bilinear, edge replicated).
  A point moved by R(a) s carries a motion vector moved the same way, so (u, v), in the
  image's axes (x right, y down), become R(a) s (u, v); the strain channel, a ratio of
  displacements, is only resampled. The vectors turn about each image's median (u, v),
  its background's motion: the flow images' per-image scaling leaves "no motion" there,
  not at 0.
  """
  b, h, w, _ = images.shape
  angle_rng, scale_rng = jax.random.split(rng)
  angle = jnp.deg2rad(jax.random.uniform(angle_rng, (b,), minval=-1, maxval=1) * max_rotation)
  scale = 1.0 + jax.random.uniform(scale_rng, (b,), minval=-1, maxval=1) * max_scale
  rows, cols = jnp.meshgrid(jnp.arange(h) - (h - 1) / 2, jnp.arange(w) - (w - 1) / 2, indexing='ij')

  def one(image, a, s):
    cos, sin = jnp.cos(a), jnp.sin(a)
    # the input point that lands on each output pixel: R(-a) p / s
    src_x = (cos * cols + sin * rows) / s + (w - 1) / 2
    src_y = (-sin * cols + cos * rows) / s + (h - 1) / 2
    sample = lambda c: jax.scipy.ndimage.map_coordinates(c, [src_y, src_x], order=1, mode='nearest')
    u, v, strain = (sample(image[..., c]) for c in range(3))
    mu, mv = jnp.median(image[..., 0]), jnp.median(image[..., 1])
    du, dv = u - mu, v - mv
    u, v = mu + s * (cos * du - sin * dv), mv + s * (sin * du + cos * dv)
    return jnp.stack([u, v, strain], axis=-1).astype(image.dtype)

  return jax.vmap(one)(images, angle, scale)


def mirrored_halves(rng: jax.Array, images: jax.Array) -> jax.Array:
  """Half of the images (B, S, S, 3) -> same shape made of one half of the face and its
  mirror (u negated), left or right half at random: the "Décalcomanie" augmentation of
  Byun et al. (Sensors 2022, 22(17) 6671) for flow images. The split is at the centre
  column (an odd side keeps its centre column)."""
  b, _, w, _ = images.shape
  do_rng, side_rng = jax.random.split(rng)
  do = jax.random.bernoulli(do_rng, 0.5, (b, 1, 1, 1))
  left = jax.random.bernoulli(side_rng, 0.5, (b, 1, 1, 1))
  col = jnp.arange(w).reshape(1, 1, w, 1)
  keep = jnp.where(left, col < w - w // 2, col >= w // 2)  # the kept half, centre included
  halves = jnp.where(keep, images, mirror(images))
  return jnp.where(do, halves, images)


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


def mixup(rng: jax.Array, images: jax.Array, targets: jax.Array, alpha: float):
  """Mixup (Zhang et al., ICLR 2018): each sample mixed with another of the batch.

  images (B, S, S, 3), targets (B, C) -> the same shapes; one weight lam ~ Beta(alpha,
  alpha) per sample, lam >= 0.5 so that each sample stays closest to itself.
  """
  perm_rng, lam_rng = jax.random.split(rng)
  b = images.shape[0]
  lam = jax.random.beta(lam_rng, alpha, alpha, (b,))
  lam = jnp.maximum(lam, 1 - lam)
  perm = jax.random.permutation(perm_rng, b)
  mix = lambda a: (
    lam.reshape((b,) + (1,) * (a.ndim - 1)) * a
    + (1 - lam.reshape((b,) + (1,) * (a.ndim - 1))) * a[perm]
  )
  return mix(images), mix(targets)


def cross_entropy(
  logits: jax.Array,
  labels: jax.Array,
  num_classes: int,
  label_smoothing: float = 0.0,
  class_weights: jax.Array | None = None,
) -> jax.Array:
  """Softmax cross-entropy of logits (B, C) against integer labels (B,) or targets (B, C).

  With `class_weights` (C,), each sample weighs as its target's class and the result
  is the weighted mean (torch.nn.CrossEntropyLoss(weight=...)); else the plain mean.
  """
  targets = labels if labels.ndim == 2 else jax.nn.one_hot(labels, num_classes)
  if label_smoothing > 0:
    targets = optax.smooth_labels(targets, label_smoothing)
  losses = optax.softmax_cross_entropy(logits, targets)
  if class_weights is None:
    return losses.mean()
  w = targets @ class_weights
  return (w * losses).sum() / w.sum()


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
