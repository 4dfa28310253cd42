"""A final model's card (model.json): what the model is, what it was trained on, and its
expected accuracy where a LOSO run of the same model measured it.

    loso = loso_of(RUN, s, any_run=False)       # before the data are read: settings compared
    loso = with_data(loso, RUN, data, any_run)  # after: the run's data are these data
    card = model_card(s, data, loso)

A LOSO result is the model's expected accuracy only if its run is finished and whole (every
subject tested) and ran the same model on the same data (dataset, classes, size, build) with
the same recipe (every training and protocol setting but the seed). Anything else is refused,
naming the difference, or, with any_run, kept as another run's result (card['another_run']),
never as the expected accuracy.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib

import jax
import numpy as np

from datasets.card import preprocessing_card, training_source
from datasets.common.report import skipped_count
from experiments import networks, options
from experiments.options import Settings, UsageError
from hfa_jax import input_checks
from hfa_jax.environment import code_version, cpu_model, versions
from hfa_jax.loso.store import differences

# The experiment's settings a LOSO run must share with the model (besides the size).
SAME = ('model', 'dataset', 'classes', 'keep_emotions')
SAME_SYNTHETIC = ('synthetic_subjects', 'synthetic_seed')
RESULT = ('uf1', 'uar', 'accuracy', 'protocol', 'n_samples', 'n_folds', 'subjects_covered')
NOT_EXPECTED = (
  'give --loso RUN, a finished LOSO of the same model, dataset, classes, size and recipe'
)


def loso_of(run: pathlib.Path, s: Settings, any_run: bool = False) -> dict:
  """{'run', 'differences', and the run's result}: the LOSO result in RUN, compared with the
  settings `s` of the model. UsageError if it is not finished, or (without `any_run`) if it
  is not a whole LOSO of the same model, data and recipe."""
  summary_path = run / 'summary.json'
  if not summary_path.is_file():
    raise UsageError(f'--loso {run}: no finished run there ({summary_path} is missing)')
  summary = json.loads(summary_path.read_text())
  saved = options.saved_settings(run)
  diff = settings_differences(saved, s, summary)
  loso = {k: summary.get(k) for k in RESULT} | dict(
    run=str(run), seed=saved.training.seed, differences=diff
  )
  return _checked(loso, any_run)


def settings_differences(saved: Settings, s: Settings, summary: dict) -> list[str]:
  """How the LOSO run of `saved` (its summary.json `summary`) differs from a model of `s`."""
  e, mine = saved.experiment, s.experiment
  out = []
  if summary.get('partial') or e.subjects:
    out.append(
      f"a part of a LOSO: {summary.get('subjects_covered')} of "
      f"{summary.get('subjects_total')} subjects tested"
    )
  names = SAME + (SAME_SYNTHETIC if mine.dataset_name == 'synthetic' else ())
  out += [
    f'{k}: {getattr(e, k)!r} in the run, {getattr(mine, k)!r} here'
    for k in names
    if getattr(e, k) != getattr(mine, k)
  ]
  if saved.size != s.size:
    out.append(f'size: {saved.size} px in the run, {s.size} px here')
  ours, theirs = s.training.identity(), saved.training.identity()
  for identity in (ours, theirs):
    identity.pop('seed')
  return out + [d.replace(' given', ' here') for d in differences(theirs, ours)]


def with_data(loso: dict | None, run: pathlib.Path, data, any_run: bool = False) -> dict | None:
  """`loso` once the run's data (state/run.json's fingerprint) are compared with the model's
  `data` (a TrainingData): a rebuilt dataset or another build differs."""
  if loso is None:
    return None
  run_json = run / 'state' / 'run.json'
  recorded = json.loads(run_json.read_text()).get('data') if run_json.is_file() else None
  if recorded is not None and recorded != data.arrays.fingerprint():
    n = recorded.get('n')
    loso = loso | dict(
      differences=loso['differences']
      + [f'data: the run trained on other data ({n} samples; this model {len(data.labels)})']
    )
  return _checked(loso, any_run)


def _checked(loso: dict, any_run: bool) -> dict:
  if loso['differences'] and not any_run:
    raise UsageError(
      f"--loso {loso['run']} is not a LOSO of this model ({'; '.join(loso['differences'])}): "
      f'{NOT_EXPECTED}, or add --any_loso to cite it as another run\'s result'
    )
  return loso


def training_data(s: Settings, data) -> dict:
  """card['training_data']: the dataset, where it came from, real or synthetic, its size."""
  e = s.experiment
  name = 'megc2019' if e.dataset_name == 'synthetic' else e.dataset_name
  where = training_source(name, data.data_dir, data.stored_size, e.dataset_config)
  synthetic = True if e.dataset_name == 'synthetic' else where['synthetic']
  counts = np.bincount(data.labels, minlength=data.num_classes).tolist()
  return dict(
    dataset=e.dataset,
    built_as=name + (f':{e.dataset_config}' if e.dataset_config else ''),
    data_dir=str(pathlib.Path(data.data_dir).resolve()) if data.data_dir else None,
    source=where['source'],
    synthetic=synthetic,
    classes=e.classes,
    samples=len(data.labels),
    subjects=len(set(data.subjects.tolist())),
    per_class=dict(zip(data.class_names, counts)),
    skipped_by_build=skipped_count(data.skipped),
    skipped=[entry.get('sample') for entry in data.skipped],
  )


def model_card(s: Settings, data, loso: dict | None) -> dict:
  """The model card (model.json) of a final model trained with `s` on `data`; `loso` from
  loso_of and with_data (None: not measured)."""
  e, config = s.experiment, s.training
  name = 'megc2019' if e.dataset_name == 'synthetic' else e.dataset_name
  pre = preprocessing_card(name, e.dataset_config, data.stored_size, s.size, data.data_dir)
  trained = training_data(s, data)
  expected = loso is not None and not loso['differences']
  return dict(
    title=f'{e.model} trained on {e.dataset}, every subject'
    + (' (SYNTHETIC data)' if trained['synthetic'] else ''),
    model=e.model,
    **({'model_options': arch} if (arch := networks.architecture(config)) else {}),
    num_classes=data.num_classes,
    class_names=list(data.class_names),
    input=dict(
      side=s.size,
      channels=['u', 'v', 'strain'],
      test_flip=config.test_flip,
      flow_norm=config.flow_norm,
      description=pre.get('value_range', ''),
    ),
    input_statistics=input_checks.ranges(data.images),
    preprocessing=pre,
    training_data=trained,
    recipe=config.identity(),
    recipe_file=s.recipe,
    seed=config.seed,
    versions=versions(),
    trained_on=dict(
      cpu=cpu_model(),
      device=jax.devices()[0].device_kind,
      date=datetime.date.today().isoformat(),
      code=code_version(),
    ),
    command=s.command().replace('experiments.loso', 'experiments.final_model'),
    loso=_result(loso) if expected else None,
    another_run=None if expected or loso is None else _result(loso),
  )


def _result(loso: dict) -> dict:
  return {k: v for k, v in loso.items() if k != 'differences' or v}


def not_for_a_final_model(s: Settings) -> list[str]:
  """The given settings of test folds, which a final model has none of: ['--subjects',
  '--group_folds', '--retrain'] where set."""
  t, out = s.training, []
  if s.experiment.subjects:
    out.append('--subjects')
  if t.group_folds:
    out.append('--group_folds')
  if t.retrain:
    out.append('--retrain')
  return out


def final_settings(s: Settings) -> Settings:
  """`s` with the final model's default folder: runs/final-... for runs/loso-..."""
  if s.experiment.out is not None:
    return s
  return dataclasses.replace(
    s, out=pathlib.Path(str(s.out).replace('runs/loso-', 'runs/final-', 1))
  )
