"""experiments.benchmark runs end to end and writes its table and JSON (no timing asserted)."""

import json

from experiments import benchmark


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


def test_network_parts_cover_both_retention_forms():
  parts = benchmark.network_parts(64, None)
  names = [name for name, _, _ in parts]
  assert names[0] == 'msa' and names[-1] == 'mlfa+aaff+head'
  assert sum('decomposed' in n for n in names) == 2 and sum('whole' in n for n in names) == 2
  assert parts[2][2] == [(16, 16, 64)] and parts[5][2] == [(4, 4, 256)]


def test_kernel_benchmark_smoke(capsys):
  from experiments import bench_kernels
  from hfa_jax import kernels

  if not kernels.native_available():
    return
  results = bench_kernels.main(['--quick', '--repeats', '1'])
  assert len(results) == 4
  for row in results:
    assert row['xla_ms'] > 0 and row['ours_ms'] > 0
    assert row['max_rel_diff'] < 1e-4  # both forms compute the same thing
  assert 'speed-up' in capsys.readouterr().out
