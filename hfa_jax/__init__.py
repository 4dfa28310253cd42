"""hfa_jax: HFA-Net micro-expression recognition in JAX/Flax.

HFA-Net: Zhang et al., "HFA-Net: hierarchical feature aggregation network for
micro-expression recognition", Complex & Intelligent Systems 11(3):169, 2025.

`hfa_jax.HFANet`, the training API (`create_train_state`, `train_step`, `eval_step`,
`run_loso`, `LosoConfig`) and the other JAX parts are imported on first use, so that
`hfa_jax.preprocess` can be used, e.g. in data-building worker processes,
without loading JAX.
"""

import importlib

__version__ = '0.1.0'

_LAZY = {
  'HFANet': ('hfa_jax.models.hfanet', 'HFANet'),
  'LosoConfig': ('hfa_jax.loso', 'LosoConfig'),
  'run_loso': ('hfa_jax.loso', 'run_loso'),
  'TrainState': ('hfa_jax.train', 'TrainState'),
  'create_train_state': ('hfa_jax.train', 'create_train_state'),
  'train_step': ('hfa_jax.train', 'train_step'),
  'eval_step': ('hfa_jax.train', 'eval_step'),
  'load_model': ('hfa_jax.trained', 'load_model'),
  'save_model': ('hfa_jax.trained', 'save_model'),
}
__all__ = sorted(_LAZY)


def __getattr__(name):
  if name in _LAZY:
    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module), attr)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
