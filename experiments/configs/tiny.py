"""Smallest useful run, for tests and smoke checks (a few folds, one short epoch).

python -m experiments.loso --config tiny --synthetic_subjects 2
"""

from experiments.options import base_config


def get_config():
  config = base_config()
  config.dataset = 'synthetic'
  config.size = 32
  config.epochs = 1
  config.batch_size = 4
  config.steps_per_epoch = 1
  config.learning_rate = 1e-3
  config.schedule = 'constant'
  config.augment = 'flip'
  config.folds_in_parallel = 0
  config.eval_batch_size = 16
  return config
