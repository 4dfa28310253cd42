"""The default output folder of a run: named by the settings that tell runs apart.

runs/loso-synthetic-composite-32px-seed0                  # the default run
runs/loso-synthetic-composite-32px-seed0-epochs1          # --epochs 1
runs/loso-samm-composite-224px-seed0-5settings-bdc77fd1   # five settings changed
runs/loso-synthetic-composite-32px-seed0-tiny             # --config tiny
runs/loso-synthetic-composite-32px-seed0-tiny.py          # --config my/tiny.py (your own file)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib

from hfa_jax.loso.config import Execution

# Settings already in a default folder's name, or that never change a run's results.
NAMED = ('dataset', 'classes', 'size', 'model', 'seed', 'subjects', 'out', 'data_dir')
EXECUTION = tuple(f.name for f in dataclasses.fields(Execution))


def default_out(
  e, size: int, seed: int, changed: dict | None = None, recipe: str | None = None
) -> pathlib.Path:
  """runs/loso-DATASET-CLASSES-SIZEpx[-MODEL]-seedSEED[-RECIPE][-SETTINGS][-only-SUBJECTS]: a
  part of a LOSO (--subjects) gets a folder of its own, named by its subjects; `recipe`, the
  name of a recipe other than the one the model and data choose (recipes.folder_recipe), and
  `changed`, the settings that differ from the recipe's (those that change the results: not the
  execution's), name it too, so that runs with other settings never share a folder."""
  model = '' if e.model == 'hfanet' else f"-{e.model.replace(':', '.')}"
  name = f"loso-{e.dataset.replace(':', '-')}-{e.classes}-{size}px{model}-seed{seed}"
  if recipe:
    name += f'-{recipe}'
  return pathlib.Path('runs') / (name + settings_part(changed) + subjects_part(e.subjects))


def settings_part(changed: dict | None) -> str:
  """'-epochs1-mixup0.2' for settings that tell a folder apart ('' for none): where longer than
  40 characters, how many settings and a digest of them ('-5settings-bdc77fd1')."""
  if not changed:
    return ''
  return '-' + _short('-'.join(f'{k}{_value(v)}' for k, v in changed.items()), changed)


def subjects_part(subjects) -> str:
  """'-only-sub01+s3' for a part of a LOSO (--subjects; '' for all of it), or how many subjects
  and a digest of their names where longer than 40 characters."""
  if not subjects:
    return ''
  joined = '+'.join(subjects)
  if len(joined) > 40:
    digest = hashlib.sha1(joined.encode()).hexdigest()[:8]
    joined = f'{len(subjects)}subjects-{digest}'
  return f'-only-{joined}'


def _value(v) -> str:
  if isinstance(v, (list, tuple)):
    v = '+'.join(map(str, v))
  return ''.join(c if c.isalnum() or c in '.+_' else '_' for c in str(v).lower())


def _short(text: str, changed: dict) -> str:
  """`text`, or where longer than 40 characters, how many settings and a digest of them."""
  if len(text) <= 40:
    return text
  digest = hashlib.sha1(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()
  return f'{len(changed)}settings-{digest[:8]}'


def changed_from(values: dict, defaults: dict, names: list[str]) -> dict:
  """The settings `names` whose value in `values` differs from `defaults` (a recipe's), among
  those that change a run's results (not NAMED, not the execution's), in that order."""
  return {
    k: values[k] for k in names if k not in NAMED + EXECUTION and values.get(k) != defaults.get(k)
  }
