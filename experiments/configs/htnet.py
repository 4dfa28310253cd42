"""The HTNet baseline (Wang et al., Neurocomputing 2024) with its own recipe: the settings of
the authors' script, wangzhifengharrison/HTNet main_HTNet.py (commit 788b88e; the same at
1ea5293), which reported composite UF1 0.8603 / UAR 0.8475.

    python -m experiments.loso --dataset megc2019_flow_images --model htnet

Where each value comes from (main_HTNet.py, `main`):
- learning_rate 5e-5, optimizer 'adam', weight_decay 0, schedule 'constant':
  `torch.optim.Adam(model.parameters(), lr=learning_rate)` with `learning_rate = 0.00005`
  (PyTorch's defaults otherwise: betas 0.9/0.999, eps 1e-8, no weight decay, no scheduler);
- batch_size 256: `batch_size = 256`; epochs 800: `epochs = 800`;
- augment 'none': the script reads the images as they are;
- the model: HTNet(image_size=28, patch_size=7, dim=256, heads=3, num_hierarchies=3,
  block_repeats=(2, 2, 10), num_classes=3) built afresh for each subject (no dropout): the
  module's defaults; on the flow images' native 28 px (the module's side_multiple).

Not the authors' protocol: their script evaluates every epoch on the test subject and keeps
each subject's BEST test epoch (`if best_accuracy_for_each_subject <= val_acc`), which gave
the published numbers (a user's re-run got about 0.65). This recipe scores the model after
the last epoch (honest, `select_epoch` 'last'); `--select_epoch best_test` reproduces the
authors' selection and reports it as not honest.

Other differences from the script, none a setting here:
- it feeds each subject's training samples in a fixed order (DataLoader without shuffling,
  the last batch smaller); here each step draws a fixed-size batch of 256 per fold
  (one pass over the largest training set per epoch);
- it cuts the regions around landmarks of each sample; the module cuts fixed regions (see
  hfa_jax.models.htnet);
- the region cut and the 0..255 pixels are the module's input stage, so the flow images
  enter as the project's pipeline gives them ([-1, 1], flow_norm 'none').

Execution, not from the authors: HTNet has 139.6 M parameters, so a fold's training state
(parameters, gradients, Adam's two moments) alone takes ~2.2 GB; two folds training at once
peaked at 10.4 GB resident on a CPU (`--config tiny --size 28 --folds_in_parallel 2`), so
2 folds train at once (raise --folds_in_parallel where memory allows, e.g. on a large GPU);
only the last epoch is evaluated (it is the one scored); the folds' models are not kept
(0.56 GB each; --keep_models true keeps them).
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      model='htnet',
      epochs=800,
      batch_size=256,
      learning_rate=5e-5,
      schedule='constant',
      optimizer='adam',
      weight_decay=0.0,
      augment='none',
      folds_in_parallel=2,
      eval_every_epoch=False,
      keep_models=False,
    )
  )
