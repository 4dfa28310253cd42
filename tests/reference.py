"""The shared reference fixtures of the original PyTorch HFA-Net (../shared/reference).

Tests that need them are skipped, with the reason, when the folder is absent.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

REFERENCE_DIR = Path(
  os.environ.get('HFA_JAX_REFERENCE', Path(__file__).resolve().parents[2] / 'shared' / 'reference')
)

requires_reference = pytest.mark.skipif(
  not (REFERENCE_DIR / 'state_dict_keys.txt').is_file(),
  reason=f'reference fixtures not found in {REFERENCE_DIR} (set HFA_JAX_REFERENCE)',
)


def state_dict_keys() -> list[tuple[str, tuple[int, ...]]]:
  """(key, shape) of the original DualInception(num_classes=3).state_dict(), in order."""
  out = []
  for line in (REFERENCE_DIR / 'state_dict_keys.txt').read_text().splitlines():
    if not line.strip() or line.startswith('#'):
      continue
    key, shape = line.split('\t')
    out.append((key, () if shape == 'scalar' else tuple(int(s) for s in shape.split('x'))))
  return out


def recipe_state_dict(
  seed: int, keys=None, num_classes: int | None = None
) -> dict[str, np.ndarray]:
  """The deterministic weights of the reference README, drawn in key order."""
  rng = np.random.default_rng(seed)
  sd = {}
  for key, shape in keys or state_dict_keys():
    if key.startswith('head.') and num_classes is not None:
      shape = (num_classes,) + tuple(shape[1:])
    leaf = key.rsplit('.', 1)[-1]
    if leaf in ('num_batches_tracked', 'angle', 'decay'):
      continue
    if leaf == 'running_var':
      value = rng.uniform(0.5, 1.5, size=shape)
    elif leaf == 'running_mean':
      value = rng.normal(0.0, 0.1, size=shape)
    elif len(shape) == 1 and leaf == 'weight':
      value = rng.uniform(0.5, 1.5, size=shape)
    elif len(shape) == 1:
      value = rng.normal(0.0, 0.1, size=shape)
    else:
      value = rng.normal(0.0, 1.0, size=shape) / np.sqrt(np.prod(shape[1:]))
    sd[key] = value.astype(np.float32)
  return sd


def load_fixture(name: str = 'hfa_net_parity_seed0.npz'):
  """(arrays dict, meta dict) of a parity fixture."""
  with np.load(REFERENCE_DIR / name) as z:
    arrays = {k: z[k] for k in z.files}
  meta = json.loads(bytes(arrays.pop('meta_json')).decode())
  return arrays, meta
