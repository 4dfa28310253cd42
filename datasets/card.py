"""What a model trained on a built dataset must be given: its card's `preprocessing`.

    from datasets.card import preprocessing_card
    card['preprocessing'] = preprocessing_card('samm', None, 224, 64, data_dir)

`hfa_jax.predict` follows it to make, from a user's frames, video or flow-image PNG, exactly
the inputs the dataset gave the model (the same library functions, in the same order).
"""

from __future__ import annotations

import pathlib
import re

from hfa_jax import preprocessing_spec

from datasets import load
from datasets.common import registry
from datasets.common.samples import CROPPED, RAW

# How a build's `source` (datasets.common.samples.describe) says how a copy's faces were cropped.
_FACES = re.compile(rf' \(({re.escape(CROPPED)}|{re.escape(RAW)})\)')


def preprocessing_card(
  dataset_name: str,
  dataset_config: str | None = None,
  stored_side: int | None = None,
  side: int | None = None,
  data_dir=None,
) -> dict:
  """card['preprocessing'] of a model trained on `dataset_name` built in `data_dir` (default
  TFDS's), config `dataset_config` (None: the default config of `stored_side`, e.g.
  'size_28'), stored at `stored_side` px (None: the dataset's native side) and given to the
  model at `side` px (None: `stored_side`), as `datasets.load.training_data` gives it.

  A frame dataset's build is read for how its copies' faces were cropped; DatasetNotBuiltError
  if it is not there, ValueError if the config does not store `stored_side` px."""
  if dataset_name == 'synthetic':
    raise ValueError(
      "the synthetic data is the megc2019 dataset built from synthetic databases: pass "
      "'megc2019' and the synthetic build's data_dir"
    )
  stored_side = stored_side or load.native_size(dataset_name)
  config = dataset_config or f'size_{stored_side}'
  options = load.build_options(dataset_name, config)
  if options['size'] != stored_side:
    raise ValueError(
      f'{dataset_name} config {config!r} stores {options["size"]} px, not {stored_side}'
    )
  common = dict(
    dataset=dataset_name, config=config, stored_side=stored_side, side=side or stored_side
  )
  if dataset_name in load.FLOW_IMAGES:
    return preprocessing_spec.preprocessing('flow_images', **common)
  source = load.metadata(dataset_name, data_dir, stored_side, config).get('source', '')
  return preprocessing_spec.preprocessing(
    'frames',
    **common,
    apex=options['apex'],
    missing_apex=options['missing_apex'],
    face_crop_by_database=face_crops(dataset_name, source),
  )


def face_crops(dataset_name: str, source: str) -> dict[str, bool]:
  """{database: whether its faces were detected and cropped} from a frame dataset's build
  `source` ('ROOT (cropped), annotations ...'; the composite's 'casme2: ...; samm: ...')."""
  composite = dataset_name not in registry.DATABASES
  databases = registry.DATABASES if composite else (dataset_name,)
  crops = {}
  for database in databases:
    start = 0
    if composite:  # the database's part of the source
      part = re.search(rf'(?:^|; ){database}: ', source)
      start = part.end() if part else None
    mark = None if start is None else _FACES.search(source, start)
    if mark is None:
      raise ValueError(
        f'the {dataset_name} build does not say how the {database} faces were cropped '
        f'(source: {source!r}); rebuild it with this version of datasets.build'
      )
    crops[database] = mark.group(1) == RAW
  return crops


def training_source(dataset_name: str, data_dir=None, stored_side=None, config=None) -> dict:
  """Where a model's training data came from, for its card: {'source': the build's source
  (the copy's folders), 'synthetic': True for a copy written by datasets.synthetic, False for
  one that is not, None where the copy is not there to look at}."""
  try:
    source = load.metadata(dataset_name, data_dir, stored_side, config).get('source', '')
  except load.DatasetNotBuiltError:
    source = ''
  return dict(source=source, synthetic=is_synthetic(source))


def is_synthetic(source: str) -> bool | None:
  """Whether the copy a build's `source` names was written by datasets.synthetic (its marker
  file beside the copy); None if no folder it names exists here."""
  from datasets.synthetic import MARKER

  paths = [pathlib.Path(t.rstrip(':')) for t in re.split(r'[\s;,()]+', source) if '/' in t]
  seen = False
  for path in paths:
    if not path.exists():
      continue
    seen = True
    if any((folder / MARKER).is_file() for folder in [path, *path.parents][:4]):
      return True
  return False if seen else None
