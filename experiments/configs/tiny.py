"""Smallest useful run, for tests and smoke checks (a few folds, one short epoch).

python -m experiments.loso --config tiny --synthetic_subjects 2
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      size=32,
      epochs=1,
      batch_size=4,
      steps_per_epoch=1,
      schedule='constant',
      folds_in_parallel=0,
      eval_batch_size=16,
    )
  )
