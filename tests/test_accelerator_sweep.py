"""experiments.accelerator_sweep: a CPU smoke run end to end (each measurement in a process of
its own, the command's process never starting a JAX backend), and the sweep's logic with
simulated devices: a side stops at its first out-of-memory K, the sweep at its time limit."""

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

from experiments import accelerator_sweep as sweep_lib
from experiments import sweep_report
from hfa_jax.loso import memory, program
from tests.tiny import TinyNet

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_cpu_smoke_run_writes_json_and_markdown(tmp_path):
  out = tmp_path / 'sweep'
  args = ['--sides', '32', '--folds', '1,2', '--steps', '1', '--epoch_steps', '1']
  args += ['--model', 'tests.tiny:TinyNet', '--out', str(out)]
  script = textwrap.dedent(f"""
    from jax._src import xla_bridge
    from experiments import accelerator_sweep
    accelerator_sweep.main({args!r})
    assert not xla_bridge.backends_are_initialized(), 'the sweep took the device itself'
  """)
  proc = subprocess.run(
    [sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True, timeout=600
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads((out.parent / 'sweep.json').read_text())
  assert [(r['side'], r['folds'], r['status']) for r in report['rows']] == [
    (32, 1, 'ok'),
    (32, 2, 'ok'),
  ]
  per_fold = memory.per_fold_bytes(TinyNet(num_classes=3), 32, 16, sweep_lib.training(16), 16)
  for r in report['rows']:
    assert r['samples_per_s'] > 0 and r['compile_s'] > 0 and r['xla_bytes'] > 0
    assert r['peak_bytes'] is None and r['bytes_limit'] is None  # a CPU reports neither
    assert r['estimate_bytes'] == r['folds'] * per_fold
    assert r['folds_at_once'] == dict(program.CPU_FOLDS_BY_SIDE)[32]
  assert report['environment']['backend'] == 'cpu' and report['environment']['jax']
  (side,) = report['sides']
  assert side['largest_k'] == 2 and side['stopped'] == 'every K asked for ran'
  assert side['measured_per_fold'] == 'not reported'
  text = (out.parent / 'sweep.md').read_text()
  plan = sweep_report.mib(per_fold)
  assert f'| 32 | 2 | every K asked for ran | 4 | {plan} | not reported |' in text
  assert 'bytes_limit per device: not reported' in text
  assert "hfa_jax.loso.memory's plan for tests.tiny:TinyNet" in text
  assert 'fold-samples/s' in proc.stdout


class FakeDevice:
  """Simulated measurements: a fixed cost in seconds each, out of memory above a peak."""

  def __init__(self, limit=1000, per_fold=100, seconds=10.0, fail=None):
    self.limit, self.per_fold, self.seconds, self.fail = limit, per_fold, seconds, fail
    self.now, self.calls = 0.0, []

  def clock(self):
    return self.now

  def measure(self, side, k, args, left):
    self.calls.append((side, k, round(left)))
    self.now += self.seconds
    row = dict(side=side, folds=k, batch=16) | sweep_lib.estimate(side, 16, k, 1)
    if self.fail == (side, k):
      return row | dict(status='error', error='exit code 1: Traceback ... KeyError')
    peak = k * self.per_fold * side // 32
    if peak > self.limit:
      return row | dict(status='out_of_memory', error='RESOURCE_EXHAUSTED: Out of memory')
    facts = dict(bytes_limit=self.limit, folds_at_once=3, xla_bytes=peak, compile_s=1.0)
    return row | facts | dict(status='ok', samples_per_s=16.0 * k, step_s=1.0, peak_bytes=peak)


def _args(**kw):
  return sweep_lib.parse_args([f'--{k}={v}' for k, v in kw.items()])


def test_each_side_stops_at_its_first_out_of_memory_k():
  device = FakeDevice()
  result = sweep_lib.sweep(_args(sides='32,64', max_folds=16), device.measure, device.clock)
  assert [c[:2] for c in device.calls] == [
    (32, 1), (64, 1), (32, 2), (64, 2), (32, 4), (64, 4), (32, 8), (64, 8), (32, 16)
  ]  # fmt: skip
  assert result['stops'] == {64: ('out_of_memory', 8), 32: ('out_of_memory', 16)}
  sides = {s['side']: s for s in sweep_report.summary(result, [32, 64])}
  assert (sides[32]['largest_k'], sides[64]['largest_k']) == (8, 4)
  assert sides[64]['stopped'] == 'out of memory at K = 8'
  assert sides[32]['measured_per_fold'] == pytest.approx(100)  # the peak's slope in K
  report = sweep_report.make_report(result, _args(sides='32,64'), 'today', 'abc1234')
  text = sweep_report.markdown(report)
  estimate = sweep_report.mib(sweep_lib.estimate(64, 16, 8, 1)['estimate_bytes'])
  oom = f'| 64 | 8 | - | - | - | - | - | {estimate} | out of memory: RESOURCE_EXHAUSTED: Out of'
  assert oom in text
  assert '| 32 | 8 | 128.0 | 1000.0 | 1.0 | 0 | 0 |' in text  # peak and XLA: 800 bytes
  per_fold = sweep_report.mib(sweep_lib.estimate(64, 16, 1, 1)['estimate_per_fold'])
  assert f'| 64 | 4 | out of memory at K = 8 | 3 | {per_fold} | 0 |' in text


def test_the_time_limit_stops_the_sweep_and_each_measurement():
  device = FakeDevice(seconds=50.0)  # 2 minutes: 120 s, measurements of 50 s
  result = sweep_lib.sweep(_args(sides='32,64', max_minutes=2), device.measure, device.clock)
  assert [c[:2] for c in device.calls] == [(32, 1), (64, 1), (32, 2)]
  assert [c[2] for c in device.calls] == [120, 70, 20]  # each child gets the time left
  assert result['stops'] == {32: ('time_limit', 2), 64: ('time_limit', 2)}
  stopped = {s['side']: s['stopped'] for s in sweep_report.summary(result, [32, 64])}
  assert stopped == {32: '--max_minutes spent at K = 2', 64: '--max_minutes spent at K = 2'}


def test_an_error_that_is_not_memory_stops_the_sweep():
  device = FakeDevice(fail=(64, 2))
  result = sweep_lib.sweep(_args(sides='32,64,224', max_folds=8), device.measure, device.clock)
  assert device.calls[-1][:2] == (64, 2) and len(device.calls) == 5
  assert set(result['stops'].values()) == {('error', 2)}


def test_out_of_memory_is_recognised_from_xla_messages():
  assert sweep_lib.out_of_memory(
    'jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to '
    'allocate 123 bytes.'
  )
  assert sweep_lib.out_of_memory('RESOURCE_EXHAUSTED: Ran out of memory in memory space hbm.')
  assert not sweep_lib.out_of_memory('INVALID_ARGUMENT: wrong shape')


def test_a_child_that_fails_is_classified(monkeypatch, tmp_path):
  """in_process: a child's result line, a child killed for memory, one that crashed."""

  def fake_run(stdout='', stderr='', code=0):
    done = subprocess.CompletedProcess([], code, stdout, stderr)
    monkeypatch.setattr(sweep_lib.subprocess, 'run', lambda *a, **kw: done)

  args = _args()
  fake_run(stdout='compiling\n' + sweep_lib.RESULT + json.dumps(dict(side=32, status='ok')))
  assert sweep_lib.in_process(32, 1, args, 60) == dict(side=32, status='ok')
  fake_run(stderr='2026 ... RESOURCE_EXHAUSTED: Out of memory while trying to allocate', code=1)
  assert sweep_lib.in_process(224, 8, args, 60)['status'] == 'out_of_memory'
  fake_run(code=-9)
  assert sweep_lib.in_process(224, 8, args, 60)['status'] == 'out_of_memory'
  fake_run(stderr='Traceback\nKeyError: x', code=1)
  row = sweep_lib.in_process(32, 1, args, 60)
  assert row['status'] == 'error' and 'KeyError: x' in row['error']


def test_default_folds_double_up_to_max_folds():
  assert _args().folds == [1, 2, 4, 8, 16, 32, 64, 128] and _args().sides == [32, 64, 224]
  assert _args(max_folds=68).folds == [1, 2, 4, 8, 16, 32, 64]
  assert sweep_lib.child_command(224, 8, _args())[3:5] == ['--measure', '224,8']


def test_usage_errors_before_any_measurement(capsys):
  for argv, message in (
    (['--model', 'nosuch:Net'], 'cannot import it'),
    (['--model', 'tests.test_dtype:PlainNet', '--dtype', 'bfloat16'], 'has no dtype field'),
    (['--sides', '48'], 'multiples of 32'),
    (['--folds', '0,1'], 'must be positive'),
  ):
    with pytest.raises(SystemExit):
      sweep_lib.parse_args(argv)
    assert message in capsys.readouterr().err, argv
