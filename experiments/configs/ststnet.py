"""The STSTNet baseline (Liong et al., FG 2019) with its own recipe: the public PyTorch
re-run's settings, which gave composite UF1 0.7209 / UAR 0.7250 (last epoch of 800).

    python -m experiments.loso --dataset megc2019_flow_images --model ststnet

Adam at 5e-5, batch 256, 800 epochs, no augmentation, weights reset per fold, the last
epoch scored; on the flow images' native 28 px. The model is tiny: every fold trains at
once.
"""

from experiments.options import base_config


def get_config():
  config = base_config()
  config.model = 'ststnet'
  config.epochs = 800
  config.batch_size = 256
  config.learning_rate = 5e-5
  config.schedule = 'constant'
  config.warmup_epochs = 0.0
  config.optimizer = 'adam'
  config.weight_decay = 0.0
  config.augment = 'none'
  config.folds_in_parallel = 0
  config.eval_every_epoch = False
  return config
