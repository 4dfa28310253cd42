"""The default run: LOSO of HFA-Net on the synthetic MEGC2019-style composite database.

    python -m experiments.loso            # = --config synthetic --dataset synthetic

Tuned to finish in a few minutes on a 2-core CPU (most of it XLA compilation on the
first run; the compiled programs are cached for the next ones) and to reach UF1 >= 0.9:
32x32 inputs, one fold at a time (on 2 CPU cores, 2 folds at a time gained less in the step
than the extra compilation cost; on a GPU/TPU pass --folds_in_parallel none: all that fit).
"""

from experiments.options import base_config


def get_config():
  config = base_config()
  config.dataset = 'synthetic'
  config.synthetic_subjects = 4  # per database: 12 subjects, 116 composite samples
  config.classes = 'composite'
  config.size = 32
  config.epochs = 2
  config.batch_size = 16
  config.steps_per_epoch = 3
  config.learning_rate = 1e-3
  config.schedule = 'cosine'
  config.warmup_epochs = 0.0
  config.optimizer = 'adamw'
  config.weight_decay = 1e-4
  config.augment = 'flip'
  config.folds_in_parallel = 1
  config.eval_batch_size = 64
  config.precise_bn = 16  # 6 steps leave BatchNorm's running averages far off
  config.eval_every_epoch = False  # evaluate after the last epoch only
  return config
