"""The SSSNet baseline (Varanka, Peng, Zhao, HVEI 2021) with the recipe of its authors' public
library, MEB (github.com/tvaranka/meb, commit f731b0a): Adam at 1e-4 with L2 weight decay 1e-3,
batch 32, 200 epochs, constant rate, no augmentation, 64 x 64 inputs, the last epoch scored.

    python -m experiments.loso --dataset megc2019_flow_images --model sssnet

Sources (MEB, commit f731b0a unless said otherwise):
- experiments/paper_experiments/"Figure 2. Different F1-metrics.ipynb", the MEGC2019 composite
  (3 classes, LOSO): `datasets.MEGC(optical_flow=True, resize=64)`; `epochs = 200`;
  `optimizer = partial(optim.Adam, lr=1e-4, weight_decay=1e-3)`; batch 32 (core.Config's
  default, not overridden: this project's default too, so not restated below); no scheduler;
  `core.MEGCValidation`. Recorded: UF1 0.7394 (SMIC 0.6991, CASME II 0.8517, SAMM 0.6023).
  That run built SSSNet with `softmax=True` (a softmax before CrossEntropyLoss), which
  this module does not offer (MEB's default is False).
- The same epochs, optimiser and 64 px in "Table 10. Hold-out database", "Table 11. Composite
  dataset" (MEGC2018 5-class setups; Table 11 with batch 256) and benchmarks/"Optical flow
  networks.ipynb" (cross-dataset action units); "Table 5" and "Table 8" use batch 128.
- meb/core/train_eval.py (Validator): a new model per fold (`setup_training` in
  `validate_split`), training batches shuffled (`shuffle=train`), no transforms (augment
  none), the fold scored after its last epoch (`train_model`, then `evaluate_model` in eval
  mode): the LAST epoch, honest. torch's Adam `weight_decay` adds L2 to the gradient: this
  project's optimizer='adam'. MEB's only best-test-epoch scoring (EarlyStoppingValidator,
  "Table 3. Early stopping.ipynb") was not run for SSSNet.
- Input side 64: the original's fc1 expects a 9x9 map, so 64-69 px; MEB resizes to 64.
The paper's own text was not available here. MEB's earlier notebook "RCN-A and SSSNet for
megc.ipynb" (commit 91d33fb, removed in 8af28c6) trained the same network with SGD, momentum
0.9, lr 0.01, weight decay 1e-3, batch 128, 200 epochs, shuffled, 64 px, last epoch, and
recorded composite UF1 0.7618 (SMIC 0.7242, CASME II 0.8568, SAMM 0.6528; a re-run in the
same notebook 0.7562). That recipe needs SGD, which hfa_jax.loso.config does not offer.

Differences from MEB's runs that this project's settings cannot express (none added):
- Inputs: MEB feeds its own flows (Sun et al.'s classic+nl-fast; strain from Sobel
  derivatives), each channel min-max scaled to [0, 1] per sample and resized to 64 px from the
  cropped face's resolution with anti-aliasing; here the STSTNet-format 28 px TV-L1 flow
  images, the same per-channel min-max mapped to [-1, 1] (2 x - 1), upsampled bilinearly to 64.
- Batches: MEB's DataLoader reshuffles each epoch and ends it with a smaller batch; here each
  fold draws fixed-size batches of 32 (one epoch = one pass over the largest training set).
- Weights: MEB's PyTorch initialisation and seeds (utils.set_random_seeds(1)); here the same
  distributions from JAX's generator and `seed`.

Execution, not from MEB: 2 models per compiled program on a CPU (`folds_in_parallel`). CPU
time per fold-sample, 2-core AMD EPYC VM: 1708 us at 1, 1130 at 2, 1161 at 4, 1327 at 8 before
the fused first stage (conv1, ReLU and the pool in one pass, `ops.stem.conv_relu_pool`); with
it 1000 at 1, 891 at 2, 891 at 4, 844 at 8 (docs/performance.md).
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      model='sssnet',
      size=64,
      epochs=200,
      learning_rate=1e-4,
      schedule='constant',
      optimizer='adam',
      weight_decay=1e-3,
      augment='none',
      eval_every_epoch=False,
      folds_in_parallel=2,
    )
  )
