"""The RCN-A baseline (Xia et al., IEEE TIP 2020) with its own recipe: the authors' public
training script, github.com/xiazhaoqiang/ParameterFreeRCNs-MicroExpressionRec (commit
0c516cb) `ModelTrain_Final.py`, run with its defaults (`--modelname rcn_a`).

    python -m experiments.loso --dataset megc2019_flow_images --model rcn_a

Where each value comes from (ModelTrain_Final.py unless said otherwise):
- optimizer sgd: `optim.SGD(params, lr=lr, momentum=0.9)` (the Adam line is commented out);
  momentum 0.9 is the declared default of `momentum`; no weight decay (SGD's default 0).
- learning_rate 5e-4: `--learningrate` default 0.0005 (also the README's command).
- schedule constant: a StepLR(step_size=10, gamma=0.5) is built in train_model but its
  step() is never called, so the rate stays 5e-4.
- batch_size 64: `--batchsize` default (also the README's command).
- epochs 100: `--epochs` default. The README's example command (for a script,
  ModelEval_Final.py, that is not in the repository, on SMIC alone) uses 20.
- augment none: the only transform is `transforms.ToTensor()`.
- size 60: the input side MEB gives RCN-A (tvaranka/meb, commit f731b0a,
  experiments/benchmarks/"Optical flow networks.ipynb": `resize=60` for RCN-A alone). The
  authors' script reads its flow PNGs at whatever size they were stored (data version
  `v_66`, not published).
- the network's sizes (RCNA's defaults: featuremaps 64, pool_size 7, one recurrent layer,
  model_version 3) are the script's `--featuremap`, `--poolsize`, `--modelversion` defaults
  and its `num_layers=1` (the README's command: 32 and 5).
- eval_every_epoch false: the script evaluates each fold once, after its last epoch.

What the authors' script scores: the LAST epoch. Each fold (one per subject, 68 on the
composite) trains a fresh RCN_A for all epochs, then tests once (`test_model`); predictions
are pooled over the folds for UF1 / UAR (and per database). No test-subject selection. This
project's default `select_epoch='last'` is the same.

Differences this recipe cannot express (no setting added for them):
- Inputs: the script reads the flow PNGs with ToTensor, values in [0, 1]; this project's
  pipeline gives [-1, 1] (x = 2 png / 255 - 1). conv1 has no padding, so on (x + 1) / 2 it
  computes what it computes on x with its weights halved plus a per-channel constant; the
  BatchNorm after it removes the constant (batch mean) and is blind to the weights' scale,
  so SGD (no weight decay) from the same initial distribution takes the same steps in the
  network's function, up to BatchNorm's epsilon and the running mean's lag. Expected to
  matter little; not measured.
- Resizing: this project resizes the 28 px flow images bilinearly to 60 px; the authors'
  flow images were made at their own (unpublished) resolution.
- Order and seeds: the script shuffles each epoch (DataLoader shuffle=True) from one
  torch.manual_seed(1) for the whole run; here batches are drawn per fold from `seed`.
- A partial last batch: the script's epochs end with a smaller batch; here every step has
  batch_size samples (steps_per_epoch: one pass over the largest training set).

Execution, not from the authors: 2 models per compiled program on a CPU
(`folds_in_parallel`; CPU time per fold-sample on the 2-core AMD EPYC VM 3781 us at 1, 3641
at 2, 3810 at 4: level; docs/performance.md).
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      model='rcn_a',
      size=60,
      epochs=100,
      batch_size=64,
      learning_rate=5e-4,
      schedule='constant',
      optimizer='sgd',
      weight_decay=0.0,
      augment='none',
      eval_every_epoch=False,
      folds_in_parallel=2,
    )
  )
