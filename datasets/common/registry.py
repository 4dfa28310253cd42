"""The builders and databases by name, the one list of them: where the build command, the
loader, the training commands and the shared machinery find a builder class
(datasets/<name>/<name>_dataset_builder.py) or a database's rules (datasets/<db>/rules.py)."""

from __future__ import annotations

import importlib

NAMES = ('casme2', 'samm', 'smic', 'megc2019', 'megc2019_flow_images')
# The databases recorded on disk as frames; each one's rules are datasets/<db>/rules.py. Each
# has emotions of its own (`--classes native`).
DATABASES = ('casme2', 'samm', 'smic')
# The datasets of precomputed flow images (STSTNet format, min-max scaled to 0..1 per channel
# and image); the others are computed here from frames.
FLOW_IMAGES = ('megc2019_flow_images',)


def builder_class(name: str):
  if name not in NAMES:
    raise ValueError(f'unknown dataset {name!r}; choose one of {", ".join(NAMES)}')
  return importlib.import_module(f'datasets.{name}.{name}_dataset_builder').Builder


def rules(database: str):
  """The module datasets/<database>/rules.py (emotions, spellings, layout, spreadsheet)."""
  if database not in DATABASES:
    raise ValueError(f'unknown database {database!r}')
  return importlib.import_module(f'datasets.{database}.rules')


def with_option(option: str, default) -> list[str]:
  """The builders with a predefined config whose `option` is not `default` (in NAMES order)."""
  return [
    name
    for name in NAMES
    if any(getattr(c, option) != default for c in builder_class(name).BUILDER_CONFIGS)
  ]
