"""A trained model as a folder: its weights, its card, and (HFA-Net) a PyTorch state dict.

DIR/
  model.json      the card: the model, its classes, its input (side, channels, value
                  range) and the preprocessing that makes it, the data and recipe it was
                  trained with, the seed, the package versions, its LOSO result if given
  README.md       the card in words
  weights/        orbax checkpoint of {'params', 'batch_stats'} (float32)
  hfa_net.pth     HFA-Net only, where PyTorch is installed: a state dict that loads with
                  strict=True into the original network (else hfa_net_state_dict.npz,
                  the same arrays for torch.from_numpy)

model, variables, card = hfa_jax.load_model(DIR)
logits = model.apply(variables, images, train=False)   # images (B, S, S, 3), one pass
logits = predict.logits(model, variables, images, **predict.as_trained(card))
    # (from hfa_jax import predict) as its LOSO evaluated: the recipe's test flip, flow_norm
"""

from __future__ import annotations

import json
import os
import pathlib
import re

import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp

from hfa_jax import convert
from hfa_jax.models import registry

CARD = 'model.json'


class ModelFolderError(ValueError):
  """A folder that does not hold a model saved by save_model."""


def save_weights(path, variables: dict):
  """variables {'params', 'batch_stats'} (host or device arrays) -> orbax checkpoint `path`."""
  tree = {k: variables.get(k, {}) for k in ('params', 'batch_stats')}
  tree = _to_numpy(tree)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.abspath(path), tree, force=True)


def load_weights(path) -> dict:
  """The variables saved by save_weights, as NumPy arrays."""
  with ocp.StandardCheckpointer() as checkpointer:
    return _to_numpy(checkpointer.restore(os.path.abspath(path)))


def _to_numpy(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def save_model(folder, variables: dict, card: dict) -> pathlib.Path:
  """Writes a model folder (see the module docstring). `card` needs 'model' (its spec),
  'num_classes', 'class_names' and 'input' {'side', ...}; everything else is kept as given."""
  folder = pathlib.Path(folder)
  missing = [k for k in ('model', 'num_classes', 'class_names', 'input') if k not in card]
  if missing:
    raise ValueError(f'the model card lacks {missing}')
  folder.mkdir(parents=True, exist_ok=True)
  save_weights(folder / 'weights', variables)
  if card['model'] == 'hfanet' and not card.get('model_options'):  # the original's shapes
    card = card | dict(pytorch=_save_torch(folder, variables))
  (folder / CARD).write_text(json.dumps(card, indent=1))
  (folder / 'README.md').write_text(card_text(card, folder))
  return folder


def _save_torch(folder: pathlib.Path, variables: dict) -> str:
  """The original network's state dict: hfa_net.pth (torch installed) or .npz."""
  state_dict = convert.to_torch_state_dict(_to_numpy(variables))
  try:
    import torch
  except ImportError:
    np.savez(folder / 'hfa_net_state_dict.npz', **state_dict)
    return 'hfa_net_state_dict.npz'
  torch.save(
    {k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()},
    folder / 'hfa_net.pth',
  )
  return 'hfa_net.pth'


def read_card(folder) -> dict:
  """The card of a model folder; ModelFolderError saying what is missing."""
  path = pathlib.Path(folder) / CARD
  if not path.is_file():
    raise ModelFolderError(
      f'{folder} is not a model folder: it has no {CARD} (make one with `hfa_jax final_model`)'
    )
  return json.loads(path.read_text())


def load_model(folder) -> tuple[nn.Module, dict, dict]:
  """(model, variables {'params', 'batch_stats'}, card) of a model folder; ModelFolderError
  where its card contradicts itself (class names, input side)."""
  card = read_card(folder)
  weights = pathlib.Path(folder) / 'weights'
  if not weights.is_dir():
    raise ModelFolderError(f'{folder} has a card but no weights/ folder')
  names, n = card['class_names'], card['num_classes']
  if len(names) != n:
    raise ModelFolderError(f'{folder}: its card names {len(names)} classes {names} for {n} outputs')
  side, made = card['input'].get('side'), (card.get('preprocessing') or {}).get('side')
  if made is not None and side is not None and int(made) != int(side):
    raise ModelFolderError(
      f'{folder}: its card says the model takes {side} px inputs but preprocesses them to {made} px'
    )
  model = registry.build(card['model'], card['num_classes'], **card.get('model_options', {}))
  return model, load_weights(weights), card


def card_text(card: dict, folder=None) -> str:
  """The card in words (README.md of a model folder `folder`)."""
  title = card.get('title') or f"{card['model']}: a micro-expression recogniser"
  lines = [f'# {title}', '']
  data = card.get('training_data') or {}
  if data.get('synthetic'):
    lines += [f'{SYNTHETIC}.', '']
  lines += [f"Classes: {', '.join(card['class_names'])}.", '']
  inp = card['input']
  lines += [f"Input: {inp['side']}x{inp['side']} flow images, {inp.get('description', '')}", '']
  pre = card.get('preprocessing') or {}
  if pre:
    lines += [f"Preprocessing: {pre.get('description', pre)}", '']
  if data:
    lines += [
      trained_on(card) + '. Every subject is in its training data (no test subject: the '
      'deployable model).',
      '',
    ]
  lines += _accuracy_lines(card)
  if card.get('recipe'):
    lines += ['Recipe: ' + ', '.join(f'{k}={v}' for k, v in card['recipe'].items()), '']
  if card.get('pytorch'):
    lines += _pytorch_lines(card, folder)
  where = str(pathlib.Path(folder).resolve()) if folder is not None else 'DIR'
  lines += [f'Load it: `model, variables, card = hfa_jax.load_model({where!r})`.', '']
  return '\n'.join(lines)


SYNTHETIC = 'SYNTHETIC: drawn faces, not a recogniser'


def trained_on(card: dict) -> str:
  """'hfanet trained on megc2019_flow_images (real data, built from ...): 309 samples of 40
  subjects', from a card (SYNTHETIC first for synthetic data)."""
  data = card.get('training_data') or {}
  unknown = 'real or SYNTHETIC data: not known, its source copy was not there to check'
  kind = {True: 'SYNTHETIC data', False: 'real data'}.get(data.get('synthetic'), unknown)
  folder = source_folder(data.get('source') or '')
  where = f', built from {folder}' if folder else ''
  skipped = data.get('skipped_by_build')
  left = f'; the build skipped {skipped} sample(s)' if skipped else ''
  return (
    f"{card['model']} trained on {data.get('dataset')} ({kind}{where}): {data.get('samples')} "
    f"samples of {data.get('subjects')} subjects{left}"
  )


def source_folder(source: str) -> str:
  """The folder a build's `source` names (the one holding all its copies), for a sentence:
  'casme2: D/casme2/CASME2_RAW_selected (raw ...); samm: D/samm/SAMM ...' -> 'D'."""
  paths = [t.rstrip(':') for t in re.split(r'[\s;,()]+', source) if '/' in t]
  if not paths:
    return source
  try:
    return os.path.commonpath(paths) or paths[0]
  except ValueError:  # absolute and relative paths mixed
    return paths[0]


def _accuracy_lines(card: dict) -> list[str]:
  """The expected accuracy with its LOSO run, or 'not measured'; another run's result apart."""
  loso, other = card.get('loso'), card.get('another_run')
  if loso and loso.get('same_recipe') is False:  # a card of an earlier version
    loso, other = None, loso
  out = []
  if loso:
    out += [
      f"Expected accuracy: UF1 {loso['uf1']:.4f}, UAR {loso['uar']:.4f}, accuracy "
      f"{_or_nan(loso.get('accuracy')):.4f}: the LOSO of this model's recipe, dataset, "
      f"classes and size ({loso.get('protocol')}; run {loso.get('run')})."
      + (' On synthetic data it measures the synthetic task only.' if _synthetic(card) else ''),
      '',
    ]
  else:
    out += ['Expected accuracy: not measured (no LOSO run of this model was given).', '']
  if other:
    why = '; '.join(other.get('differences') or ['another recipe'])
    out += [
      f"Another run's result, NOT this model's expected accuracy (that run differs: {why}): "
      f"UF1 {other['uf1']:.4f}, UAR {other['uar']:.4f} (run {other.get('run')}).",
      '',
    ]
  return out


def _or_nan(value) -> float:
  return float('nan') if value is None else value


def _synthetic(card: dict) -> bool:
  return bool((card.get('training_data') or {}).get('synthetic'))


def _pytorch_lines(card: dict, folder) -> list[str]:
  """How to load the state dict into the original network: a snippet that runs as printed."""
  path = str(pathlib.Path(folder).resolve() / card['pytorch']) if folder else card['pytorch']
  if card['pytorch'].endswith('.npz'):
    load = [
      'import numpy as np, torch',
      f'sd = {{k: torch.from_numpy(v) for k, v in np.load({path!r}).items()}}',
    ]
  else:
    load = ['import torch', f'sd = torch.load({path!r})']
  return [
    f"PyTorch: {card['pytorch']} holds the state dict of the original HFA-Net "
    f"(tairuwu/HFA-Net), for `net`, that network built with num_classes={card['num_classes']}:",
    '',
    '```python',
    *load,
    'net.load_state_dict(sd, strict=True)  # inputs NCHW',
    '```',
    '',
  ]
