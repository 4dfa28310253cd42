"""The random key of each model of a run: a pure function of (seed, fold, member), so a model
gives the same result whether it trains alone, with others, or after a resume.

A model's key K is split into its init key and its training key (hfa_jax.train.create_train_state),
and with this JAX's threefry (`jax_threefry_partitionable`) `split(K)[i] == fold_in(K, i)`:
K's children 0 and 1 are taken. The schemes, recorded in a run folder's run.json
('random_keys'; a run saved before it was recorded used scheme 1, and resumes with it):

1. member r of fold f: `fold_in(F, r)` for r >= 1, where F = fold_in(PRNGKey(seed), f) is
   member 0's key. Member 1's key is then member 0's training key: its init and its first
   epochs' keys are bits member 0 uses too (members >= 2 are independent).
2. member r >= 1: `fold_in(fold_in(F, 2), r)`, a branch of F that member 0 never takes. Member
   0 (every single-model run) is unchanged.
"""

from __future__ import annotations

import jax
import numpy as np

SCHEME = 2  # what a new run uses
SCHEMES = (1, 2)
MEMBERS_BRANCH = 2  # F's child where scheme 2's members >= 1 branch off (0, 1: member 0's)


def fold_key(seed: int, fold_id: int, replica: int = 0, scheme: int = SCHEME) -> np.ndarray:
  """The raw uint32[2] key of ensemble member `replica` of fold `fold_id` (scheme: above)."""
  if scheme not in SCHEMES:
    raise ValueError(f'random key scheme {scheme!r} is not one of {SCHEMES}')
  key = jax.random.fold_in(jax.random.PRNGKey(seed), fold_id)
  if replica and scheme == 2:
    key = jax.random.fold_in(jax.random.fold_in(key, MEMBERS_BRANCH), replica)
  elif replica:
    key = jax.random.fold_in(key, replica)
  return np.asarray(key)
