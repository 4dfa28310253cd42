"""experiments.benchmark --baselines: a baseline's fold program at its recipe beside its
original from a checkout (here a stand-in file), the table and the JSON (no timing asserted)."""

import json
import sys

import pytest

from experiments import bench_baselines, benchmark, torch_baselines

STAND_IN = '''
import torch


class OffApexNet(torch.nn.Module):
  def __init__(self, num_classes=3, **kwargs):
    super().__init__()
    self.fc = torch.nn.Linear(2 * 28 * 28, num_classes)

  def forward(self, x):
    return self.fc(x.flatten(1))
'''


def meb_checkout(folder):
  """A stand-in MEB checkout in `folder`: meb/meb/models/me_networks.py holding STAND_IN."""
  checkout = folder / 'meb'
  (checkout / 'meb' / 'models').mkdir(parents=True)
  (checkout / 'meb' / 'models' / 'me_networks.py').write_text(STAND_IN)
  return checkout


def test_recipes_of_the_dev_part_run():
  """Each baseline's side, batch, steps per epoch (one pass over the largest training set
  of the development part) and models per program for the 3-seed run."""
  r = bench_baselines.recipe('ststnet')
  assert (r.side, r.batch, r.steps, r.models, r.width) == (28, 256, 2, 120, 120)
  r = bench_baselines.recipe('sssnet')
  assert (r.side, r.batch, r.steps, r.training.optimizer) == (64, 32, 10, 'adam')
  assert bench_baselines.recipe('rcn_a').steps == 5
  assert bench_baselines.recipe('htnet').side == 28


def test_a_baseline_row_with_its_original(tmp_path, monkeypatch, capsys):
  pytest.importorskip('torch')
  checkout = meb_checkout(tmp_path)
  monkeypatch.setattr(bench_baselines, 'DEV_FOLDS', 2)
  monkeypatch.setattr(bench_baselines, 'SEEDS', 1)
  out = tmp_path / 'bench.json'
  argv = ['--baselines', 'offapexnet', '--rounds', '1', '--meb', str(checkout)]
  benchmark.main([*argv, '--torch_threads', '1,2', '--out', str(out)])
  (row,) = json.loads(out.read_text())['rows']
  assert row['kind'] == 'baseline' and row['model'] == 'offapexnet'
  assert (row['side'], row['batch'], row['steps_per_epoch'], row['epochs']) == (28, 32, 10, 3000)
  assert row['fold_samples_per_s'] > 0 and row['torch_samples_per_s'] > 0
  assert row['ratio'] == pytest.approx(row['fold_samples_per_s'] / row['torch_samples_per_s'])
  assert set(row['torch_samples_per_s_by_threads']) == {'1', '2'}
  assert row['projected_s'] > 0 and row['torch_projected_s'] > 0
  # ours: OFF-ApexNet's forward + backward at 28 px (6.2 MFLOP; hand counts in
  # test_arithmetic_floor), credited to the original too (the same network)
  assert 5e6 < row['train_flops_per_sample'] < 7e6
  if row['cpu_us_per_fold_sample'] > 0:  # else below os.times' resolution: None
    assert row['gflops_per_cpu_s'] == pytest.approx(
      row['train_flops_per_sample'] / row['cpu_us_per_fold_sample'] / 1e3
    )
  assert set(row['torch_gflops_per_cpu_s_by_threads']) == {'1', '2'}
  text = capsys.readouterr().out
  assert 'baselines at their recipes' in text and 'offapexnet' in text


def test_a_cpu_time_below_the_clocks_resolution_gives_no_rate():
  """A tiny stand-in's steps can take less CPU time than os.times resolves (10 ms): no
  rate then, and the table prints '-'."""
  assert bench_baselines._gflops_per_cpu_s(1e9, 0.0) is None
  assert bench_baselines._gflops_per_cpu_s(2e9, 0.5) == 4.0


def test_an_absent_original_is_skipped_with_the_reason(tmp_path, monkeypatch):
  assert 'no --meb checkout' in torch_baselines.original('sssnet', {})
  found = torch_baselines.original('rcn_a', {'rcn': str(tmp_path)})
  assert found.startswith('skipped') and 'MeNets.py' in found
  # the checkout is there but torch is not (None in sys.modules makes the import fail)
  checkout = meb_checkout(tmp_path)
  monkeypatch.setitem(sys.modules, 'torch', None)
  found = torch_baselines.original('offapexnet', {'meb': str(checkout)})
  assert found == 'skipped: torch is not installed'
  assert torch_baselines.taken_from('meb') == ['ststnet', 'sssnet', 'offapexnet']
