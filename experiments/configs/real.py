"""HFA-Net LOSO on a real database (GPU / TPU): a reasonable starting recipe.

    python -m experiments.loso --dataset samm                    # uses this config
    python -m experiments.loso --config real --dataset casme2 --classes native --epochs 80

The paper does not state its full training recipe; these are common settings for
micro-expression LOSO on 224x224 flow images, not a reproduction of its numbers.
Every key can be overridden on the command line (--lr for learning_rate).
"""


def get_config():
  return dict(
      size=224,
      epochs=50,
      batch_size=32,
      learning_rate=5e-4,
      schedule='cosine',
      warmup_epochs=2.0,
      optimizer='adamw',
      weight_decay=1e-4,
      label_smoothing=0.0,
      augment='flip+shift',
      max_shift=8,
      folds_in_parallel=4,       # folds per step; raise it while memory allows (0: all)
      checkpoint_every=5,
  )
