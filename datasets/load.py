"""Read a built dataset into NumPy arrays, without TensorFlow; the LOSO input pipeline.

    from datasets.load import load_arrays, training_data
    data = load_arrays('samm', size=64)   # {'flow': (N, 64, 64, 3) float32, 'subject': str ...}
    data = training_data('megc2019_flow_images', size=32)   # a TrainingData
    result = hfa_jax.run_loso(data.arrays, config)           # its checked LosoData

Flows come out with u and v signed (a horizontal mirror negates u), whatever the dataset:
the flow-image datasets store their PNGs' 0..1 values, which the loader maps to -1..1.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import re

import numpy as np

from hfa_jax.loso.data import LosoData
from hfa_jax.model_input import flow_images_signed, resize

from datasets.common import registry

TEXT = ('subject', 'sample', 'database', 'action_units')
FLOW_IMAGES = registry.FLOW_IMAGES
COMPOSITE = ('negative', 'positive', 'surprise')
MEGC2019_SAMPLES = 442


class DatasetNotBuiltError(FileNotFoundError):
  """The dataset is not in data_dir; the message is the command that builds it."""


APEX = ('middle', 'max_motion')  # datasets.build --apex; the first is the default
MISSING_APEX = ('skip', 'middle')  # datasets.build --missing_apex; the first is the default


def build_options(name: str, config: str) -> dict:
  """The datasets.build options (size, apex, missing_apex) that make NAME's config `config`;
  DatasetNotBuiltError if no build makes it."""
  from datasets.common import builder as base

  match = re.fullmatch(r'size_(\d+)[a-z_]*', config)
  size = int(match[1]) if match else 0
  made = [
    dict(size=size, apex=a, missing_apex=m)
    for a in APEX
    for m in MISSING_APEX
    if size >= 8 and base.config_name(size, a, m) == config
  ]
  predefined = ', '.join(c.name for c in registry.builder_class(name).BUILDER_CONFIGS)
  if not made:
    raise DatasetNotBuiltError(
      f'{name} has no config {config!r}: a config is size_N (N >= 8), then _apex_max_motion '
      '(smic, megc2019) and/or _missing_apex_middle (casme2, samm, megc2019). '
      f'Predefined: {predefined}'
    )
  for option, default in (('apex', APEX[0]), ('missing_apex', MISSING_APEX[0])):
    takers = registry.with_option(option, default)
    if made[0][option] != default and name not in takers:
      raise DatasetNotBuiltError(
        f'{name} has no config {config!r}: --{option} applies to {", ".join(takers)} only. '
        f'Predefined: {predefined}'
      )
  return made[0]


def build_command(
  name: str, config: str, data_dir: str | None = None, manual_dir: str = 'DIR'
) -> str:
  """The `hfa_jax build` (datasets.build) command line that makes NAME's config `config` in
  `data_dir`: the console command, which runs from any folder, where `python -m datasets.build`
  runs only in the checkout."""
  options = build_options(name, config)
  cmd = f'hfa_jax build {name} --manual_dir {manual_dir}'
  if data_dir:
    cmd += f' --data_dir {data_dir}'
  if options['size'] != native_size(name):
    cmd += f" --size {options['size']}"
  if options['apex'] != APEX[0]:
    cmd += f" --apex {options['apex']}"
  if options['missing_apex'] != MISSING_APEX[0]:
    cmd += f" --missing_apex {options['missing_apex']}"
  return cmd


def _synthetic_hint(name: str) -> str:
  """Where `datasets.synthetic` puts a copy that NAME's build reads."""
  if name == 'megc2019':
    return '`hfa_jax synthetic --database all --out DIR` writes a synthetic one'
  database = name.replace('megc2019_', '')
  return (
    f'`hfa_jax synthetic --database {database} --out OUT` writes a synthetic one '
    f'in DIR = OUT/{name}'
  )


def not_built_message(
  name: str, data_dir=None, size: int | None = None, config=None, or_default: bool = False
) -> str:
  """What to run when NAME's config `config` (default: size_`size`) is not in data_dir;
  `or_default`: the default build, resized to `size` on load, would do as well."""
  from datasets.common import builder as base

  default_size = native_size(name)
  config = config or base.config_name(size or default_size)
  root = pathlib.Path(data_dir or base.default_data_dir()).expanduser()
  command = build_command(name, config, os.fspath(data_dir) if data_dir else None)
  others = sorted(
    p.parent.parent.name
    for p in (root / name).glob('*/*/dataset_info.json')
    if p.parent.parent.name != config
  )
  built = (
    f'\nBuilt there with other options: {", ".join(others)}; train on one with '
    f'--dataset {name}:{others[0]}'
    if others
    else ''
  )
  return (
    f'{name} ({config}) is not built in {root}. Build it with:\n  {command}\n'
    + (
      f'or at its default side, {default_size} px (the same command without --size), '
      f'which is resized to {size} px on load\n'
      if or_default and size != default_size
      else ''
    )
    + f'(DIR: the folder holding your copy; {_synthetic_hint(name)}){built}'
  )


def dataset_path(
  name: str, data_dir=None, size: int | None = None, config: str | None = None
) -> pathlib.Path:
  """Folder of the newest built version of NAME/config; DatasetNotBuiltError if none."""
  from datasets.common import builder as base

  config = config or base.config_name(size or native_size(name))
  root = pathlib.Path(data_dir or base.default_data_dir()).expanduser()
  version = lambda p: tuple(int(x) for x in p.name.split('_')[-1].split('.') if x.isdigit())
  versions = sorted(
    (
      p
      for p in (root / name / config).glob('*.*.*')
      if p.name[0].isdigit() and (p / 'dataset_info.json').exists()
    ),
    key=version,
  )
  if not versions:  # an unfinished --overwrite keeps the previous build aside meanwhile
    versions = sorted(
      (
        p
        for p in (root / name / config).glob('previous_*.*.*')
        if (p / 'dataset_info.json').exists()
      ),
      key=version,
    )
  if not versions:
    raise DatasetNotBuiltError(not_built_message(name, data_dir, size, config))
  return versions[-1]


def load_arrays(
  name: str, data_dir=None, size: int | None = None, config: str | None = None
) -> dict[str, np.ndarray]:
  """Every example of a built dataset, sorted by (database, subject, sample).

  Returns flow (N, S, S, 3) float32 (u, v signed: see the module docstring), emotion /
  composite_label / *_frame (N,) int64 and subject / sample / database / action_units (N,)
  str arrays. `config` picks a non-default config by name (e.g. 'size_224_apex_max_motion');
  `size` the stored side of the default.
  """
  import tensorflow_datasets as tfds

  path = dataset_path(name, data_dir, size, config)
  source = tfds.builder_from_directory(os.fspath(path)).as_data_source(split='train')
  examples = [source[i] for i in range(len(source))]
  if not examples:
    raise DatasetNotBuiltError(f'{path} holds no examples; rebuild it')
  out = {}
  for key in examples[0]:
    values = [e[key] for e in examples]
    if key in TEXT:
      out[key] = np.array(
        [v.decode('utf-8') if isinstance(v, bytes) else str(v) for v in values], dtype=str
      )
    else:
      out[key] = np.stack([np.asarray(v) for v in values])
  if name in FLOW_IMAGES:  # 0..1 per channel -> -1..1: a mirror maps u to -u exactly
    out['flow'] = flow_images_signed(out['flow'])
  order = np.lexsort((out['sample'], out['subject'], out['database']))
  return {k: v[order] for k, v in out.items()}


def metadata(name: str, data_dir=None, size: int | None = None, config: str | None = None) -> dict:
  """The built dataset's metadata: emotions, composite_classes, source, skipped, notes."""
  import tensorflow_datasets as tfds

  path = dataset_path(name, data_dir, size, config)
  return dict(tfds.builder_from_directory(os.fspath(path)).info.metadata or {})


def native_size(name: str) -> int:
  """The side a dataset is built at by default (28 for the flow images, 224 for frames)."""
  return registry.builder_class(name).BUILDER_CONFIGS[0].size


@dataclasses.dataclass(frozen=True)
class TrainingData:
  """A dataset ready for LOSO training: the arrays and what they are (as scenic's Dataset:
  arrays plus metadata). `arrays` is the checked LosoData that hfa_jax.run_loso takes."""

  images: np.ndarray  # (N, S, S, 3) float32 flow images (u, v, strain)
  labels: np.ndarray  # (N,) int32 in 0..C-1
  subjects: np.ndarray  # (N,) str
  samples: np.ndarray  # (N,) str, the sample's name in its database
  databases: np.ndarray  # (N,) str, the database of each sample (the strata)
  class_names: list  # C names
  source: str  # the dataset's name ('synthetic' for the generated databases)
  skipped: list  # what the build left out, with reasons
  dropped: int = 0  # samples of the dataset outside the chosen classes
  stored_size: int = 0  # the side the dataset is stored at
  data_dir: str | None = None  # where it was read from

  @functools.cached_property
  def arrays(self) -> LosoData:
    return LosoData.of(
      self.images, self.labels, self.subjects, self.databases, len(self.class_names)
    )

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def training_data(
  name: str,
  data_dir=None,
  size: int | None = None,
  classes: str = 'composite',
  keep_emotions=None,
  config: str | None = None,
  data: dict | None = None,
) -> TrainingData:
  """The samples of a built dataset ready for `hfa_jax.run_loso`.

  Reads the dataset stored at `size` if built so, else its default build resized to
  `size`; keeps the samples of the chosen classes ('composite': negative / positive /
  surprise; 'native': the database's emotions, optionally only `keep_emotions`) and
  numbers the classes present 0..C-1. `data` skips the reading (load_arrays' dict).

  Returns a TrainingData (images (N, size, size, 3) float32, labels, subjects, samples,
  databases, class_names, dropped, source, skipped, stored_size).
  """
  if data is None:
    try:
      data = load_arrays(name, data_dir, size, config)
    except DatasetNotBuiltError:
      if config is not None or size is None or size == native_size(name):
        raise
      try:  # the default stored size, resized below
        data = load_arrays(name, data_dir)
      except DatasetNotBuiltError:
        message = not_built_message(name, data_dir, size, or_default=True)
        raise DatasetNotBuiltError(message) from None
  stored = data['flow'].shape[1]
  size = size or stored
  try:
    meta = metadata(name, data_dir, stored, config)
  except DatasetNotBuiltError:
    meta = {}
  if classes == 'composite':
    labels = data['composite_label'].astype(np.int64)
    names = list(meta.get('composite_classes') or COMPOSITE)
  elif classes == 'native':
    labels = data['emotion'].astype(np.int64)
    names = list(meta.get('emotions') or [])
    if not names:
      raise ValueError(f'{name} has no emotion names in its metadata')
    if keep_emotions:
      unknown = sorted(set(keep_emotions) - set(names))
      if unknown:
        raise ValueError(f'keep_emotions: unknown {unknown}; {name} has {names}')
      keep = [names.index(e) for e in keep_emotions]
      labels = np.where(np.isin(labels, keep), labels, -1)
  else:
    raise ValueError(f"classes must be 'composite' or 'native', got {classes!r}")
  chosen = labels >= 0
  present = sorted(set(labels[chosen].tolist()))  # compact to classes present
  remap = {c: i for i, c in enumerate(present)}
  return TrainingData(
    images=resize(data['flow'][chosen].astype(np.float32), size),
    labels=np.array([remap[c] for c in labels[chosen]], np.int32),
    subjects=data['subject'][chosen],
    samples=data['sample'][chosen],
    databases=data['database'][chosen],
    class_names=[names[c] for c in present],
    dropped=int((~chosen).sum()),
    source=name,
    skipped=list(meta.get('skipped') or []),
    stored_size=int(stored),
    data_dir=None if data_dir is None else str(data_dir),
  )
