"""HFA-Net on precomputed flow images (the STSTNet/HTNet 28x28 format of the MEGC2019
composite): the real recipe.

    python -m datasets.build megc2019_flow_images --manual_dir <HTNet clone or your copy>
    python -m experiments.loso --dataset megc2019_flow_images     # uses this config

At the images' native scale (28 px, rounded up to 32 for HFA-Net's total stride), 8
epochs of AdamW with a cosine schedule, random mirror (u negated) and shifts of up to 2
pixels (edge replicated), and each test image averaged with its mirror; the model after
the last epoch is scored (honest). Folds train 4 at a time on a CPU, as many as fit on a
GPU/TPU (`hfa_jax.loso.folds_at_once`). Chosen by subject-grouped 5-fold cross-validation on the
CASME II + SMIC part (docs/training.md: what was tried, with figures); the SAMM part was
never used.
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      epochs=8,
      batch_size=16,
      learning_rate=5e-4,
      warmup_epochs=1.0,
      augment='flip+shift',
      test_flip=True,
    )
  )
