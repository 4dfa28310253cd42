"""HFA-Net LOSO on a frame-based dataset (SAMM, CASME II, SMIC, the MEGC2019 composite)
built from the licensed frames: flows at 224 px, best on a GPU or TPU.

    python -m experiments.loso --dataset samm                    # uses this config
    python -m experiments.loso --dataset casme2 --classes native --epochs 80

A reasonable starting recipe, not a reproduction of the paper's (which states none) and
not yet measured on real frames. Folds train one at a time on a CPU and as many as fit in
memory on a GPU/TPU (`hfa_jax.loso.folds_at_once`). Every key can be overridden on the
command line.
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      epochs=50,
      learning_rate=5e-4,
      warmup_epochs=2.0,
      augment='flip+shift',
      max_shift=8,
    )
  )
