"""experiments.arithmetic_floor: FLOPs per training sample against a hand count, the floor's
arithmetic, and the command's table (no timing asserted)."""

import flax.linen as nn
import pytest

from experiments import arithmetic_floor, bench_baselines


class ConvThenDense(nn.Module):
  """(B, 16, 16, 3) -> 3x3 conv, 8 channels, VALID (14 x 14) -> ReLU -> flatten -> Dense(3)."""

  @nn.compact
  def __call__(self, x, train=False):
    y = nn.relu(nn.Conv(8, (3, 3), padding='VALID')(x))
    return nn.Dense(3)(y.reshape(y.shape[0], -1))


def test_flops_per_sample_match_a_hand_count():
  """Forward: the convolution 2 x 14*14 x 8 x 27 and the dense layer 2 x 1568 x 3 multiply-
  adds per sample; backward: the dense layer's weight and input gradients and the
  convolution's weight gradient (the input gets none), each as many again. XLA's count adds
  the elementwise work (bias, ReLU, softmax): a few per cent."""
  conv, dense = 2 * 14 * 14 * 8 * 27, 2 * 1568 * 3
  hand = (conv + dense) + (conv + 2 * dense)
  flops = arithmetic_floor.train_flops_per_sample(ConvThenDense(), side=16, batch=4)
  assert hand <= flops <= 1.05 * hand, (flops, hand)


def test_sssnet_flops_match_its_layers():
  """SSSNet at 64 px (conv 5x5 3->32 to 60 x 60, conv 3x3 32->64 to 18 x 18, fc 5184->256):
  forward 31.9 MFLOP, backward 46.5 (no gradient for the input): 78.4 MFLOP of matmul-like
  work per sample before the elementwise ops."""
  conv1, conv2, fc1 = 2 * 3600 * 32 * 75, 2 * 324 * 64 * 288, 2 * 5184 * 256
  hand = (conv1 + conv2 + fc1) + (conv1 + 2 * conv2 + 2 * fc1)
  flops = arithmetic_floor.train_flops_per_sample(
    arithmetic_floor.registry.build('sssnet', 3), side=64, batch=2
  )
  assert hand <= flops <= 1.05 * hand, (flops, hand)


def test_floor_is_the_runs_flops_at_the_rate():
  row = arithmetic_floor.floor_row('ststnet', flops_per_s=1e9)
  r = bench_baselines.recipe('ststnet')
  assert row['fold_samples'] == 120 * r.training.epochs * r.steps * r.batch == 49_152_000
  assert row['run_flops'] == pytest.approx(row['train_flops_per_sample'] * row['fold_samples'])
  assert row['floor_s'] == pytest.approx(row['run_flops'] / 1e9)


def test_gemm_rate_is_the_best_size():
  rate = arithmetic_floor.gemm_rate(sizes=(32, 64), repeats=2)
  assert set(rate['by_size']) == {32, 64}
  assert rate['flops_per_s'] == max(rate['by_size'].values()) > 0


def test_command_prints_the_table_and_writes_json(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(
    arithmetic_floor, 'gemm_rate', lambda: {'flops_per_s': 1e11, 'by_size': {2048: 1e11}}
  )
  record = arithmetic_floor.main(['--models', 'ststnet', '--out', str(tmp_path / 'f.json')])
  text = capsys.readouterr().out
  assert 'float32 matrix multiply: 100 GFLOP/s' in text and 'ststnet' in text
  assert (tmp_path / 'f.json').exists() and record['rows'][0]['model'] == 'ststnet'
  with pytest.raises(SystemExit):
    arithmetic_floor.main(['--models', 'nonet'])
