"""Weights between the original PyTorch HFA-Net (`DualInception`) and hfa_jax.HFANet.

The Flax module names mirror the original's, with `nn.Sequential` indices joined
by an underscore (`msa.layer1.0.conv1` <-> `msa/layer1_0/conv1`,
`rmt.patch_embed.proj.3` <-> `rmt/patch_embed/proj_3`), so the mapping is a rule,
not a table:

- conv weight (O, I/groups, kh, kw) <-> `kernel` (kh, kw, I/groups, O)
- linear weight (O, I) <-> `kernel` (I, O)
- BatchNorm / LayerNorm / GroupNorm weight <-> `scale`; every bias <-> `bias`
- BatchNorm running_mean / running_var <-> batch_stats `mean` / `var`

Keys the original creates but never uses in `forward` (`rmt.proj`, `rmt.norm`,
`rmt.head`, `msa.fc_1`, `aaff.cov`), BatchNorm counters and RMT's fixed
`Relpos.angle` / `Relpos.decay` buffers are accepted and dropped.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from hfa_jax.models.hfanet import HFANet
from hfa_jax.models.rmt import relpos
from hfa_jax.models.rmt.branch import STAGES

_SEQUENTIAL = re.compile(r'^(layer[1-4]|blocks|proj|downsample|depthwise|pointwise)_(\d+)$')
_UNUSED_PREFIXES = ('rmt.proj.', 'rmt.norm.', 'rmt.head.', 'msa.fc_1.', 'aaff.cov.')
_BUFFER = re.compile(r'(\.num_batches_tracked|^rmt\.layer[1-4]\.Relpos\.(angle|decay))$')
_TORCH_LEAF = {
  ('params', 'kernel'): 'weight',
  ('params', 'scale'): 'weight',
  ('params', 'bias'): 'bias',
  ('batch_stats', 'mean'): 'running_mean',
  ('batch_stats', 'var'): 'running_var',
}
# Parameters of the original that forward() never uses: name -> shape (independent of classes).
_UNUSED_SHAPES = {
  'msa.fc_1.weight': (1000, 512),
  'msa.fc_1.bias': (1000,),
  'rmt.proj.weight': (1024, 512),
  'rmt.proj.bias': (1024,),
  'rmt.norm.weight': (1024,),
  'rmt.norm.bias': (1024,),
  'rmt.norm.running_mean': (1024,),
  'rmt.norm.running_var': (1024,),
  'rmt.head.weight': (1000, 1024),
  'rmt.head.bias': (1000,),
  'aaff.cov.weight': (1024, 1024, 1, 1),
}


class ConversionError(ValueError):
  """A state dict that does not fit HFA-Net (missing key, wrong shape, unknown key)."""


def torch_key(collection: str, path: tuple[str, ...]) -> str:
  """The original's state-dict key of a Flax leaf, e.g. ('msa', 'layer1_0', 'conv1', 'kernel')."""
  modules = [_SEQUENTIAL.sub(r'\1.\2', name) for name in path[:-1]]
  return '.'.join(modules + [_TORCH_LEAF[(collection, path[-1])]])


def _to_torch_layout(array: np.ndarray) -> np.ndarray:
  if array.ndim == 4:
    return array.transpose(3, 2, 0, 1)
  if array.ndim == 2:
    return array.T
  return array


def _from_torch_layout(array: np.ndarray) -> np.ndarray:
  if array.ndim == 4:
    return array.transpose(2, 3, 1, 0)
  if array.ndim == 2:
    return array.T
  return array


def variable_shapes(num_classes: int = 3) -> dict[str, Any]:
  """Shapes and dtypes of HFANet's `params` and `batch_stats`, without computing them."""
  model = HFANet(num_classes=num_classes)
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))


def _is_dropped(key: str) -> bool:
  return key.startswith(_UNUSED_PREFIXES) or bool(_BUFFER.search(key))


def from_torch_state_dict(state_dict: Mapping[str, Any], num_classes: int | None = None):
  """Flax variables {'params', 'batch_stats'} from an original HFA-Net state dict.

  state_dict: key -> array-like (a `torch.load`-ed dict with values `.numpy()`-ed,
  or an opened `.npz`); a `module.` prefix (DataParallel) is stripped.
  num_classes: defaults to the rows of `head.weight`.
  Raises ConversionError naming the key for a missing key, a wrong shape, or a
  key that is neither used nor one of the original's known unused keys.
  """
  sd = {k[len('module.') :] if k.startswith('module.') else k: v for k, v in state_dict.items()}
  if num_classes is None:
    if 'head.weight' not in sd:
      raise ConversionError("missing key 'head.weight' (needed to infer num_classes)")
    num_classes = int(np.shape(sd['head.weight'])[0])
  template = variable_shapes(num_classes)

  variables: dict[str, Any] = {}
  used = set()
  for collection, tree in template.items():
    flat = {}
    for path, spec in traverse_util.flatten_dict(tree).items():
      key = torch_key(collection, path)
      if key not in sd:
        raise ConversionError(f'missing key {key!r} (Flax {collection}/{"/".join(path)})')
      expected = _to_torch_layout(np.empty(spec.shape, np.uint8)).shape
      value = np.asarray(sd[key])
      if value.shape != expected:
        raise ConversionError(
          f'wrong shape for {key!r}: the state dict has {value.shape}, '
          f'HFA-Net(num_classes={num_classes}) expects {expected}'
        )
      flat[path] = jnp.asarray(_from_torch_layout(value).astype(np.float32))
      used.add(key)
    variables[collection] = traverse_util.unflatten_dict(flat)

  unknown = sorted(k for k in sd if k not in used and not _is_dropped(k))
  if unknown:
    raise ConversionError(
      f'{len(unknown)} unknown key(s), not part of HFA-Net: '
      f'{", ".join(unknown[:5])}{" ..." if len(unknown) > 5 else ""}'
    )
  return variables


def to_torch_state_dict(
  variables: Mapping[str, Any], include_unused: bool = True
) -> dict[str, np.ndarray]:
  """The original's state dict (numpy arrays) from Flax variables.

  With `include_unused` (default) the dict also holds every key the original
  registers but never uses (zeros / BatchNorm defaults), the RMT buffers and the
  BatchNorm counters (0), so `DualInception().load_state_dict(
  {k: torch.from_numpy(v) for k, v in sd.items()})` works with strict=True.
  """
  out: dict[str, np.ndarray] = {}
  for collection in ('params', 'batch_stats'):
    for path, value in traverse_util.flatten_dict(dict(variables[collection])).items():
      out[torch_key(collection, path)] = np.ascontiguousarray(
        _to_torch_layout(np.asarray(value, np.float32))
      )
  if not include_unused:
    return out
  for key in [k for k in out if k.endswith('.running_var')]:
    out[key[: -len('running_var')] + 'num_batches_tracked'] = np.array(0, np.int64)
  for i, (_, heads, init, rng, _, _, _) in enumerate(STAGES):
    width = 64 if i < 2 else STAGES[i - 1][6]
    out[f'rmt.layer{i + 1}.Relpos.angle'] = relpos.angles(width, heads)
    out[f'rmt.layer{i + 1}.Relpos.decay'] = relpos.decays(heads, init, rng)
  for key, shape in _UNUSED_SHAPES.items():
    fill = np.ones if key.endswith(('norm.weight', 'running_var')) else np.zeros
    out[key] = fill(shape, np.float32)
  out['rmt.norm.num_batches_tracked'] = np.array(0, np.int64)
  return out
