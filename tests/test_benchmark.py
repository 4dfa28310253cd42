"""experiments.benchmark runs end to end and writes its table and JSON (no timing asserted)."""

import functools
import json
import sys

from experiments import bench_parts, benchmark
from tests.quick_compile import QUICK_COMPILE


def test_benchmark_smoke(tmp_path, capsys):
  out = tmp_path / 'bench.json'
  result = benchmark.main(
    [
      '--sides',
      '32',
      '--folds',
      '1',
      '--steps',
      '1',
      '--fold_sides',
      '64',  # no loso rows (a fold program costs another compile)
      '--no_parts',
      '--compare_torch',
      str(tmp_path / 'no_checkout'),
      '--out',
      str(out),
    ]
  )
  saved = json.loads(out.read_text())
  kinds = sorted(r['kind'] for r in saved['rows'])
  assert kinds == ['eval', 'train']
  for row in saved['rows']:
    assert row['side'] == 32 and row['samples_per_s'] > 0 and row['compile_s'] > 0
    assert row['peak_bytes'] > 0
  env = saved['environment']
  assert env['device_count'] >= 1 and env['cpu_count'] >= 1 and env['jax']
  assert 'skipped' in env['torch']  # no checkout there: skipped cleanly
  assert result['rows'][0]['kind'] == 'eval'
  assert 'samples/s' in capsys.readouterr().out


def test_ratios_pick_the_fastest_fold_count():
  row = lambda kind, folds, rate: dict(kind=kind, side=32, folds=folds, samples_per_s=rate)
  rows = [row('loso', 1, 50.0), row('loso', 4, 120.0), row('loso', 8, 100.0)]
  rows.append(row('torch_train', 1, 40.0))
  (line,) = benchmark.ratios(rows)[1:]
  assert line == (
    'side 32: fastest LOSO form 4 folds at a time, 120.0 fold-samples/s = 2.40x one fold at '
    "a time = 3.00x the original's training"
  )
  assert benchmark.ratios([row('train', 1, 50.0)]) == []
  assert benchmark.ratios(rows[:1])[1] == (
    'side 32: fastest LOSO form one fold at a time, 50.0 fold-samples/s = 1.00x one fold at a time'
  )


def test_network_parts_cover_both_retention_forms():
  parts = bench_parts.network_parts(64, None)
  names = [name for name, _, _ in parts]
  assert names[0] == 'msa' and names[-1] == 'mlfa+aaff+head'
  assert sum('decomposed' in n for n in names) == 2 and sum('whole' in n for n in names) == 2
  assert parts[2][2] == [(16, 16, 64)] and parts[5][2] == [(4, 4, 256)]


def test_kernel_benchmark_smoke(capsys):
  from experiments import bench_kernels
  from tests import native

  native.require()
  results = bench_kernels.main(['--quick', '--repeats', '1'])
  assert len(results) == 4
  for row in results:
    assert row['xla_ms'] > 0 and row['ours_ms'] > 0
    assert row['max_rel_diff'] < 1e-4  # both forms compute the same thing
  assert 'speed-up' in capsys.readouterr().out


def test_the_last_part_is_the_model_after_its_branches():
  """AfterBranches runs HFANet's own code on given branch outputs: the model's logits."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from hfa_jax.models import HFANet

  model = HFANet(bench_parts.NUM_CLASSES)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 32, 32, 3)), jnp.float32)
  jit = functools.partial(jax.jit, compiler_options=QUICK_COMPILE)
  variables = jit(lambda x: model.init(jax.random.key(0), x, train=False))(x)
  logits, feats = jit(lambda v, x: model.apply(v, x, return_features=True))(variables, x)
  levels = [feats[f'{branch}_{i}'] for branch in ('msa', 'rmt') for i in range(1, 5)]
  name, top, shapes = bench_parts.network_parts(32, None)[-1]
  assert shapes == [tuple(level.shape[1:]) for level in levels]
  nested = {kind: {'model': tree} for kind, tree in variables.items()}
  got = jit(lambda v, levels: top.apply(v, *levels, train=False))(nested, levels)
  np.testing.assert_allclose(got, logits, rtol=1e-5, atol=1e-5)


def test_an_absent_original_says_which_file_is_missing(tmp_path, monkeypatch):
  """--original pointing at a folder without HFA-Net's PyTorch file: that is the reason given,
  with or without torch; with the file there and no torch, torch's absence is."""
  from experiments import torch_reference

  found = torch_reference.bench_torch(str(tmp_path), [32], 2, 1, 1, 3)
  assert found == f'skipped: {tmp_path} has no model/model_dual_msff.py'
  (tmp_path / 'model').mkdir()
  (tmp_path / 'model' / 'model_dual_msff.py').write_text('')
  monkeypatch.setitem(sys.modules, 'torch', None)
  assert torch_reference.bench_torch(str(tmp_path), [32], 2, 1, 1, 3) == (
    'skipped: torch is not installed'
  )
