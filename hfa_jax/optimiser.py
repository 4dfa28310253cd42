"""The optimiser of one model: its settings, declared once, and the optax transformation
they make.

    tx = make_optimizer(OptimConfig(learning_rate=5e-4, total_steps=1000, warmup_steps=100))

`Optimiser` holds the settings a LOSO run declares (hfa_jax.loso.config.Training extends it);
`OptimConfig` adds the run's length in steps. Without clipping, AdamW is hfa_jax.adamw's
one-pass form of optax.adamw, Adam with L2 and SGD with momentum hfa_jax.adam_sgd's of optax's
chains (the same numbers and state); the others are optax's.
"""

from __future__ import annotations

import dataclasses

import optax

from hfa_jax import adam_sgd
from hfa_jax import adamw as adamw_lib
from hfa_jax.settings import setting


@dataclasses.dataclass(frozen=True)
class Optimiser:
  """The optimiser's settings; `OptimConfig` adds the run's length in steps."""

  learning_rate: float = setting(1e-3, 'peak learning rate', above=0, flag='lr')
  schedule: str = setting(
    'cosine', 'learning-rate schedule after warmup', choices=('cosine', 'constant')
  )
  optimizer: str = setting(
    'adamw',
    "'adamw' (decoupled weight decay), 'adam' (+ L2) or 'sgd' (with momentum, + L2)",
    choices=('adamw', 'adam', 'sgd'),
  )
  weight_decay: float = setting(1e-4, 'weight decay', minimum=0)
  grad_clip: float = setting(0.0, 'global-norm gradient clipping (0: off)', minimum=0)
  momentum: float = setting(
    0.9, "with sgd: heavy-ball momentum (PyTorch's SGD, no dampening)", minimum=0, below=1
  )


@dataclasses.dataclass(frozen=True)
class OptimConfig(Optimiser):
  """The optimiser of one model: the `Optimiser` settings (declared once, above) and the run's
  length in steps (warmup, and the cosine decay's)."""

  warmup_steps: int = 0
  total_steps: int = 1000

  @classmethod
  def of(cls, settings: Optimiser, **steps) -> OptimConfig:
    """The OptimConfig of any settings object with the Optimiser fields (a LosoConfig)."""
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(Optimiser)}
    return cls(**fields, **steps)


def make_schedule(cfg: OptimConfig):
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


def make_optimizer(cfg: OptimConfig):
  """AdamW (decoupled weight decay), Adam (+ L2) or SGD with momentum (+ L2, PyTorch's
  torch.optim.SGD without dampening or Nesterov), with the schedule and optional clipping."""
  lr = make_schedule(cfg)
  if cfg.optimizer == 'adamw' and cfg.grad_clip == 0:
    return adamw_lib.adamw(lr, weight_decay=cfg.weight_decay)  # optax.adamw, one pass
  if cfg.optimizer == 'adam' and cfg.grad_clip == 0:  # the chain below, one pass
    return adam_sgd.adam_l2(lr, weight_decay=cfg.weight_decay)
  if cfg.optimizer == 'sgd' and cfg.grad_clip == 0 and cfg.momentum > 0:
    return adam_sgd.sgd(lr, cfg.momentum, weight_decay=cfg.weight_decay)
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
