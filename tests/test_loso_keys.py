"""The random keys of a run's models (hfa_jax.loso.keys): members independent of each other,
single-model runs unchanged, and a run saved under the first scheme resumed with it."""

import json

import jax
import numpy as np
import optax
import pytest

from hfa_jax import train as train_lib
from hfa_jax.loso import LosoConfig, keys, run_loso
from hfa_jax.loso import store as store_lib
from tests.tiny import TinyNet, toy_data

EPOCHS, STEPS = 40, 12


def member_bits(key) -> set:
  """The keys a model trained from `key` draws from, as tuples (hfa_jax.train.create_train_state's
  init and training keys; hfa_jax.loso.program's per-epoch permutation and augmentation keys,
  and each step's, for EPOCHS epochs of STEPS steps): streams another member must not share."""
  state = train_lib.create_train_state(
    jax.numpy.asarray(key), TinyNet(), (1, 8, 8, 3), optax.sgd(0.1)
  )
  init = jax.random.split(jax.numpy.asarray(key))[0]
  out = {tuple(np.asarray(k).tolist()) for k in (key, init, state.rng)}
  for epoch in range(EPOCHS):
    epoch_key = jax.random.fold_in(state.rng, epoch)
    perm, aug = jax.random.split(epoch_key)
    out |= {tuple(np.asarray(k).tolist()) for k in (epoch_key, perm, aug)}
    for s in range(STEPS):
      step = jax.random.fold_in(aug, s)
      draws = jax.random.split(jax.random.fold_in(step, 1), 3)  # class draw, mixup, dropout
      out |= {tuple(np.asarray(k).tolist()) for k in (step, *draws)}
      out |= {tuple(np.asarray(jax.random.fold_in(step, i)).tolist()) for i in range(4)}
  return out


def test_scheme_2_members_draw_no_bits_of_member_0_and_scheme_1_is_kept():
  for seed, fold in ((0, 0), (3, 7)):
    member0 = keys.fold_key(seed, fold, 0)
    np.testing.assert_array_equal(member0, keys.fold_key(seed, fold, 0, scheme=1))
    root = jax.random.fold_in(jax.random.PRNGKey(seed), fold)
    np.testing.assert_array_equal(member0, root)  # every single-model run: unchanged
    for r in (1, 2, 3):  # scheme 1, as runs saved before schemes were recorded trained
      np.testing.assert_array_equal(keys.fold_key(seed, fold, r, 1), jax.random.fold_in(root, r))
    bits = [member_bits(keys.fold_key(seed, fold, r)) for r in range(3)]
    for a in range(3):
      for b in range(a + 1, 3):
        assert not bits[a] & bits[b], f'members {a} and {b} share random keys'
    # the defect scheme 2 mends: scheme 1's member 1 starts from member 0's training key
    assert member_bits(keys.fold_key(seed, fold, 1, scheme=1)) & bits[0]
  with pytest.raises(ValueError, match='scheme 3'):
    keys.fold_key(0, 0, 1, scheme=3)


def test_a_run_saved_without_its_key_scheme_resumes_with_scheme_1(tmp_path, monkeypatch):
  x, y, s = toy_data()
  cfg = LosoConfig(epochs=2, batch_size=8, learning_rate=1e-2, ensemble=2, folds_in_parallel=0)
  out = tmp_path / 'run'
  run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False)
  saved = json.loads((out / 'run.json').read_text())
  assert saved[store_lib.KEYS] == keys.SCHEME == 2
  new = {p.name: json.loads(p.read_text()) for p in (out / 'folds').glob('*.json')}

  # the run as a version without recorded schemes left it: no field, member 1 not yet trained
  del saved[store_lib.KEYS]
  (out / 'run.json').write_text(json.dumps(saved))
  for p in (out / 'folds').glob('*_model1.json'):
    p.unlink()
  run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False)
  resumed = {p.name: json.loads(p.read_text()) for p in (out / 'folds').glob('*.json')}
  assert store_lib.KEYS not in json.loads((out / 'run.json').read_text())

  monkeypatch.setattr(keys, 'SCHEME', 1)
  old = tmp_path / 'old'
  run_loso(x, y, s, cfg, TinyNet(), out_dir=old, progress=False)
  assert json.loads((old / 'run.json').read_text())[store_lib.KEYS] == 1
  first = {p.name: json.loads(p.read_text()) for p in (old / 'folds').glob('*.json')}
  assert sorted(resumed) == sorted(first) == sorted(new) and len(new) == 8
  for name in new:
    logits = lambda records: records[name]['test_logits'][-1]
    assert logits(resumed) == logits(first)  # scheme 1, as the run started
    if '_model1' in name:
      assert logits(new) != logits(first)  # member 1 from its own key
    else:
      assert logits(new) == logits(first)  # member 0 alike under both schemes
