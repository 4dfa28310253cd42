"""HFA-Net on precomputed flow images (the STSTNet/HTNet 28x28 format of the MEGC2019
composite): the real recipe.

    python -m experiments.loso --dataset megc2019_flow_images     # uses this config

Trains at the images' native scale (28 px, rounded up to 32 for HFA-Net's stride).
"""


def get_config():
  return dict(
      epochs=8,
      batch_size=16,
      learning_rate=5e-4,
      schedule='cosine',
      warmup_epochs=1.0,
      optimizer='adamw',
      weight_decay=1e-4,
      augment='flip',
      folds_in_parallel=4,
      eval_every_epoch=True,
      checkpoint_every=1,
  )
