"""The default run: LOSO of HFA-Net on the synthetic MEGC2019-style composite database.

    python -m experiments.loso            # = --config synthetic --dataset synthetic

Tuned to finish in a few minutes on a 2-core CPU (most of it XLA compilation on the
first run; the compiled programs are cached for the next ones) and to reach UF1 >= 0.9:
32x32 inputs, one fold at a time (on 2 CPU cores, 2 folds at a time gained less in the step
than the extra compilation cost; on a GPU/TPU pass --folds_in_parallel none: all that fit).
It keeps no fold models (a first run writes ~1 MB, not 1 GB): `--keep_models true` keeps them
for experiments.evaluate.
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      size=32,
      epochs=2,
      batch_size=16,
      steps_per_epoch=3,
      folds_in_parallel=1,
      precise_bn=16,  # 6 steps leave BatchNorm's running averages far off
      eval_every_epoch=False,  # evaluate after the last epoch only
      keep_models=False,  # 12 HFA-Net fold models take 1 GB: --keep_models true keeps them
    )
  )
