"""The command's data: a built dataset, or the synthetic databases generated and built
on first use, as a `datasets.load.TrainingData`."""

from __future__ import annotations

import dataclasses
import pathlib

from datasets import build as build_cli
from datasets import synthetic
from datasets.load import DatasetNotBuiltError, TrainingData, load_arrays, training_data
from experiments.options import Settings, UsageError


def synthetic_build(s: Settings, progress: bool = True):
  """(arrays, data_dir) of the synthetic databases built with the megc2019 builder,
  generated and built once into --data_dir (default ./synthetic_data)."""
  e = s.experiment
  root = pathlib.Path(e.data_dir or 'synthetic_data')
  tag = f'{e.synthetic_subjects}subjects-seed{e.synthetic_seed}'
  manual, data_dir = root / f'manual-{tag}', root / f'tfds-{tag}'
  try:
    return load_arrays('megc2019', data_dir, s.size), data_dir
  except DatasetNotBuiltError:
    pass
  done = manual / '.complete'
  if not done.exists():
    print(f'generating the synthetic databases in {manual}', flush=True)
    synthetic.generate('all', manual, e.synthetic_subjects, e.synthetic_seed)
    done.touch()
  print(
    f'building them with the megc2019 builder into {data_dir}. The synthetic copy holds '
    f'{e.synthetic_subjects} subject(s) per database, so the build lists the composite\'s '
    "samples of the other subjects as SKIPPED ('... listed sample(s) ... not in the copy'): "
    'that is expected.',
    flush=True,
  )
  args = ['megc2019', '--manual_dir', str(manual), '--data_dir', str(data_dir)]
  code = build_cli.main(args + ['--size', str(s.size)] + ([] if progress else ['--no_progress']))
  if code != 0:
    raise SystemExit(f'building the synthetic dataset failed (exit code {code})')
  return load_arrays('megc2019', data_dir, s.size), data_dir


def load_dataset(s: Settings, progress: bool = True) -> TrainingData:
  """The dataset to train on for these settings; without `progress`, a synthetic build shows
  no progress bar."""
  e = s.experiment
  try:
    if e.dataset_name == 'synthetic':
      data, data_dir = synthetic_build(s, progress)
      built = training_data('megc2019', data_dir, s.size, e.classes, e.keep_emotions, data=data)
      return dataclasses.replace(built, source='synthetic', data_dir=str(data_dir))
    return training_data(
      e.dataset_name, e.data_dir, s.size, e.classes, e.keep_emotions, config=e.dataset_config
    )
  except ValueError as err:
    raise UsageError(str(err)) from None
