"""ResNet-18 (He et al., CVPR 2016; torchvision's architecture) TRAINED FROM SCRATCH on the
flow images, with the recipe MEB's library harness uses for its ImageNet-pretrained ResNets
(github.com/tvaranka/meb, commit f731b0a): Adam at 1e-4 with L2 weight decay 1e-3, batch 32,
200 epochs, constant rate, no augmentation, 64 x 64 inputs, the last epoch scored.

    python -m experiments.loso --dataset megc2019_flow_images --model resnet18

MEB fine-tunes ImageNet weights; this project loads none, so this baseline is not MEB's: it
is the same network and optimiser without the pretraining (expect lower scores).

Sources (MEB):
- experiments/paper_experiments/"Table 11. Composite dataset.ipynb" (commit f731b0a):
  `timm.models.resnet18(num_classes=5, pretrained=True)` on `datasets.CrossDataset(resize=64,
  optical_flow=True)` (a MEGC2018-style 5-class setup, not the MEGC2019 composite);
  `epochs = 200`; `batch_size = 32`; `optimizer = partial(optim.Adam, lr=1e-4,
  weight_decay=1e-3)`; no scheduler; recorded F1 0.6319. The same optimiser for resnet34/50
  there and in "Table 10" and benchmarks/"Optical flow networks.ipynb" (112 px, 50 epochs,
  cross-dataset action units).
- "RCN-A and SSSNet for megc.ipynb" (commit 91d33fb, removed in 8af28c6), the MEGC2019
  composite: torchvision `models.resnet18(pretrained=True)` with a new 512 -> 3 layer,
  recorded UF1 0.6979 (SMIC 0.6930, CASME II 0.7663, SAMM 0.5584), the figure quoted as
  "ImageNet ResNet-18 0.698"; that notebook's LOSO trains with SGD (momentum 0.9, lr 0.01,
  weight decay 1e-3), batch 128, 200 epochs, on 64 px flows (the notebook also makes 60 px
  ones; which the ResNet run used is not recorded). SGD is not offered by
  hfa_jax.loso.config: the Adam recipe above is MEB's library's.
- meb/core/train_eval.py (Validator): a new model per fold, shuffled batches, no
  transforms, the fold scored after its LAST epoch in eval mode (honest); torch's Adam
  `weight_decay` is L2 added to the gradient: optimizer='adam' here.
- Input side 64: MEB's for this recipe (the network itself takes any side).

Differences from MEB's runs that this project's settings cannot express (none added):
- No ImageNet weights (above); torchvision's initialisation drawn from JAX's generator.
- Inputs: MEB feeds its own flows (Sun et al.'s classic+nl-fast) min-max scaled to [0, 1]
  per channel, resized to 64 from the face's resolution, without ImageNet normalisation;
  here the 28 px TV-L1 flow images mapped to [-1, 1], upsampled bilinearly to 64.
- Batches: MEB reshuffles each epoch and ends it with a smaller batch; here fixed-size
  batches of 32 per fold.

Execution, not from MEB: 4 models per compiled program on a CPU (`folds_in_parallel`; CPU time
per fold-sample on the 2-core AMD EPYC VM 7167 us at 1, 7542 at 2, 6339 at 4, 3.4 GB resident
at 4; the step is compute-bound: docs/performance.md).
"""

import ml_collections


def get_config():
  """The recipe's settings that differ from the declared defaults."""
  return ml_collections.ConfigDict(
    dict(
      model='resnet18',
      size=64,
      epochs=200,
      learning_rate=1e-4,
      schedule='constant',
      optimizer='adam',
      weight_decay=1e-3,
      augment='none',
      eval_every_epoch=False,
      folds_in_parallel=4,
    )
  )
