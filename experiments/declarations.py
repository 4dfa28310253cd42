"""Every setting of `python -m experiments.loso`, declared once, as a field with its default,
help and bounds: `Experiment` (data, model, output) and `hfa_jax.loso.LosoConfig` (training).
Recipes (experiments.recipes) change them; the command line (experiments.options) reads them.
"""

from __future__ import annotations

import dataclasses

import ml_collections

from datasets.common import registry as dataset_registry
from hfa_jax import settings as settings_lib
from hfa_jax.loso.config import LosoConfig
from hfa_jax.settings import setting

# What --dataset takes: the generated synthetic databases, or a dataset built by datasets.build.
DATASETS = ('synthetic', *dataset_registry.NAMES)
FLOW_IMAGES = dataset_registry.FLOW_IMAGES
NATIVE_OK = dataset_registry.DATABASES  # datasets with emotions of their own


@dataclasses.dataclass(frozen=True)
class Experiment:
  """What to train on, which model, where the results go."""

  dataset: str = setting(
    'synthetic',
    'NAME or NAME:CONFIG of a dataset built by python -m '
    'datasets.build (e.g. casme2:size_224_missing_apex_middle), or '
    'synthetic',
  )
  data_dir: str | None = setting(
    None,
    'where datasets are built ($TFDS_DATA_DIR or '
    '~/tensorflow_datasets; synthetic: ./synthetic_data)',
  )
  classes: str = setting(
    'composite',
    "'composite': negative/positive/surprise (MEGC2019); 'native': the database's emotions",
    choices=('composite', 'native'),
  )
  keep_emotions: list | None = setting(None, 'native classes to keep, comma-separated')
  size: int | None = setting(
    None,
    "input side (default: a flow-image dataset's native side, "
    "rounded up to the model's multiple; 224 for frame-based data)",
    minimum=8,
  )
  subjects: list | None = setting(
    None, 'test only these subjects (comma-separated): part of a LOSO'
  )
  model: str = setting(
    'hfanet',
    "'hfanet', a baseline ('rcn_a', 'ststnet'), or 'module:Class' of a linen module "
    'taking num_classes, called as (x, train)',
  )
  out: str | None = setting(
    None,
    'output folder (default runs/loso-DATASET-CLASSES-SIZEpx-'
    'seedSEED, with the model unless HFA-Net, and the subjects of a part)',
  )
  synthetic_subjects: int = setting(4, 'subjects per synthetic database', minimum=1)
  synthetic_seed: int = setting(0, 'seed of the synthetic databases')

  @property
  def dataset_name(self) -> str:
    """'casme2:size_224_missing_apex_middle' -> 'casme2'."""
    return self.dataset.partition(':')[0]

  @property
  def dataset_config(self) -> str | None:
    """'casme2:size_224_missing_apex_middle' -> 'size_224_missing_apex_middle'."""
    return self.dataset.partition(':')[2] or None


DECLARED = (Experiment, LosoConfig)


def field_names() -> list[str]:
  return [n for cls in DECLARED for n in settings_lib.names(cls)]


def declared_defaults() -> dict:
  """Every declared setting at its declared default, by name."""
  return {k: v for cls in DECLARED for k, v in settings_lib.defaults(cls).items()}


def base_config() -> ml_collections.ConfigDict:
  """Every declared setting at its declared default, as an ml_collections ConfigDict (typed
  placeholders where the default is None): a starting point for a config of your own."""
  config = ml_collections.ConfigDict()
  for cls in DECLARED:
    for name, value in settings_lib.defaults(cls).items():
      base, _ = settings_lib._base_type(cls, name)
      config[name] = ml_collections.config_dict.placeholder(base) if value is None else value
  return config
