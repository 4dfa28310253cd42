"""Recipes: ml_collections config files, experiments/configs/NAME.py (or a .py file of your
own), whose `get_config()` returns the settings they change (plain overrides of the declared
defaults, experiments.declarations); which recipe a dataset and model choose; how a default
run folder names a recipe.
"""

from __future__ import annotations

import importlib.util
import pathlib

import ml_collections

from experiments.declarations import FLOW_IMAGES, field_names
from experiments.usage import UsageError
from hfa_jax.models import registry

CONFIG_DIR = pathlib.Path(__file__).resolve().parent / 'configs'


def recipe_names() -> list[str]:
  return sorted(p.stem for p in CONFIG_DIR.glob('*.py') if p.stem != '__init__')


def recipe_path(name: str) -> str:
  """How messages name recipe `name`: experiments/configs/NAME.py, or the .py path given."""
  return name if name.endswith('.py') else f'experiments/configs/{name}.py'


def load_recipe(name: str) -> dict:
  """The settings of experiments/configs/NAME.py (or a .py path): its get_config()."""
  path = pathlib.Path(name)
  if path.suffix != '.py':
    path = CONFIG_DIR / f'{name}.py'
  if not path.is_file():
    raise UsageError(f'--config {name}: no file {path} (configs: {", ".join(recipe_names())})')
  spec = importlib.util.spec_from_file_location(f'_loso_config_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise UsageError(f'--config {path} has no get_config()')
  config = module.get_config()
  values = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
  unknown = sorted(set(values) - set(field_names()))
  if unknown:
    raise UsageError(f'--config {path}: unknown settings {unknown}')
  return values


def default_recipe(dataset: str, model: str) -> str:
  """The recipe of a dataset and model when --config is not given."""
  name = dataset.partition(':')[0]
  if model != 'hfanet' and model in registry.names():
    return model  # a baseline's own published recipe, experiments/configs/MODEL.py
  if name == 'synthetic':
    return 'synthetic'
  return 'flow_images' if name in FLOW_IMAGES else 'frames'


def folder_recipe(recipe: str, chosen: str) -> str | None:
  """How a default folder names `recipe`: not at all where it is `chosen` (the one the model
  and data choose), else by its name; a file of your own named like a recipe of
  experiments/configs as NAME.py, so that its runs never share that recipe's folders."""
  path = pathlib.Path(recipe)
  stock = CONFIG_DIR / f'{path.stem}.py'
  if path.suffix == '.py' and stock.is_file() and path.resolve() != stock:
    return path.name
  return None if path.stem == chosen else path.stem
