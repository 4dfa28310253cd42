"""The builders by name, and their options, for the build command and the loader."""

from __future__ import annotations

import importlib

NAMES = ('casme2', 'samm', 'smic', 'megc2019', 'megc2019_flow_images')
# Which builders accept which config options.
APEX_OPTION = ('smic', 'megc2019')
MISSING_APEX_OPTION = ('casme2', 'samm', 'megc2019')


def builder_class(name: str):
  if name not in NAMES:
    raise ValueError(f'unknown dataset {name!r}; choose one of {", ".join(NAMES)}')
  return importlib.import_module(f'datasets.{name}.{name}_dataset_builder').Builder
