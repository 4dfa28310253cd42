"""Which network a run trains, and in which dtype: the command's side of
hfa_jax.models.registry (a name or 'module:Class', the run's dtype and regularisers)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from experiments.usage import UsageError
from hfa_jax.loso.config import PAPER_ARCHITECTURE
from hfa_jax.models import registry

if TYPE_CHECKING:
  from experiments.options import Settings


def model_class(spec: str):
  """The class of a model from a registered name or 'module:Class' (hfa_jax.models.registry)."""
  try:
    return registry.model_class(spec)
  except (ImportError, AttributeError, ValueError) as e:
    raise UsageError(
      f"--model {spec}: cannot import it ({e}); use {', '.join(registry.names())} or 'module:Class'"
    ) from None


def resolve_dtype(s: Settings, devices: list) -> tuple[Settings, str]:
  """(`s` with its compute dtype chosen for `devices`, why in words): the dtype setting where
  set, else bfloat16 on a TPU (float32 for a model without a dtype field) and float32
  elsewhere. UsageError for bfloat16 with a model that has no dtype field."""
  cls, dtype = model_class(s.experiment.model), s.training.dtype
  platform = devices[0].platform
  if dtype is not None:
    why = 'as set'
  elif platform != 'tpu':
    dtype, why = 'float32', f'the default on {platform.upper()}, bfloat16 on a TPU'
  elif registry.takes_dtype(cls):
    dtype, why = 'bfloat16', 'the default on a TPU'
  else:
    dtype, why = 'float32', f'{s.experiment.model} has no dtype field to compute in bfloat16'
  if dtype == 'bfloat16' and not registry.takes_dtype(cls):
    raise UsageError(
      f'--dtype bfloat16: {s.experiment.model} has no dtype field (its compute dtype), so it '
      'cannot compute in bfloat16; use --dtype float32, or add a dtype field to the model'
    )
  training = dataclasses.replace(s.training, dtype=dtype)
  return dataclasses.replace(s, training=training), why


# Training settings that are fields of the model (regularisers active in training only).
REGULARISERS = ('drop_path', 'head_dropout')


def architecture(config) -> dict:
  """HFA-Net's architecture settings (PAPER_ARCHITECTURE) that differ from the paper's: a model
  folder's card keeps them to build the model again."""
  return {k: getattr(config, k) for k, v in PAPER_ARCHITECTURE.items() if getattr(config, k) != v}


def build_model(s: Settings, num_classes: int):
  """The model of `s` for `num_classes` classes, computing in s.training.dtype (chosen by
  resolve_dtype): float32 builds it as its class declares, bfloat16 sets its dtype field.
  Parameters and optimiser state stay float32 either way."""
  if s.training.dtype is None:
    raise ValueError('the dtype setting is not chosen yet: call resolve_dtype(s, jax.devices())')
  model_class(s.experiment.model)  # a UsageError if it cannot be imported
  extra = {k: getattr(s.training, k) for k in REGULARISERS if getattr(s.training, k)}
  extra |= architecture(s.training)
  for name in sorted(extra.keys() - registry.fields(model_class(s.experiment.model))):
    raise UsageError(f'--{name}: {s.experiment.model} has no {name}; it applies to hfanet')
  if 'width' in extra:  # HFA-Net's rule: of the registered networks only it has a width
    from hfa_jax.models.hfanet import check_width

    try:
      check_width(extra['width'])
    except ValueError as e:
      raise UsageError(f'--{e}') from None
  try:
    return registry.build(s.experiment.model, num_classes, s.training.dtype, **extra)
  except ValueError as e:
    raise UsageError(f'--dtype {s.training.dtype}: {e}') from None
