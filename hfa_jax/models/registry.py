"""The networks by name: what `--model NAME`, a model folder's card, the benchmarks and the
comparison command build.

    model = registry.build('ststnet', num_classes=3)                  # a linen module
    model = registry.build('hfanet', 3, dtype='bfloat16', drop_path=0.1)
    registry.model_class('hfanet'), registry.names()

Every network is a linen module taking `num_classes`, called as `model.apply(variables, x,
train=...)` on flow images x (B, S, S, 3) (u, v, optical strain), with BatchNorm statistics in
`batch_stats` where it has any and dropout drawing from the 'dropout' rng. A network with a
`dtype` field computes in that dtype (parameters stay float32); one whose input side must be a
multiple of something says so in a `side_multiple` class attribute.

Adding a network: its module in hfa_jax/models/NAME.py, one line in MODELS below, and its
recipe in experiments/configs/NAME.py.
"""

from __future__ import annotations

import dataclasses
import importlib

import flax.linen as nn
import jax.numpy as jnp

# name -> 'module:Class'
MODELS = {
  'hfanet': 'hfa_jax.models.hfanet:HFANet',
  'rcn_a': 'hfa_jax.models.rcn_a:RCNA',
  'ststnet': 'hfa_jax.models.ststnet:STSTNet',
  'sssnet': 'hfa_jax.models.sssnet:SSSNet',
  'offapexnet': 'hfa_jax.models.offapexnet:OffApexNet',
  'resnet18': 'hfa_jax.models.resnet18:ResNet18',
  'htnet': 'hfa_jax.models.htnet:HTNet',
}


def names() -> list[str]:
  """The registered networks' names."""
  return list(MODELS)


def model_class(spec: str) -> type[nn.Module]:
  """The linen class of a registered name or of 'module:Class' (ImportError, AttributeError,
  or ValueError naming the registered networks)."""
  module_name, _, attr = MODELS.get(spec, spec).partition(':')
  if not attr:
    raise ValueError(f"{spec!r} is not one of {', '.join(MODELS)} nor 'module:Class'")
  return getattr(importlib.import_module(module_name), attr)


def fields(cls) -> set[str]:
  """The names of a linen class's fields (its constructor's arguments)."""
  return {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()


def takes_dtype(cls) -> bool:
  """Whether the class has a `dtype` field (its compute dtype), as HFANet and STSTNet have."""
  return 'dtype' in fields(cls)


def build(spec: str, num_classes: int, dtype: str | None = None, **extra) -> nn.Module:
  """The network `spec` (see model_class) for `num_classes` classes. `dtype` None or
  'float32' builds it as its class declares; 'bfloat16' sets its dtype field (ValueError for
  a class without one). `extra`: more fields (ValueError naming one the class lacks)."""
  cls = model_class(spec)
  for name in sorted(extra.keys() - fields(cls)):
    raise ValueError(f'{spec} has no field {name!r}')
  if dtype not in (None, 'float32'):
    if not takes_dtype(cls):
      raise ValueError(f'{spec} has no dtype field to compute in {dtype}; use float32')
    extra['dtype'] = getattr(jnp, dtype)
  return cls(num_classes=num_classes, **extra)
