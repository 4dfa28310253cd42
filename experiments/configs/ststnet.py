"""The STSTNet baseline (Liong et al., FG 2019) with its own recipe: the public PyTorch
re-run's settings, which gave composite UF1 0.7209 / UAR 0.7250 (last epoch of 800).

    python -m experiments.loso --dataset megc2019_flow_images --model ststnet

Adam at 5e-5, batch 256, 800 epochs, no augmentation, weights reset per fold, the last
epoch scored; on the flow images' native 28 px. The model is tiny: every fold trains at
once.
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      model='ststnet',
      epochs=800,
      batch_size=256,
      learning_rate=5e-5,
      schedule='constant',
      optimizer='adam',
      weight_decay=0.0,
      augment='none',
      folds_in_parallel=0,
      eval_every_epoch=False,
    )
  )
