"""Fold-parallel LOSO trainer: augmentation, precise BN, vmap == one at a time,
1 == 4 devices, no recompilation, resume == uninterrupted (tiny model, tiny data)."""

import functools
import json
import os
import pathlib
import signal
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import chex
import flax.linen as nn
import numpy as np
import pytest
from jax import monitoring

from hfa_jax import loso
from hfa_jax.loso import results as results_lib
from hfa_jax.loso import store as store_lib
from hfa_jax import augment as augment_lib
from hfa_jax import optimiser
from hfa_jax import train as train_lib
from hfa_jax.loso import LosoConfig, run_loso
from hfa_jax.loso.callbacks import StopAtEpochEnd
from hfa_jax.models import registry
from hfa_jax.loso.records import FoldRecord, GroupHistory, with_scored_logits
from tests import test_real_data
from tests.tiny import TinyNet, toy_data

HERE = pathlib.Path(__file__).resolve().parent
CFG = LosoConfig(
  epochs=3,
  batch_size=8,
  learning_rate=1e-2,
  augment='flip+shift',
  max_shift=1,
  precise_bn=8,
  folds_in_parallel=0,  # all folds in one program unless a test says otherwise
)

_compiles = []
monitoring.register_event_duration_secs_listener(
  lambda event, secs, **kw: (
    _compiles.append(kw.get('fun_name'))
    if event == '/jax/core/compile/backend_compile_duration'
    else None
  )
)


def test_flip_negates_u_and_mirrors():
  x = np.random.default_rng(0).normal(size=(16, 6, 6, 3)).astype(np.float32)
  y = jax.jit(augment_lib.augment, static_argnums=(2, 3))(jax.random.PRNGKey(1), x, True, 0)
  x, y = np.asarray(x), np.asarray(y)
  mirrored = x[:, :, ::-1, :] * np.array([-1.0, 1, 1], np.float32)
  same = np.all(y == x, axis=(1, 2, 3))
  flipped = np.all(y == mirrored, axis=(1, 2, 3))
  assert np.all(same | flipped) and 0 < flipped.sum() < 16
  # flipping twice restores the image, u included
  twice = mirrored[:, :, ::-1, :] * np.array([-1.0, 1, 1], np.float32)
  np.testing.assert_array_equal(twice, x)


def test_shift_keeps_shape_and_replicates_edges():
  x = jnp.arange(8 * 5 * 5 * 3, dtype=jnp.float32).reshape(8, 5, 5, 3) + 1
  y = jax.jit(augment_lib.augment, static_argnums=(2, 3))(jax.random.PRNGKey(3), x, False, 1)
  assert y.shape == x.shape
  moved = 0
  for a, b in zip(np.asarray(x), np.asarray(y)):  # b is a window of edge-padded a
    padded = np.pad(a, ((1, 1), (1, 1), (0, 0)), mode='edge')
    assert any(np.array_equal(padded[i : i + 5, j : j + 5], b) for i in range(3) for j in range(3))
    assert b.min() > 0  # never a zero border
    moved += not np.array_equal(a, b)
  assert moved > 0


def test_mixup_mixes_images_and_targets_alike():
  x = np.random.default_rng(0).normal(size=(8, 4, 4, 3)).astype(np.float32)
  t = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
  mx, mt = jax.jit(augment_lib.mixup, static_argnums=3)(jax.random.PRNGKey(0), x, t, 0.4)
  mx, mt = np.asarray(mx), np.asarray(mt)
  np.testing.assert_allclose(mt.sum(-1), 1, rtol=1e-6)
  assert (mt.max(-1) >= 0.5 - 1e-6).all()  # each sample stays closest to itself
  for k in range(8):  # mx[k] = lam x[k] + (1 - lam) x[j] with the same lam and j as mt[k]
    fits = []
    for j in range(8):
      d = (x[k] - x[j]).ravel()
      lam = 1.0 if j == k else float(d @ (mx[k] - x[j]).ravel() / (d @ d))
      if np.allclose(lam * x[k] + (1 - lam) * x[j], mx[k], atol=1e-4):
        fits.append((lam, j))
    assert fits and any(np.allclose(l * t[k] + (1 - l) * t[j], mt[k], atol=1e-4) for l, j in fits)


def test_class_weighted_loss_is_a_weighted_mean():
  logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
  labels = jnp.array([0, 1, 2])
  each = -jax.nn.log_softmax(logits)[jnp.arange(3), labels]
  w = jnp.array([1.0, 2.0, 0.5])
  got = train_lib.cross_entropy(logits, labels, 3, class_weights=w)
  np.testing.assert_allclose(got, (each * w).sum() / w.sum(), rtol=1e-6)
  np.testing.assert_allclose(train_lib.cross_entropy(logits, labels, 3), each.mean(), rtol=1e-6)


def test_class_weighted_smoothed_loss_is_torchs():
  """balance 'loss' with label smoothing: torch's CrossEntropyLoss(weight, label_smoothing)
  (each class's term weighed by its weight, divided by the samples' own weights), not each
  sample weighed by its smoothed target's mix of weights."""
  torch = pytest.importorskip('torch', reason='PyTorch is not installed: the reference needs it')
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(6, 3)).astype(np.float32)
  labels = np.array([0, 0, 0, 0, 1, 2])
  w = np.array([0.25, 1.0, 1.0], np.float32)
  for smoothing in (0.0, 0.3):
    want = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), label_smoothing=smoothing)(
      torch.tensor(logits), torch.tensor(labels)
    )
    got = train_lib.cross_entropy(
      jnp.asarray(logits), jnp.asarray(labels), 3, smoothing, jnp.asarray(w)
    )
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)


def test_precise_batch_stats_recovers_batch_statistics():
  model = TinyNet()
  x = np.random.default_rng(1).normal(1, 2, (32, 8, 8, 3)).astype(np.float32)

  @jax.jit
  def both(key, x):
    state = train_lib.create_train_state(key, model, (1, 8, 8, 3), optimiser.OptimConfig())
    _, new = model.apply(
      {'params': state.params, 'batch_stats': state.batch_stats},
      x,
      train=True,
      mutable=['batch_stats'],
    )
    return train_lib.precise_batch_stats(state, x), state.batch_stats, new['batch_stats']

  precise, old, new = both(jax.random.PRNGKey(0), x)
  # Flax BatchNorm(momentum=0.9): new = 0.9 old + 0.1 batch, from the initial (0, 1).
  for k in ('mean', 'var'):
    want = (new['BatchNorm_0'][k] - 0.9 * old['BatchNorm_0'][k]) / 0.1
    np.testing.assert_allclose(precise['BatchNorm_0'][k], want, rtol=1e-4, atol=1e-5)


def test_train_and_eval_step():
  state = train_lib.create_train_state(
    jax.random.PRNGKey(0), TinyNet(), (1, 8, 8, 3), optimiser.OptimConfig(learning_rate=1e-2)
  )
  x, y, _ = toy_data()
  step = jax.jit(train_lib.train_step)
  losses = []
  for _ in range(20):
    state, m = step(state, jnp.asarray(x), jnp.asarray(y))
    losses.append(float(m['loss']))
  assert losses[-1] < losses[0]
  assert int(state.step) == 20
  assert train_lib.eval_step(state, jnp.asarray(x[:5])).shape == (5, 3)


def test_schedules():
  cos = optimiser.make_schedule(
    optimiser.OptimConfig(learning_rate=1.0, warmup_steps=2, total_steps=10)
  )
  assert float(cos(0)) == 0 and float(cos(2)) == pytest.approx(1.0)
  assert float(cos(10)) == pytest.approx(0.0, abs=1e-6)
  const = optimiser.make_schedule(optimiser.OptimConfig(learning_rate=0.5, schedule='constant'))
  assert float(const(0)) == float(const(1000)) == 0.5
  with pytest.raises(ValueError, match='schedule'):
    optimiser.make_schedule(optimiser.OptimConfig(schedule='step'))


def test_config_validation():
  with pytest.raises(ValueError, match='epochs'):
    LosoConfig(epochs=0).validate()
  with pytest.raises(ValueError, match='augment'):
    LosoConfig(augment='flip+spin').validate()
  assert LosoConfig(augment='flip+shift', max_shift=3).augmentations() == (True, 3)
  assert LosoConfig(augment='none').augmentations() == (False, 0)


def test_folds_at_once_by_request_device_and_side():
  cpu = types.SimpleNamespace(platform='cpu', memory_stats=lambda: None)
  assert loso.folds_at_once(0, 10, 32, 16, [cpu]) == 10  # 0: all
  assert loso.folds_at_once(8, 3, 32, 16, [cpu]) == 3  # never more than there are
  assert loso.folds_at_once(3, 10, 32, 16, [cpu, cpu]) == 4  # a multiple of the devices
  # none: on CPU by side (CPU_FOLDS_BY_SIDE)
  assert [loso.folds_at_once(None, 40, s, 16, [cpu]) for s in (28, 32, 64, 224)] == [4, 4, 1, 1]
  assert loso.folds_at_once(None, 2, 32, 16, [cpu]) == 2

  def accelerator(gib):
    stats = {'bytes_limit': gib * 2**30} if gib else None
    return types.SimpleNamespace(platform='gpu', memory_stats=lambda: stats)

  # HFA-Net (the default), 224 px, batch 32: about 13.5 GiB per fold (hfa_jax.loso.memory);
  # half of 16 GiB holds none (one is the least), half of 141 GiB 5
  assert loso.folds_at_once(None, 68, 224, 32, [accelerator(16)]) == 1
  assert loso.folds_at_once(None, 68, 224, 32, [accelerator(141)]) == 5
  # 32 px, batch 16: about 507 MiB per fold; 8 devices of 8 GiB hold 8 each
  assert loso.folds_at_once(None, 100, 32, 16, [accelerator(8)] * 8) == 64
  assert loso.folds_at_once(None, 68, 32, 16, [accelerator(8)] * 8) == 64  # 68 -> 8 per device
  assert loso.folds_at_once(None, 68, 224, 32, [accelerator(None)]) == 68  # no figure: all
  # the plan is the network's: HTNet at 28 px, batch 256, 2.9 GiB a fold (its state alone
  # 2.1 GiB), where HFA-Net's figures (2.5 GiB at 32 px) would have put 3 on the device
  htnet = registry.build('htnet', 3)
  assert loso.folds_at_once(None, 68, 28, 256, [accelerator(16)], htnet) == 2
  assert loso.folds_at_once(None, 68, 32, 256, [accelerator(16)]) == 3
  # the replicated dataset takes its room on each device: 10,000 images of 32 px, 117 MiB
  assert loso.folds_at_once(None, 68, 32, 16, [accelerator(16)]) == 16
  assert loso.folds_at_once(None, 68, 32, 16, [accelerator(16)], samples=10_000) == 15


def test_plan_pads_tables_and_orders_subjects():
  x, y, s = toy_data(n_subjects=3, per_subject=4)
  s = s.astype('<U3')
  s[:2] = 's10'  # natural order: s1 < s2 < s3 < s10
  plan = loso.make_plan(y, s, LosoConfig(batch_size=4, eval_batch_size=3))
  assert plan.folds == ["s1", "s2", "s3", "s10"]
  assert plan.train_idx.shape == (4, 10) and plan.test_idx.shape[1] % plan.eval_batch == 0
  for f, subj in enumerate(plan.folds):
    train = plan.train_idx[f, : plan.train_count[f]]
    test = plan.test_idx[f, : plan.test_count[f]]
    assert set(s[train]) == set(s) - {subj} and set(s[test]) == {subj}
  with pytest.raises(loso.PlanError, match='unknown subjects'):
    loso.make_plan(y, s, LosoConfig(), only_subjects=['s9'])


def _compare(a, b, atol=1e-5):
  np.testing.assert_array_equal(a['predictions']['index'], b['predictions']['index'])
  np.testing.assert_allclose(a['predictions']['probs'], b['predictions']['probs'], atol=atol)
  np.testing.assert_array_equal(a['predictions']['pred'], b['predictions']['pred'])
  for s in a['history']:
    np.testing.assert_allclose(
      a['history'][s]['train_loss'], b['history'][s]['train_loss'], rtol=1e-4
    )


def test_vmap_together_equals_one_at_a_time_without_recompiling():
  x, y, s = toy_data()
  s[12:14] = 's1'  # unequal subjects: s1 has 8 samples, s3 has 4
  cfg = dataclasses_replace(CFG, batch_size=6)  # programs no other test compiles
  compiles = lambda since: _compiles[since:].count('jit(epoch_one)')
  before = len(_compiles)
  together = run_loso(x, y, s, cfg, TinyNet(), progress=False)  # 4 folds at once
  n_together = compiles(before)
  before = len(_compiles)
  one = dataclasses_replace(cfg, folds_in_parallel=1)
  alone = run_loso(x, y, s, one, TinyNet(), progress=False)  # 4 groups of 1
  # one compiled epoch program per run, whatever the number of groups and epochs
  assert n_together == 1 and compiles(before) == 1
  _compare(together, alone)
  assert set(together['per_subject']) == {'s1', 's2', 's3', 's4'}
  assert together['per_subject']['s3']['n'] == 4
  # a part of the LOSO gives the same folds as the whole (s3 has the fewest samples),
  # and another seed reuses the compiled program
  before = len(_compiles)
  part = run_loso(x, y, s, one, TinyNet(), only_subjects=['s3'], progress=False)
  run_loso(
    x, y, s, dataclasses_replace(one, seed=5), TinyNet(), only_subjects=['s3'], progress=False
  )
  assert compiles(before) == 0
  sel = together['predictions']['subject'] == 's3'
  np.testing.assert_allclose(
    part['predictions']['probs'], together['predictions']['probs'][sel], atol=1e-5
  )


def dataclasses_replace(cfg, **kw):
  import dataclasses

  return dataclasses.replace(cfg, **kw)


_DEVICES_SCRIPT = r'''
import os, sys, json
import numpy as np
import jax
sys.path.insert(0, {root!r})
from hfa_jax.loso.records import FoldRecord, GroupHistory, with_scored_logits
from tests.tiny import TinyNet, toy_data
from hfa_jax.loso import LosoConfig, run_loso
assert jax.device_count() == 4, jax.devices()
x, y, s = toy_data()
out = {{}}
for fp in (0, 3):
  cfg = LosoConfig(**json.loads({cfg!r}), folds_in_parallel=fp)
  r = run_loso(x, y, s, cfg, TinyNet(), progress=False)
  out[fp] = r['predictions']['probs']
np.savez({path!r}, **{{str(k): v for k, v in out.items()}})
'''


def test_one_and_four_devices_agree(tmp_path):
  import dataclasses

  cfg = {k: v for k, v in dataclasses.asdict(CFG).items() if k != 'folds_in_parallel'}
  path = str(tmp_path / 'four.npz')
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4', JAX_PLATFORMS='cpu')
  script = _DEVICES_SCRIPT.format(root=str(HERE.parent), cfg=json.dumps(cfg), path=path)
  proc = subprocess.run(
    [sys.executable, '-c', script],
    env=env,
    capture_output=True,
    text=True,
    cwd=str(HERE.parent),
    timeout=600,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  four = np.load(path)
  x, y, s = toy_data()
  one = run_loso(x, y, s, CFG, TinyNet(), progress=False)['predictions']['probs']
  # 4 folds on 4 devices (one each), and 3-fold groups padded to 4
  np.testing.assert_allclose(four['0'], one, atol=1e-5)
  np.testing.assert_allclose(four['3'], one, atol=1e-5)


class Stop(Exception):
  pass


def test_resume_after_a_kill_gives_the_same_results(tmp_path):
  x, y, s = toy_data()
  cfg = dataclasses_replace(CFG, folds_in_parallel=2, checkpoint_minutes=0)  # 2 groups of 2
  full = run_loso(x, y, s, cfg, TinyNet(), progress=False)

  def kill_at(group, epoch):
    def hook(g, e, info):
      if (g, e) == (group, epoch):
        raise Stop

    return hook

  out = tmp_path / 'run'
  # killed in the first group after epoch 2 (checkpointed), then in the second group
  with pytest.raises(Stop):
    run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False, on_epoch=kill_at(0, 1))
  assert not list((out / 'folds').glob('*.json'))
  epochs_seen = []
  with pytest.raises(Stop):
    run_loso(
      x,
      y,
      s,
      cfg,
      TinyNet(),
      out_dir=out,
      progress=False,
      on_epoch=lambda g, e, i: (epochs_seen.append((g, e)), kill_at(1, 0)(g, e, i)),
    )
  assert epochs_seen[0] == (0, 2)  # resumed after the checkpointed epoch
  assert len(list((out / 'folds').glob('*.json'))) == 2
  resumed = run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False)
  np.testing.assert_array_equal(resumed['predictions']['probs'], full['predictions']['probs'])
  assert resumed['history'] == full['history']
  # a finished run reloads without training
  again = run_loso(
    x,
    y,
    s,
    cfg,
    TinyNet(),
    out_dir=out,
    progress=False,
    on_epoch=lambda *a: pytest.fail('trained again'),
  )
  np.testing.assert_array_equal(again['predictions']['probs'], full['predictions']['probs'])
  # other settings in the same folder are refused
  with pytest.raises(loso.RunMismatchError, match='learning_rate: 0.01 in the run, 0.5 given'):
    run_loso(
      x, y, s, dataclasses_replace(cfg, learning_rate=0.5), TinyNet(), out_dir=out, progress=False
    )


class Preempt:
  """Sends SIGTERM `times` times as the epoch `at` starts; keeps the epochs trained. An epoch
  is (the first model of its group, its phase, its index)."""

  def __init__(self, at=None, times=1):
    self.at, self.times, self.seen = at, times, []

  def on_epoch_start(self, group, phase, epoch):
    if (group.first, phase.name, epoch) == self.at:
      for _ in range(self.times):
        os.kill(os.getpid(), signal.SIGTERM)

  def on_epoch_end(self, end):
    self.seen.append((end.group.first, end.phase.name, end.epoch))


def preempted(run, at=None, times=1) -> tuple:
  """run(callbacks=...) with StopAtEpochEnd and SIGTERM as the epoch `at` starts (Preempt),
  whose handler stops the run as experiments.loso's does: (the epochs trained, the result or
  None where stopped)."""

  def stop(signum, frame):
    raise Stop

  preempt = Preempt(at, times)
  previous = signal.signal(signal.SIGTERM, stop)
  try:
    return preempt.seen, run(callbacks=(preempt, StopAtEpochEnd()))
  except Stop:
    return preempt.seen, None
  finally:
    assert signal.signal(signal.SIGTERM, previous) is stop  # given back


def saved_steps(monkeypatch) -> list:
  """The steps of the checkpoints that RunStore.save writes from now on."""
  steps, save = [], store_lib.RunStore.save
  monkeypatch.setattr(
    store_lib.RunStore, 'save', lambda self, step, *a: (steps.append(step), save(self, step, *a))
  )
  return steps


def test_a_sigterm_stops_at_the_epochs_end_saved_there_and_the_resume_trains_on(
  tmp_path, monkeypatch
):
  """A SIGTERM (a scheduler's preemption) stops the run at the end of the epoch it lands in,
  saved there however long checkpoint_minutes is: the resume trains from the next epoch. One
  that lands in a group's last epoch lets the group's fold records be saved and stops before
  the next group trains. A second SIGTERM stops at once. The results are an uninterrupted
  run's."""
  x, y, s = toy_data()
  cfg = dataclasses_replace(CFG, folds_in_parallel=2, checkpoint_minutes=60)  # 2 groups of 2
  full = run_loso(x, y, s, cfg, TinyNet(), progress=False)
  out, steps = tmp_path / 'run', saved_steps(monkeypatch)
  run = functools.partial(run_loso, x, y, s, cfg, TinyNet(), out_dir=out, progress=False)
  assert preempted(run, (0, 'train', 1), times=2) == ([(0, 'train', 0)], None)  # at once
  assert steps == []
  # landing in epoch 1 of the first group: it ends, saved with 2 of 3 epochs done (step 2)
  assert preempted(run, (0, 'train', 1)) == ([(0, 'train', 0), (0, 'train', 1)], None)
  assert steps == [2]
  # the resume trains epoch 2, the group's last: its records are saved, the next group waits
  assert preempted(run, (0, 'train', 2)) == ([(0, 'train', 2)], None)
  assert len(list((out / 'folds').glob('*.json'))) == 2 and steps == [2]
  seen, resumed = preempted(run)
  assert seen == [(2, 'train', e) for e in range(3)]  # the second group, from its start
  np.testing.assert_array_equal(resumed['predictions']['probs'], full['predictions']['probs'])
  assert resumed['history'] == full['history']


def test_a_resume_refuses_another_grouping_or_evaluation_layout_and_keeps_every_model(
  tmp_path, monkeypatch
):
  """Stopped after a checkpointed epoch of its first group (2 models at a time): a resume
  that would group the models otherwise (its checkpoint ignored, its training lost) or lay out
  the evaluated logits otherwise (eval_batch_size: its curves misread) is refused, saying
  how to resume; the same settings resume. A stop while the group's checkpoint is deleted
  (after its kept models and records) loses no kept model."""
  from hfa_jax.loso import rescore

  x, y, s = toy_data()
  cfg = dataclasses_replace(CFG, folds_in_parallel=2, checkpoint_minutes=0)
  out = tmp_path / 'run'

  def stop_at(group, epoch):
    def hook(g, e, info):
      if (g, e) == (group, epoch):
        raise Stop

    return hook

  with pytest.raises(Stop):
    run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False, on_epoch=stop_at(0, 1))
  one = dataclasses_replace(cfg, folds_in_parallel=1)
  with pytest.raises(loso.RunMismatchError, match='Resume with folds_in_parallel 2'):
    run_loso(x, y, s, one, TinyNet(), out_dir=out, progress=False)
  rows = dataclasses_replace(cfg, eval_batch_size=1)  # 1 test sample a row, not a subject's 6
  with pytest.raises(loso.RunMismatchError, match='evaluated 6 samples a row, this run 1'):
    run_loso(x, y, s, rows, TinyNet(), out_dir=out, progress=False)
  drop = store_lib.RunStore.drop_checkpoints
  stops = []

  def stopped_while_deleting(store):
    drop(store)
    if not stops:
      stops.append(1)
      raise Stop  # as a Ctrl-C held back during the deletion lands after it

  monkeypatch.setattr(store_lib.RunStore, 'drop_checkpoints', stopped_while_deleting)
  with pytest.raises(Stop):
    run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False)
  monkeypatch.undo()
  assert len(list((out / 'folds').glob('*.json'))) == 2  # the first group's
  result = run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False)
  assert sorted(p.name for p in (out / 'models').iterdir()) == ['s1', 's2', 's3', 's4']
  again = rescore.rescore(out, loso.LosoData.of(x, y, s), cfg, TinyNet())
  np.testing.assert_allclose(
    again['predictions']['probs'], result['predictions']['probs'], atol=1e-5
  )


def test_best_epoch_selection_is_reported():
  x, y, s = toy_data()
  honest = run_loso(x, y, s, CFG, TinyNet(), progress=False)
  best = run_loso(
    x, y, s, dataclasses_replace(CFG, select_epoch='best_test'), TinyNet(), progress=False
  )
  assert honest['metrics']['uf1'] > 0.4  # it learns (chance is about 1/3)
  assert 'honest' in honest['protocol'] and 'OWN TEST ACCURACY' in best['protocol']
  assert best['select_epoch'] == 'best_test'
  assert set(honest['selected_epoch'].values()) == {CFG.epochs}
  for subj, h in best['history'].items():
    assert h['test_accuracy'][best['selected_epoch'][subj] - 1] == max(h['test_accuracy'])
  assert best['metrics']['accuracy'] >= honest['metrics']['accuracy']
  # evaluating after the last epoch only gives the same (honest) result, without curves
  last_only = run_loso(
    x, y, s, dataclasses_replace(CFG, eval_every_epoch=False), TinyNet(), progress=False
  )
  np.testing.assert_array_equal(last_only['predictions']['probs'], honest['predictions']['probs'])
  acc = last_only['history']['s1']['test_accuracy']
  assert np.isnan(acc[:-1]).all() and np.isfinite(acc[-1])


@pytest.mark.skipif(
  test_real_data.REAL.is_dir(),
  reason='tests/test_real_data.py trains HFA-Net at 32 px on the real flow images: one compile '
  'of its fold program per suite (this test stands in where ../shared/real is absent)',
)
def test_hfanet_short_run_at_side_32():
  """The trainer with the real network (one fold-epoch program compile, ~1 min on 2 cores)."""
  import hfa_jax

  x, y, s = toy_data(n_subjects=2, per_subject=4, side=32)
  r = run_loso(
    x,
    y,
    s,
    LosoConfig(epochs=1, batch_size=4, steps_per_epoch=1, precise_bn=4),
    hfa_jax.HFANet(num_classes=3),
    progress=False,
  )
  assert r['predictions']['probs'].shape == (8, 3)
  assert np.isfinite(r['predictions']['probs']).all()


def test_validation_subjects_are_stratified_fixed_and_never_all():
  strata = {f'a{i}': 'casme2' for i in range(5)} | {f'b{i}': 'smic' for i in range(3)}
  pick = loso.validation_subjects(sorted(strata), strata, 0.4, seed=0, fold_id=3)
  assert pick == loso.validation_subjects(sorted(strata), strata, 0.4, seed=0, fold_id=3)
  assert sum(strata[p] == 'casme2' for p in pick) == 2  # round(0.4 * 5)
  assert sum(strata[p] == 'smic' for p in pick) == 1  # round(0.4 * 3)
  others = {tuple(loso.validation_subjects(sorted(strata), strata, 0.4, 0, f)) for f in range(8)}
  assert len(others) > 1  # folds differ
  two = {'x1': 'd', 'x2': 'd'}
  assert len(loso.validation_subjects(['x1', 'x2'], two, 0.9, 0, 0)) == 1  # one stays


def test_validation_with_no_subject_to_hold_out_is_refused_before_training():
  """Two databases of 2 subjects: each fold's training subjects hold one of each, and a
  database never gives all its subjects to validation, so no fold could choose an epoch."""
  labels, subjects, strata = np.zeros(4, int), ['a', 'a', 'b', 'b'], ['x', 'x', 'y', 'y']
  with pytest.raises(loso.PlanError, match=r"none to validate on.*select_epoch 'last'"):
    loso.make_plan(labels, subjects, LosoConfig(select_epoch='validation'), strata=strata)
  three = ['a', 'a', 'b', 'b', 'c', 'c']  # one database of 3: each fold validates on one
  plan = loso.make_plan(np.zeros(6, int), three, LosoConfig(select_epoch='validation'))
  assert [len(v) for v in plan.val_subjects] == [1, 1, 1]


def test_rescoring_keeps_the_scored_best_test_epoch_and_validation_needs_its_choice():
  """Re-scored logits that lower the best test epoch's accuracy (kept weights evaluated again)
  leave that epoch scored: the weights are that epoch's. A run without a validation choice
  cannot be pooled by validation, and says so."""
  labels = np.array([0, 1])
  right, wrong = [[5.0, 0.0], [0.0, 5.0]], [[5.0, 0.0], [5.0, 0.0]]
  rec = FoldRecord(
    's1', ['s1'], 0, 0, [0, 1], [], [], [1.0] * 3, [0.5] * 3, [wrong, right, wrong], []
  )
  assert rec.scored(labels, 'best_test') == (2, right)
  again = with_scored_logits(rec, wrong, labels, 'best_test')
  assert again.scored(labels, 'best_test') == (2, wrong)  # not epoch 1 (the earlier of a tie)
  assert again.test_logits == [wrong, wrong, wrong] and rec.test_logits[1] == right
  assert with_scored_logits(rec, right, labels, 'last').scored(labels, 'last') == (3, right)
  with pytest.raises(ValueError, match="fold s1 chose no epoch by validation.*'last'"):
    rec.scored(labels, 'validation')


def test_grouped_folds_partition_subjects_per_database():
  x, y, s = toy_data(n_subjects=6, per_subject=2)
  strata = np.where(np.isin(s, ['s1', 's2', 's3']), 'a', 'b')
  plan = loso.make_plan(y, s, LosoConfig(group_folds=3), strata=strata)
  assert plan.folds == ['fold1', 'fold2', 'fold3']
  assert sorted(sum(plan.test_subjects, [])) == sorted(set(s))
  for f, group in enumerate(plan.test_subjects):
    assert sorted(set(strata[np.isin(s, group)])) == ['a', 'b']  # one of each database
    test = plan.test_idx[f, : plan.test_count[f]]
    assert set(s[test]) == set(group)
    assert not set(s[plan.train_idx[f, : plan.train_count[f]]]) & set(group)


VAL = dataclasses_replace(
  CFG, epochs=4, select_epoch='validation', val_fraction=0.34, folds_in_parallel=2
)


def _six_subjects():
  x, y, s = toy_data(n_subjects=6, per_subject=6)
  return x, y, s, np.where(np.isin(s, ['s1', 's2', 's3']), 'casme2', 'smic')


def test_validation_selection_never_reads_the_test_subject():
  x, y, s, strata = _six_subjects()
  a = run_loso(x, y, s, VAL, TinyNet(), strata=strata, only_subjects=['s1', 's4'], progress=False)
  x2 = x.copy()
  x2[s == 's1'] = -3 * x2[s == 's1']  # the test subject of fold s1 changes...
  b = run_loso(x2, y, s, VAL, TinyNet(), strata=strata, only_subjects=['s1', 's4'], progress=False)
  assert not np.allclose(
    a['predictions']['probs'][a['predictions']['fold'] == 's1'],
    b['predictions']['probs'][b['predictions']['fold'] == 's1'],
  )
  h_a, h_b = a['history']['s1'], b['history']['s1']
  np.testing.assert_array_equal(h_a['val_uf1'], h_b['val_uf1'])  # ...its choice does not
  assert a['selected_epoch'] == b['selected_epoch']
  for fold in ('s1', 's4'):
    h = a['history'][fold]
    assert fold not in h['val_subjects'] and len(h['val_subjects']) == 2
    uf1 = np.asarray(h['val_uf1'])
    assert a['selected_epoch'][fold] == max(e + 1 for e in range(4) if uf1[e] == uf1.max())
  assert 'validation subjects' in a['protocol'] and 'honest' in a['protocol']


def test_validation_choice_ignores_a_test_curve_that_would_change_it():
  """Fold s1's test labels are rotated so that its test curve peaks elsewhere: the
  best-test choice moves, the validation choice does not."""
  x, y, s, strata = _six_subjects()
  runs = []
  for shift in range(3):
    y2 = y.copy()
    y2[s == 's1'] = (y2[s == 's1'] + shift) % 3
    runs.append(
      run_loso(x, y2, s, VAL, TinyNet(), strata=strata, only_subjects=['s1'], progress=False)
    )
  curves = [r['history']['s1']['test_accuracy'] for r in runs]
  best_test = {int(np.argmax(c[::-1])) for c in curves}
  assert len(best_test) > 1  # the test curve would change the choice
  assert len({r['selected_epoch']['s1'] for r in runs}) == 1  # validation's does not
  r = runs[0]
  h = r['history']['s1']
  assert r['selected_epoch']['s1'] == len(h['val_uf1']) - int(np.argmax(h['val_uf1'][::-1]))
  assert (r['predictions']['epoch'] == r['selected_epoch']['s1']).all()


def test_retrain_resumes_and_scores_the_chosen_epoch(tmp_path):
  x, y, s, strata = _six_subjects()
  cfg = dataclasses_replace(VAL, retrain=True, checkpoint_minutes=0)
  full = run_loso(
    x, y, s, cfg, TinyNet(), strata=strata, only_subjects=['s1', 's5'], progress=False
  )
  for fold, e in full['selected_epoch'].items():
    assert 1 <= e <= cfg.epochs
    assert (full['predictions']['epoch'][full['predictions']['fold'] == fold] == e).all()
    assert 'retrain_loss' in full['history'][fold]
  assert 'retrained' in full['protocol']
  seen = []
  first, last = min(full['selected_epoch'].values()), max(full['selected_epoch'].values())
  assert first < last  # a stop after the first chosen epoch, before the retrain phase's end

  def kill_in_retrain(g, e, info):
    seen.append(info['phase'])
    if info['phase'] == 'retrain' and e + 1 == first:  # checkpointed, then stopped
      raise Stop

  out = tmp_path / 'run'
  with pytest.raises(Stop):
    run_loso(
      x,
      y,
      s,
      cfg,
      TinyNet(),
      strata=strata,
      only_subjects=['s1', 's5'],
      out_dir=out,
      progress=False,
      on_epoch=kill_in_retrain,
    )
  assert seen.count('train') == cfg.epochs
  resumed = run_loso(
    x, y, s, cfg, TinyNet(), strata=strata, only_subjects=['s1', 's5'], out_dir=out, progress=False
  )
  np.testing.assert_allclose(
    resumed['predictions']['probs'], full['predictions']['probs'], atol=1e-6
  )
  assert resumed['selected_epoch'] == full['selected_epoch']
  # every retrained model is kept, also the one whose chosen epoch was trained before the stop
  assert sorted(p.name for p in (out / 'models').iterdir()) == ['s1', 's5']
  from hfa_jax.loso import rescore

  data = loso.LosoData.of(x, y, s, strata)
  again = rescore.rescore(out, data, cfg, TinyNet(), ['s1', 's5'])
  np.testing.assert_allclose(again['predictions']['probs'], full['predictions']['probs'], atol=1e-5)


def test_a_sigterm_with_retraining_stops_after_the_phase_end_checkpoint(tmp_path, monkeypatch):
  """A SIGTERM in the train phase's last epoch stops the run once validation has chosen and
  the retrain phase is saved; one in the retrain phase, at the end of its epoch, saved there.
  The resumes train on from there, keep every model and end as an uninterrupted run."""
  x, y, s, strata = _six_subjects()
  cfg = dataclasses_replace(VAL, retrain=True, checkpoint_minutes=60)  # one group of 2
  run = functools.partial(
    run_loso, x, y, s, cfg, TinyNet(), strata=strata, only_subjects=['s1', 's5'], progress=False
  )
  full = run()
  last = max(full['selected_epoch'].values())
  assert last > 1  # the retrain phase has an epoch after its first
  steps = saved_steps(monkeypatch)
  out = tmp_path / 'run'
  run = functools.partial(run, out_dir=out)
  assert preempted(run, (0, 'train', 3)) == ([(0, 'train', e) for e in range(4)], None)
  assert steps == [4]  # (phase 1, epoch 0) of 4 epochs a phase: validation has chosen
  assert preempted(run, (0, 'retrain', 0)) == ([(0, 'retrain', 0)], None)
  assert steps == [4, 5]
  seen, resumed = preempted(run)
  assert seen == [(0, 'retrain', e) for e in range(1, last)]
  np.testing.assert_allclose(
    resumed['predictions']['probs'], full['predictions']['probs'], atol=1e-6
  )
  assert resumed['selected_epoch'] == full['selected_epoch']
  assert sorted(p.name for p in (out / 'models').iterdir()) == ['s1', 's5']


class NaNNet(TinyNet):
  """TinyNet whose logits are NaN for inputs with a large mean (one subject below)."""

  def __call__(self, x, train: bool = False):
    logits = super().__call__(x, train)
    return jnp.where(x.mean((1, 2, 3))[:, None] > 50, jnp.nan, logits)


def test_non_finite_logits_fail_the_run_naming_the_fold():
  x, y, s = toy_data()
  x[s == 's3'] += 100
  with pytest.raises(loso.NonFiniteError, match='fold s3'):
    run_loso(x, y, s, CFG, NaNNet(), progress=False)


def test_weight_average_follows_its_formula_and_is_evaluated():
  x, y, _ = toy_data()
  state = train_lib.create_train_state(
    jax.random.PRNGKey(0),
    TinyNet(),
    (1, 8, 8, 3),
    optimiser.OptimConfig(learning_rate=0.1),
    ema=True,
  )
  init = state.params
  state, _ = train_lib.train_step(state, jnp.asarray(x), jnp.asarray(y))
  state = train_lib.update_ema(state, 0.9)
  d = min(0.9, 2 / 11)  # step 1: (1 + 1) / (10 + 1)
  want = jax.tree.map(lambda a, b: d * a + (1 - d) * b, init, state.params)
  chex.assert_trees_all_close(state.ema['params'], want, rtol=1e-6)
  view = train_lib.averaged(state)
  chex.assert_trees_all_close(view.params, state.ema['params'])
  assert train_lib.averaged(state.replace(ema=None)).params is state.params
  # the trainer evaluates the average: other logits than without it, same training
  cfg = dataclasses_replace(CFG, epochs=2, precise_bn=0)
  plain = run_loso(x, y, toy_data()[2], cfg, TinyNet(), progress=False)
  ema = run_loso(
    x, y, toy_data()[2], dataclasses_replace(cfg, ema_decay=0.5), TinyNet(), progress=False
  )
  for s in plain['history']:
    np.testing.assert_allclose(
      plain['history'][s]['train_loss'], ema['history'][s]['train_loss'], rtol=1e-5
    )
  assert not np.allclose(plain['predictions']['probs'], ema['predictions']['probs'])


def test_a_run_on_changed_data_or_in_use_is_refused_clearly(tmp_path):
  x, y, s = toy_data()
  cfg = dataclasses_replace(CFG, epochs=1)
  out = tmp_path / 'run'
  run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False, only_subjects=['s1'])
  y2 = y.copy()
  y2[0] = (y2[0] + 1) % 3  # a rebuilt dataset: one label changed
  with pytest.raises(loso.RunMismatchError, match='on other data: the labels differ'):
    run_loso(x, y2, s, cfg, TinyNet(), out_dir=out, progress=False, only_subjects=['s1'])
  held = store_lib.lock(str(out / '.lock'))  # as a second process still training
  try:
    with pytest.raises(loso.RunInUseError, match='in use by a run still going'):
      run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False, only_subjects=['s1'])
  finally:
    held.close()
  run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False, only_subjects=['s1'])


def test_a_run_that_fails_before_training_releases_its_folder(tmp_path, monkeypatch):
  """An error after the run folder is locked (here building the fold program, as a device out
  of memory would) releases it: the same process can run there again at once."""
  from hfa_jax.loso import run as run_lib

  x, y, s = toy_data()
  cfg = dataclasses_replace(CFG, epochs=1)
  out = tmp_path / 'run'

  def no_program(*args):
    raise MemoryError('no room for the program')

  monkeypatch.setattr(run_lib, 'fold_program', no_program)
  with pytest.raises(MemoryError) as failed:  # its traceback (and frames) kept alive
    run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False, only_subjects=['s1'])
  monkeypatch.undo()
  run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False, only_subjects=['s1'])
  assert failed.value is not None


class MeanFlowNet(nn.Module):
  """Logits (mean u, mean v, 0) whatever its (unused but trained) parameter."""

  num_classes: int = 3

  @nn.compact
  def __call__(self, x, train: bool = False):
    w = self.param('w', nn.initializers.zeros, (1,))
    logits = jnp.stack([x[..., 0].mean((1, 2)), x[..., 1].mean((1, 2)), jnp.zeros(x.shape[0])], -1)
    return logits + 0 * w


def test_test_flip_averages_the_mirrored_prediction():
  x, y, s = toy_data()
  x[..., 0] += np.linspace(0, 1, 8)  # u is not left-right symmetric
  cfg = dataclasses_replace(CFG, epochs=1, precise_bn=0, augment='none')
  plain = run_loso(x, y, s, cfg, MeanFlowNet(), progress=False, only_subjects=['s2'])
  both = run_loso(
    x,
    y,
    s,
    dataclasses_replace(cfg, test_flip=True),
    MeanFlowNet(),
    progress=False,
    only_subjects=['s2'],
  )
  idx = plain['predictions']['index']
  u, v = x[idx, :, :, 0].mean((1, 2)), x[idx, :, :, 1].mean((1, 2))
  softmax = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)
  zero = np.zeros_like(u)
  np.testing.assert_allclose(
    plain['predictions']['probs'], softmax(np.stack([u, v, zero], -1)), rtol=1e-5
  )
  # the mirror negates u: the average of (u, v, 0) and (-u, v, 0) is (0, v, 0)
  np.testing.assert_allclose(
    both['predictions']['probs'], softmax(np.stack([zero, v, zero], -1)), rtol=1e-5, atol=1e-6
  )


def test_ensemble_averages_its_models_and_its_first_is_the_single_model(tmp_path):
  x, y, s = toy_data()
  cfg = dataclasses_replace(CFG, epochs=2, folds_in_parallel=3)
  one = run_loso(x, y, s, cfg, TinyNet(), progress=False)
  out = tmp_path / 'ens'
  two = run_loso(
    x, y, s, dataclasses_replace(cfg, ensemble=2), TinyNet(), out_dir=out, progress=False
  )
  assert 'models per fold' in two['protocol']
  for subj in one['history']:  # model 0 of each fold is the single model
    np.testing.assert_allclose(
      two['history'][subj]['train_loss'], one['history'][subj]['train_loss'], rtol=1e-5
    )
  records = {p.name: json.loads(p.read_text()) for p in (out / 'folds').glob('*.json')}
  assert len(records) == 8 and sum('_model1' in k for k in records) == 4
  for rec0 in (r for k, r in records.items() if '_model1' not in k):
    rec1 = records[f"fold_{rec0['fold_id']:04d}_model1.json"]
    want = (
      results_lib.softmax(np.asarray(rec0['test_logits'][-1]))
      + results_lib.softmax(np.asarray(rec1['test_logits'][-1]))
    ) / 2
    at = two['predictions']['fold'] == rec0['fold']
    np.testing.assert_allclose(two['predictions']['probs'][at], want, rtol=1e-6)
    np.testing.assert_array_equal(two['predictions']['pred'][at], want.argmax(-1))
    assert rec0['test_logits'][-1] != rec1['test_logits'][-1]  # two different models
  again = run_loso(
    x,
    y,
    s,
    dataclasses_replace(cfg, ensemble=2),
    TinyNet(),
    out_dir=out,
    progress=False,
    on_epoch=lambda *a: pytest.fail('trained again'),
  )
  np.testing.assert_array_equal(again['predictions']['probs'], two['predictions']['probs'])


def test_checkpoints_follow_the_training_clock(tmp_path, monkeypatch):
  """A checkpoint is written after the first epoch that ends checkpoint_minutes after
  the group's start or its last checkpoint (here each epoch takes 6 minutes of a fake
  clock: with 10 minutes, after epochs 2 and 4 of 6, 0-based, never after the last),
  and none is left once the group's folds are saved."""
  x, y, s = toy_data()
  clock = [0.0]
  saved = []
  real_save = store_lib.RunStore.save
  monkeypatch.setattr(
    store_lib.RunStore,
    'save',
    lambda self, step, state, history, held=None: (
      saved.append(history.phase.epochs_done),
      real_save(self, step, state, history, held),
    ),
  )

  def run(minutes, out):
    saved.clear()
    cfg = dataclasses_replace(CFG, epochs=6, precise_bn=0, checkpoint_minutes=minutes)
    tick = lambda *a: clock.__setitem__(0, clock[0] + 360.0)
    run_loso(
      x,
      y,
      s,
      cfg,
      TinyNet(),
      out_dir=out,
      progress=False,
      on_epoch=tick,
      only_subjects=['s1'],
      clock=lambda: clock[0],
    )
    assert not list((out / 'checkpoints').glob('[0-9]*'))  # dropped after the folds
    return list(saved)

  assert run(10, tmp_path / 'a') == [3, 5]
  assert run(0, tmp_path / 'b') == [1, 2, 3, 4, 5]
  assert run(60, tmp_path / 'c') == []


def test_ctrl_c_during_a_checkpoint_write_stops_after_the_write(tmp_path):
  """A Ctrl-C that lands inside orbax's save is held back until the checkpoint is
  complete; then the run stops with KeyboardInterrupt (no half-written checkpoint,
  no orbax writer threads left scheduling work at exit)."""
  import signal

  files = store_lib.RunStore(tmp_path / 'run', dict(a=1))
  real_save = files.manager.save

  def interrupted_save(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C mid-write
    return real_save(*args, **kwargs)

  files.manager.save = interrupted_save
  state = dict(w=jnp.arange(4.0))
  history = GroupHistory.new(['s1'], 3)
  before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
  try:
    with pytest.raises(KeyboardInterrupt):
      files.save(3, state, history)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert files.manager.latest_step() == 3
    restored, got, held = files.restore(['s1'], state)
    chex.assert_trees_all_close(restored, state)
    assert got == history and held is None
    assert files.restore(['s2'], state) is None  # another group's checkpoint
  finally:
    signal.signal(signal.SIGINT, before)
    files.close()


def test_progress_bar_says_the_first_epoch_compiles(capsys):
  x, y, s = toy_data()
  run_loso(
    x, y, s, dataclasses_replace(CFG, epochs=3), TinyNet(), progress=True, only_subjects=['s1']
  )
  err = capsys.readouterr().err
  assert 'compiling (once; cached for later runs)' in err
  assert 'compiling' not in err[err.index('loss=') :]  # the first epoch only


@pytest.mark.parametrize(
  'name, cfg',
  [
    ('last, precise BN', CFG),
    ('weight average, test flip', dataclasses_replace(CFG, ema_decay=0.5, test_flip=True)),
    ('validation', dataclasses_replace(VAL, folds_in_parallel=3)),
    ('validation, retrained', dataclasses_replace(VAL, retrain=True)),
    ('best test', dataclasses_replace(VAL, select_epoch='best_test')),
  ],
)
def test_kept_models_rescore_the_run(name, cfg, tmp_path):
  """Each fold's kept weights (the scored epoch's, as evaluated) give the run's predictions."""
  from hfa_jax.loso import rescore

  x, y, s, strata = _six_subjects()
  out = tmp_path / 'run'
  cfg = dataclasses_replace(cfg, checkpoint_minutes=0)
  kw = dict(strata=strata, only_subjects=['s1', 's2', 's5'])
  run = run_loso(x, y, s, cfg, TinyNet(), out_dir=out, progress=False, **kw)
  assert sorted(p.name for p in (out / 'models').iterdir()) == ['s1', 's2', 's5']
  data = loso.LosoData.of(x, y, s, strata)
  again = rescore.rescore(out, data, cfg, TinyNet(), kw['only_subjects'])
  np.testing.assert_allclose(again['predictions']['probs'], run['predictions']['probs'], atol=1e-5)
  np.testing.assert_array_equal(again['predictions']['pred'], run['predictions']['pred'])
  assert again['selected_epoch'] == run['selected_epoch']
  # from the weights themselves: two folds' models swapped give other probabilities
  models = out / 'models'
  (models / 's1').rename(models / 'swap')
  (models / 's2').rename(models / 's1')
  (models / 'swap').rename(models / 's2')
  swapped = rescore.rescore(out, data, cfg, TinyNet(), kw['only_subjects'])
  moved = np.abs(swapped['predictions']['probs'] - run['predictions']['probs']).max()
  assert moved > 1e-3


@pytest.mark.parametrize('select_epoch', ['validation', 'best_test'])
def test_a_resume_keeps_the_best_epoch_trained_before_the_stop(select_epoch, tmp_path):
  """'validation' and 'best_test' without retraining hold each model's best epoch so far
  until its group ends; a checkpoint holds it too, so a run stopped after it (here after
  epoch 3 of 4, checkpointed) and resumed keeps every fold's scored model, the one of an
  epoch before the stop included: the kept models rescore the run."""
  from hfa_jax.loso import rescore

  x, y, s, strata = _six_subjects()
  cfg = dataclasses_replace(VAL, select_epoch=select_epoch, checkpoint_minutes=0)
  kw = dict(strata=strata, only_subjects=['s1', 's2', 's5'], progress=False)
  full = run_loso(x, y, s, cfg, TinyNet(), **kw)
  assert min(full['selected_epoch'][f] for f in ('s1', 's2')) <= 3  # best before the stop
  out = tmp_path / 'run'
  stopped = functools.partial(run_loso, x, y, s, cfg, TinyNet(), out_dir=out, **kw)
  assert preempted(stopped, (0, 'train', 2))[1] is None  # stopped after epoch 3 of group 0
  assert (out / 'checkpoints').is_dir()
  resumed = run_loso(x, y, s, cfg, TinyNet(), out_dir=out, **kw)
  np.testing.assert_array_equal(resumed['predictions']['probs'], full['predictions']['probs'])
  assert sorted(p.name for p in (out / 'models').iterdir()) == ['s1', 's2', 's5']
  again = rescore.rescore(
    out, loso.LosoData.of(x, y, s, strata), cfg, TinyNet(), ['s1', 's2', 's5']
  )
  np.testing.assert_allclose(again['predictions']['probs'], full['predictions']['probs'], atol=1e-5)
  assert again['selected_epoch'] == full['selected_epoch']


def test_a_run_without_kept_models_says_so(tmp_path):
  from hfa_jax.loso import rescore

  x, y, s = toy_data()
  cfg = dataclasses_replace(CFG, epochs=1, keep_models=False)
  run_loso(x, y, s, cfg, TinyNet(), out_dir=tmp_path, progress=False, only_subjects=['s2'])
  assert not (tmp_path / 'models').exists()
  with pytest.raises(rescore.MissingWeightsError, match='kept no weights for 1 of 1'):
    rescore.rescore(tmp_path, loso.LosoData.of(x, y, s), cfg, TinyNet(), ['s2'])
