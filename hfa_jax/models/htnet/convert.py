"""The original HTNet's PyTorch state dict (NumPy arrays) -> this module's variables."""

import re

import numpy as np

_BLOCK = re.compile(r'layers\.(\d+)\.0\.layers\.(\d+)\.([01])\.(.+)')
_BLOCK_PARTS = {  # (attention 0 / feed-forward 1, rest of the key) -> (module, path)
  ('0', 'norm.g'): ('attn_norm', 'scale'),
  ('0', 'norm.b'): ('attn_norm', 'bias'),
  ('0', 'fn.to_qkv.weight'): ('attn', 'to_qkv/kernel'),
  ('0', 'fn.to_out.0.weight'): ('attn', 'to_out/kernel'),
  ('0', 'fn.to_out.0.bias'): ('attn', 'to_out/bias'),
  ('1', 'norm.g'): ('ff_norm', 'scale'),
  ('1', 'norm.b'): ('ff_norm', 'bias'),
  ('1', 'fn.net.0.weight'): ('ff', 'fc1/kernel'),
  ('1', 'fn.net.0.bias'): ('ff', 'fc1/bias'),
  ('1', 'fn.net.3.weight'): ('ff', 'fc2/kernel'),
  ('1', 'fn.net.3.bias'): ('ff', 'fc2/bias'),
}
_OTHER = {
  r'to_patch_embedding\.1\.(weight|bias)': 'to_patch_embedding/{0}',
  r'layers\.(\d+)\.0\.pos_emb': 'transformer_{0}/pos_emb',
  r'layers\.(\d+)\.1\.0\.(weight|bias)': 'aggregate_{0}/conv/{1}',
  r'layers\.(\d+)\.1\.1\.(g|b)': 'aggregate_{0}/norm/{1}',
  r'mlp_head\.0\.(g|b)': 'head_norm/{0}',
  r'mlp_head\.2\.(weight|bias)': 'head/{0}',
}
_LEAF = {'weight': 'kernel', 'g': 'scale', 'b': 'bias', 'bias': 'bias'}


def _path(key: str) -> str:
  """The '/'-joined variable path of a state-dict key (ValueError for an unknown key)."""
  m = _BLOCK.fullmatch(key)
  if m and (m[3], m[4]) in _BLOCK_PARTS:
    module, rest = _BLOCK_PARTS[m[3], m[4]]
    return f'transformer_{m[1]}/block_{m[2]}/{module}/{rest}'
  for pattern, template in _OTHER.items():
    m = re.fullmatch(pattern, key)
    if m:
      parts = [_LEAF.get(g, g) for g in m.groups()]
      return template.format(*parts)
  raise ValueError(f'HTNet: unknown state-dict key {key!r}')


def _value(key: str, path: str, w: np.ndarray, patch_channels: int) -> np.ndarray:
  """PyTorch's layout -> this module's (NHWC convolutions, (in, out) Linear kernels)."""
  if path == 'to_patch_embedding/kernel':  # (dim, p*p*C, 1, 1), input order (p1, p2, c)
    dim, n = w.shape[:2]
    p = int(round(np.sqrt(n // patch_channels)))
    return w.reshape(dim, p, p, patch_channels).transpose(1, 2, 3, 0)
  if path.endswith('conv/kernel'):  # (out, in, 3, 3) -> (3, 3, in, out)
    return w.transpose(2, 3, 1, 0)
  if path.endswith('kernel'):  # 1x1 Conv2d (out, in, 1, 1) or Linear (out, in) -> (in, out)
    return w.reshape(w.shape[0], w.shape[1]).T
  return w.reshape(-1)  # biases, LayerNorm g/b (1, C, 1, 1), position embeddings


def variables_from_torch(state_dict, channels: int = 3) -> dict:
  """{'params': ...} of HTNet from the original's `model.state_dict()` (NumPy arrays or
  tensors convertible by np.asarray), `channels` the input channels (3). The variables are
  those of `HTNet.classify`, whose input is the original's (here: BGR, 0..255)."""
  params = {}
  for key, value in state_dict.items():
    path = _path(key)
    leaf = _value(key, path, np.asarray(value, np.float32), channels)
    node = params
    *parents, name = path.split('/')
    for part in parents:
      node = node.setdefault(part, {})
    if name in node:
      raise ValueError(f'HTNet: two state-dict keys map to {path}')
    node[name] = np.ascontiguousarray(leaf, np.float32)
  return {'params': params}
