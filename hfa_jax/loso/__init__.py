"""Leave-one-subject-out (LOSO) training, all folds in parallel, resumable.

    from hfa_jax.loso import LosoConfig, run_loso
    result = run_loso(images, labels, subjects, LosoConfig(epochs=10), model=model)
    result['metrics']['uf1']                 # = result.pool()['metrics']['uf1']
    result.pool(member=1)                    # with ensemble > 1: one member alone

The trainer's parts, one file each (docs/architecture.md draws how a run flows):
  config.py     LosoConfig: the settings, grouped by role
  data.py       LosoData: the arrays, checked
  plan.py       FoldPlan: folds, validation subjects, index tables (NumPy)
  program.py    the compiled init and epoch programs over a stack of folds
  keys.py       the random key of each model: fold_key(seed, fold, member)
  run.py        run_loso: groups of models through their phases and epochs
  errors.py     the errors a user can cause (no JAX)
  records.py    what is kept of a group in training and of a finished fold; scored_epoch
  store.py      the run folder: lock, run.json, checkpoints, fold records
  callbacks.py  progress bar, timed checkpoints, metric logs, user hooks
  keep.py       each fold model's scored weights, kept in the run folder
  results.py    LosoResult: pooling the folds' predictions into UF1 / UAR / accuracy
  rescore.py    a finished run read back, and re-scored from its kept weights
  final.py      the recipe trained on every subject (the deployable model)

Names are imported on first use.
"""

import importlib

_LAZY = {
  'LosoConfig': 'config',
  'Training': 'config',
  'Protocol': 'config',
  'Execution': 'config',
  'Optimiser': 'config',
  'LosoData': 'data',
  'FoldPlan': 'plan',
  'PlanError': 'errors',
  'make_plan': 'plan',
  'natural_key': 'plan',
  'subject_groups': 'plan',
  'validation_subjects': 'plan',
  'fold_mesh': 'program',
  'fold_key': 'keys',
  'fold_program': 'program',
  'folds_at_once': 'program',
  'ProgramShape': 'program',
  'CPU_FOLDS_BY_SIDE': 'program',
  'put': 'program',
  'run_loso': 'run',
  'LosoResult': 'results',
  'scored_epoch': 'records',
  'NonFiniteError': 'errors',
  'FoldRecord': 'records',
  'RunStore': 'store',
  'RunInUseError': 'errors',
  'RunMismatchError': 'errors',
  'MetricLog': 'callbacks',
}
__all__ = sorted(_LAZY)


def __getattr__(name):
  if name in _LAZY:
    return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
