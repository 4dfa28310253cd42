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

from experiments.options import base_config


def get_config():
  config = base_config()
  config.epochs = 8
  config.batch_size = 16
  config.learning_rate = 5e-4
  config.schedule = 'cosine'
  config.warmup_epochs = 1.0
  config.optimizer = 'adamw'
  config.weight_decay = 1e-4
  config.augment = 'flip+shift'
  config.max_shift = 2
  config.test_flip = True
  config.select_epoch = 'last'
  config.eval_every_epoch = True
  return config
