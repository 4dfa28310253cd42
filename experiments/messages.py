"""What `python -m experiments.loso` says before it trains: the data, the input side,
the protocol, the devices, and warnings about settings that cannot do what they say."""

from __future__ import annotations

import numpy as np

from datasets.common.report import skipped_count
from experiments.options import FLOW_IMAGES, Settings

COMPOSITE_SAMPLES = 442


def composite_part(s: Settings, data) -> bool:
  """Whether the data are the MEGC2019 composite's classes on fewer than its 442 samples (a
  part of it, e.g. without SAMM): their figures do not compare with published composite ones."""
  e = s.experiment
  composite = e.dataset_name in ('megc2019',) + FLOW_IMAGES and e.classes == 'composite'
  return composite and len(data.labels) < COMPOSITE_SAMPLES


def describe(s: Settings, data, devices: list, protocol: bool = True):
  """Prints the run's data, input side, model, protocol (if `protocol`) and devices."""
  """`data`: a datasets.load.TrainingData."""
  names, labels = data.class_names, data.labels
  n, subjects = len(labels), sorted(set(data.subjects.tolist()))
  dropped = f'; {data.dropped} samples outside these classes left out' if data.dropped else ''
  counts = np.bincount(labels, minlength=len(names)).tolist()
  say(f'{data.source}: {n} samples, {len(subjects)} subjects, classes {names} ({counts}){dropped}')
  e = s.experiment
  if composite_part(s, data):
    skipped = data.skipped
    count = skipped_count(skipped)
    by_build = f' ({count} skipped by the build, listed in summary.json)' if skipped else ''
    say(
      f'WARNING: the MEGC2019 composite has {COMPOSITE_SAMPLES} samples, this dataset {n}'
      f'{by_build}: the results are not comparable with published composite numbers.'
    )
  stored = data.stored_size
  resized = f' (stored at {stored} px, resized on load)' if stored != s.size else ''
  say(f'input {s.size} px: {s.size_reason}{resized}')
  config = s.training
  if config.warmup_epochs > config.epochs:
    say(
      f'WARNING: --warmup_epochs {config.warmup_epochs} is longer than the run '
      f'({config.epochs} epochs): the learning rate never reaches its peak '
      f'{config.learning_rate}.'
    )
  if e.subjects:
    say(f'a part of the LOSO: testing {len(e.subjects)} of {len(subjects)} subjects')
  how = f'; protocol: {config.protocol()}' if protocol else ''
  say(f'model {e.model}, settings from {s.recipe}{how}')
  say(f'{len(devices)} {devices[0].device_kind} device(s); output in {s.out}')


def say(text: str):
  print(text, flush=True)
