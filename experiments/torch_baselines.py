"""The baselines' original PyTorch networks, imported from the user's own checkouts, and one
training step of each at its recipe's settings (experiments.bench_baselines times them beside
ours). Nothing of the originals is copied into this project.

    --meb PATH          a checkout of tvaranka/meb: meb/models/me_networks.py (STSTNet, SSSNet,
                        OffApexNet)
    --rcn PATH          a checkout of xiazhaoqiang/ParameterFreeRCNs-MicroExpressionRec:
                        MeNets.py (RCN_A)
    --torchvision PATH  a folder holding the torchvision package source, e.g.
                        `pip install --no-deps --target PATH torchvision==0.28.0`: ResNet-18
                        (only torchvision/models/resnet.py and what it imports are loaded)
    --htnet PATH        a folder holding the original HTNet's Model.py (needs einops)

Each is built as its recipe's source builds it (experiments/configs/NAME.py), trained in
training mode on random inputs of the recipe's side and batch (one model, as the original
scripts train one fold at a time) with the recipe's optimiser (Adam with L2 as torch's
`weight_decay`, SGD with momentum) and cross-entropy, with `torch.set_flush_denormal(True)`
(XLA:CPU flushes denormals too).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Callable

# name -> (checkout option, file in the checkout, what to build)
ORIGINALS = {
  'ststnet': ('meb', 'meb/models/me_networks.py', 'STSTNet'),
  'sssnet': ('meb', 'meb/models/me_networks.py', 'SSSNet'),
  'offapexnet': ('meb', 'meb/models/me_networks.py', 'OffApexNet'),
  'rcn_a': ('rcn', 'MeNets.py', 'RCN_A'),
  'resnet18': ('torchvision', 'torchvision/models/resnet.py', 'resnet18'),
  'htnet': ('htnet', 'Model.py', 'HTNet'),
}
CHECKOUT_OPTIONS = ('meb', 'rcn', 'torchvision', 'htnet')
INPUT_CHANNELS = {'offapexnet': 2}  # MEB feeds OFF-ApexNet u and v only
# The constructors' arguments as the recipes' sources build them (3 classes).
ARGUMENTS = {
  'ststnet': dict(in_channels=3, num_classes=3),
  'sssnet': dict(num_classes=3),
  'offapexnet': dict(num_classes=3),
  'rcn_a': dict(num_input=3, featuremaps=64, num_classes=3, num_layers=1, pool_size=7),
  'resnet18': dict(num_classes=3),
  'htnet': dict(
    image_size=28,
    patch_size=7,
    dim=256,
    heads=3,
    num_hierarchies=3,
    block_repeats=(2, 2, 10),
    num_classes=3,
  ),
}


def taken_from(option: str) -> list[str]:
  """The baselines whose originals the checkout option gives."""
  return [name for name, (o, _, _) in ORIGINALS.items() if o == option]


def _from_file(path: Path, name: str):
  spec = importlib.util.spec_from_file_location(f'original_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return getattr(module, name)


def _torchvision_resnet(folder: Path, name: str):
  """torchvision.models.resnet's `name` from folder/torchvision without its packages'
  __init__ files (those load compiled operators that need a matching torch build)."""
  for package, sub in [('torchvision', ''), ('torchvision.models', 'models')]:
    module = types.ModuleType(package)
    module.__path__ = [str(folder / 'torchvision' / sub)]
    sys.modules[package] = module
  transforms = types.ModuleType('torchvision.transforms')
  transforms.__path__ = [str(folder / 'torchvision' / 'transforms')]
  sys.modules['torchvision.transforms'] = transforms
  functional = importlib.import_module('torchvision.transforms.functional')
  transforms.InterpolationMode = functional.InterpolationMode
  return getattr(importlib.import_module('torchvision.models.resnet'), name)


def original(name: str, checkouts: dict):
  """The original network of baseline `name`, built, or a sentence saying why not."""
  if name not in ORIGINALS:
    return f'no original for {name}'
  option, relative, attribute = ORIGINALS[name]
  if not checkouts.get(option):
    return f'skipped: no --{option} checkout given'
  folder = Path(checkouts[option]).expanduser().resolve()
  if not (folder / relative).is_file():
    return f'skipped: {folder} has no {relative}'
  try:
    import torch  # noqa: F401
  except ImportError:
    return 'skipped: torch is not installed'
  try:
    if option == 'torchvision':
      build = _torchvision_resnet(folder, attribute)
    else:
      build = _from_file(folder / relative, attribute)
    return build(**ARGUMENTS[name])
  except Exception as e:  # noqa: BLE001 - any failure: the row says why
    return f'skipped: the original does not build ({type(e).__name__}: {e})'


def optimiser_of(training, parameters):
  """torch's optimiser for a loso.config.Training (the peak learning rate: the step's time
  does not depend on the schedule)."""
  import torch

  lr, decay = training.learning_rate, training.weight_decay
  if training.optimizer == 'adam':
    return torch.optim.Adam(parameters, lr=lr, weight_decay=decay)
  if training.optimizer == 'sgd':
    return torch.optim.SGD(parameters, lr=lr, momentum=training.momentum, weight_decay=decay)
  return torch.optim.AdamW(parameters, lr=lr, weight_decay=decay)


def torch_step(name: str, checkouts: dict, training, side: int, threads: int, seed: int = 0):
  """(step, torch version): step() takes one training step of the original at the recipe's
  batch and side; or a sentence saying why not."""
  net = original(name, checkouts)
  if isinstance(net, str):
    return net
  import torch
  import torch.nn.functional as F

  torch.set_num_threads(threads)
  torch.set_flush_denormal(True)
  torch.manual_seed(seed)
  net.train()
  opt = optimiser_of(training, net.parameters())
  batch, channels = training.batch_size, INPUT_CHANNELS.get(name, 3)
  x = torch.randn(batch, channels, side, side)
  y = torch.randint(0, 3, (batch,))

  def step() -> Callable:
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss

  return step, torch.__version__
