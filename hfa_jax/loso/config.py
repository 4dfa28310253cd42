"""The settings of a LOSO run, declared once and grouped by role.

- `Optimiser` (declared in hfa_jax.optimiser) and `Training`: what is compiled into a fold's
  training program; runs that differ only in other settings share one program
  (`hfa_jax.loso.program`).
- `Protocol`: which folds, which samples train, validate and test, which epoch is scored,
  the seed. With `Training`, what identifies a run's results (saved in its run.json).
- `Execution`: how the run executes (folds at once, the checkpoint clock, the evaluation
  batch); never what is learned, so a resumed run may change them.

`LosoConfig` holds all of them, flat: `LosoConfig(epochs=8, learning_rate=5e-4)`.
Each field says its default, help, choices and bounds (`hfa_jax.settings.setting`):
`python -m experiments.loso --help` lists them.
"""

from __future__ import annotations

import dataclasses
import re

from hfa_jax import settings
from hfa_jax.evaluation import FLOW_NORMS
from hfa_jax.optimiser import Optimiser
from hfa_jax.settings import setting

SELECT_EPOCH = ('last', 'validation', 'best_test')
BALANCE = ('none', 'loss', 'sampling')
AUGMENTATIONS = ('flip', 'shift', 'rotate', 'scale', 'halves')
# HFA-Net's architecture settings (fields of the model and of Training) at the paper's
# configuration, their defaults: only other values are recorded in a run's identity, its
# model's identity (hfa_jax.loso.run) and a model card (experiments.networks.architecture).
PAPER_ARCHITECTURE = {'width': 1.0, 'rmt_depth': 2}


@dataclasses.dataclass(frozen=True)
class Training(Optimiser):
  """What a fold's compiled training program depends on."""

  epochs: int = setting(20, 'epochs per fold', minimum=1)
  batch_size: int = setting(32, 'training batch per fold', minimum=1)
  warmup_epochs: float = setting(0.0, 'linear warmup from 0, in epochs', minimum=0)
  label_smoothing: float = setting(0.0, 'label smoothing', minimum=0, below=1)
  augment: str = setting(
    'flip',
    "'none', or a '+'-joined subset of flip, shift, rotate, scale, halves (a flip negates u; a "
    'shift replicates the edge; a rotation or scaling turns and scales the (u, v) vectors with '
    'it; halves makes a face of one half and its mirror)',
  )
  max_shift: int = setting(2, 'pixels, with --augment shift', minimum=0)
  max_rotation: float = setting(10.0, 'degrees either way, with --augment rotate', minimum=0)
  max_scale: float = setting(
    0.1, 'scaling within 1 +- this, with --augment scale', minimum=0, below=1
  )
  flow_norm: str = setting(
    'none',
    "'median': each image's u and v centred on their medians and divided by their RMS; "
    "'centre': only centred (training and evaluation alike); none: as the dataset gives them",
    choices=FLOW_NORMS,
  )
  drop_path: float = setting(
    0.0,
    "HFA-Net: stochastic depth of the RMT branch's last block, rising linearly from 0 "
    "at its first (the paper's 0)",
    minimum=0,
    below=1,
  )
  head_dropout: float = setting(
    0.0, 'HFA-Net: dropout on the pooled features before the classifier', minimum=0, below=1
  )
  width: float = setting(
    1.0,
    "HFA-Net: every layer's channels times this (1: the paper's configuration; 0.5: about a "
    'quarter of the parameters; 64 x width a multiple of 32)',
    above=0,
  )
  rmt_depth: int = setting(
    2,
    "HFA-Net: the RMT branch's blocks in each of its stages 3 and 4 (2: the paper's "
    'configuration; 1: shallower, 1.02 M parameters fewer)',
    minimum=1,
  )
  mixup: float = setting(0.0, 'mixup Beta(a, a) parameter (0: off)', minimum=0)
  ema_decay: float = setting(
    0.0,
    'evaluate an exponential moving average of the weights '
    'with this decay per step (0: the weights themselves)',
    minimum=0,
    below=1,
  )
  test_flip: bool = setting(
    False, 'evaluate each image and its mirror (u negated) and average their logits'
  )
  balance: str = setting(
    'none',
    "classes: 'loss' weighs each class equally in the loss, 'sampling' draws them equally often",
    choices=BALANCE,
  )
  precise_bn: int = setting(
    0,
    'evaluate with BatchNorm statistics recomputed on this many '
    'training samples (0: running averages)',
    minimum=0,
  )
  dtype: str | None = setting(
    None,
    "the model's compute dtype; parameters and optimiser state stay float32 (none: bfloat16 "
    'on a TPU, float32 elsewhere; bfloat16 needs a model with a dtype field, as HFA-Net and '
    'STSTNet have)',
    choices=('float32', 'bfloat16'),
  )

  def augmentations(self) -> tuple[bool, int]:
    """(flip, shift pixels) from `augment`; ValueError for an unknown part."""
    parts = self.augment_parts()
    return 'flip' in parts, (self.max_shift if 'shift' in parts else 0)

  def warps(self) -> tuple[float, float]:
    """(rotation degrees, scale fraction) from `augment`: 0 for a part not asked for."""
    parts = self.augment_parts()
    rotation = self.max_rotation if 'rotate' in parts else 0.0
    return rotation, (self.max_scale if 'scale' in parts else 0.0)

  def augment_parts(self) -> set:
    """The parts of `augment` (a subset of AUGMENTATIONS); ValueError for an unknown one."""
    parts = {p for p in re.split(r'[+,]', self.augment.strip().lower()) if p} - {'none'}
    if parts - set(AUGMENTATIONS):
      raise ValueError(
        "augment must be 'none' or a '+'-joined subset of "
        f"{', '.join(AUGMENTATIONS)}; got {self.augment!r}"
      )
    return parts


@dataclasses.dataclass(frozen=True)
class Protocol:
  """Folds, data splits, the scored epoch and the seed."""

  seed: int = setting(0, 'seed of initialisation, order, augmentation and splits')
  steps_per_epoch: int = setting(
    0,
    "steps per epoch (0: one pass over the largest fold's training subjects, validation "
    'subjects included; each fold draws that many batches from a new order of its own samples, '
    'so smaller folds see some samples twice an epoch)',
    minimum=0,
  )
  ensemble: int = setting(
    1, 'models per fold, each from its own seed; their class probabilities are averaged', minimum=1
  )
  select_epoch: str = setting(
    'last',
    "the epoch scored per fold: 'last'; 'validation' (best UF1 on subjects held "
    "out of the fold's training subjects; honest); 'best_test' (its own test subject's "
    'best: NOT honest, reported as such)',
    choices=SELECT_EPOCH,
  )
  val_fraction: float = setting(
    0.2, "with validation: share of each database's training subjects held out", above=0, below=1
  )
  retrain: bool = setting(
    False, 'with validation: retrain on all training subjects for the chosen number of epochs'
  )
  group_folds: int = setting(
    0, '>0: subject-grouped K-fold cross-validation instead of LOSO (quick experiments)', minimum=0
  )
  eval_every_epoch: bool = setting(
    True, 'evaluate after every epoch (curves) or only after the last'
  )


@dataclasses.dataclass(frozen=True)
class Execution:
  """How the run executes; never what is learned."""

  folds_in_parallel: int | None = setting(
    None,
    'folds (models, with an ensemble) trained at once; none: chosen by the device and the '
    'input side (loso.folds_at_once); 0: all; rounded up to a multiple of the device count',
    minimum=0,
  )
  eval_batch_size: int = setting(64, 'evaluation batch', minimum=1)
  keep_models: bool = setting(
    True,
    "save each fold's scored model (params and BatchNorm statistics) in the run folder's "
    'state/models/ (HFA-Net: 86 MB a fold); experiments.evaluate re-scores the run from them',
  )
  checkpoint_minutes: float = setting(
    10.0,
    'minutes of training between checkpoints of the folds in training (0: after every '
    'epoch); finished folds are always saved, and a SIGTERM stops the run at the end of the '
    'epoch, saved. A checkpoint of HFA-Net holds ~0.3 GB per fold',
    minimum=0,
  )


def _part(config, cls):
  return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


@dataclasses.dataclass(frozen=True)
class LosoConfig(Execution, Protocol, Training):
  """Every setting of a LOSO run (fields: Optimiser, Training, Protocol, Execution)."""

  @property
  def training(self) -> Training:
    """The settings compiled into the training program."""
    return _part(self, Training)

  def identity(self) -> dict:
    """The settings that determine the results (Training and Protocol), as JSON.
    `momentum` only with sgd, where it acts, and the architecture's fields only where not the
    paper's (`width` 1, `rmt_depth` 2): runs saved before they existed still resume."""
    training = dataclasses.asdict(_part(self, Training))
    if self.optimizer != 'sgd':
      del training['momentum']
    for name, paper in PAPER_ARCHITECTURE.items():
      if training[name] == paper:
        del training[name]
    return training | dataclasses.asdict(_part(self, Protocol))

  def validate(self):
    """Raises ValueError naming the first bad field."""
    settings.check(self)
    if self.retrain and self.select_epoch != 'validation':
      raise ValueError(
        "retrain needs select_epoch 'validation' (it retrains for the epoch that validation chose)"
      )
    if self.group_folds == 1:
      raise ValueError('group_folds must be 0 (LOSO) or >= 2')
    self.augmentations()

  def protocol(self) -> str:
    """In words: how the folds are made and which epoch of each fold is scored."""
    folds = (
      f'subject-grouped {self.group_folds}-fold cross-validation (NOT leave-one-subject-'
      'out; for quick experiments)'
      if self.group_folds
      else 'leave one subject out'
    )
    if self.ensemble > 1:
      folds += f', {self.ensemble} models per fold (mean of their probabilities)'
    if self.test_flip:
      folds += ', each test image averaged with its mirror'
    if self.select_epoch == 'best_test':
      return (
        f'{folds}; BEST EPOCH PER FOLD SELECTED BY ITS OWN TEST ACCURACY (optimistic, '
        'not comparable to honest results)'
      )
    if self.select_epoch == 'validation':
      how = (
        f"{folds}; each fold's epoch chosen by the UF1 of validation subjects held out "
        f"of its training subjects ({self.val_fraction:.0%} of each database's), "
        'the test subject never seen'
      )
      retrained = ', then retrained on all its training subjects for that many epochs'
      return how + (retrained if self.retrain else '') + ' (honest)'
    return f'{folds}; each fold evaluated after its last epoch (honest)'
