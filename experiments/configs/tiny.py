"""Smallest useful run, for tests and smoke checks (a few folds, one short epoch).

python -m experiments.loso --config tiny --synthetic_subjects 2
"""


def get_config():
  return dict(
    dataset='synthetic',
    size=32,
    epochs=1,
    batch_size=4,
    steps_per_epoch=1,
    learning_rate=1e-3,
    schedule='constant',
    augment='flip',
    folds_in_parallel=0,
    eval_batch_size=16,
  )
