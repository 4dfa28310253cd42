"""One LOSO on many processes (hfa_jax.distributed): two local CPU processes, one device each,
talking over localhost (JAX's CPU collectives), give the predictions of one process with two
devices and of one device; a SIGTERM to one of them stops both, and the rerun resumes from
the checkpoint to the same predictions."""

import csv
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import options
from hfa_jax import distributed, trained

pytestmark = pytest.mark.slow  # an end-to-end tier

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUN = [
  '--config',
  'tiny',
  '--synthetic_subjects',
  '1',  # 3 subjects: 3 folds, in groups of 2
  '--epochs',
  '6',
  '--folds_in_parallel',
  '2',
  '--checkpoint_minutes',
  '0',
  '--no_progress',
]
TIMEOUT = 300


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(args, log: pathlib.Path, devices: int = 1) -> subprocess.Popen:
  env = dict(
    os.environ,
    PYTHONPATH=str(ROOT),
    JAX_PLATFORMS='cpu',
    XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
  )
  return subprocess.Popen(
    [sys.executable, '-m', 'experiments.loso', *args],
    cwd=ROOT,
    env=env,
    stdout=log.open('w'),
    stderr=subprocess.STDOUT,
  )


def _wait(procs, logs) -> list:
  """Exit codes; both processes are killed if they outlive TIMEOUT."""
  try:
    return [p.wait(timeout=TIMEOUT) for p in procs]
  except subprocess.TimeoutExpired:
    for p in procs:
      p.kill()
    pytest.fail('a process hung:\n' + '\n'.join(log.read_text()[-3000:] for log in logs))


def _single(out, data, tmp, model='TinyNet', devices=1):
  log = tmp / f'{out.name}.log'
  args = [*RUN, '--model', f'tests.tiny:{model}', '--data_dir', str(data), '--out', str(out)]
  code = _wait([_start(args, log, devices)], [log])[0]
  assert code == 0, log.read_text()[-3000:]


def _two(out, data, tmp, model='TinyNet', tag='run', more=()) -> tuple:
  """Starts processes 0 and 1 of a two-process run (`more`: options); (processes, their logs)."""
  port = _free_port()
  args = [*RUN, *more, '--model', f'tests.tiny:{model}', '--data_dir', str(data), '--out', str(out)]
  args += ['--coordinator_address', f'127.0.0.1:{port}', '--num_processes', '2']
  logs = [tmp / f'{tag}.{i}.log' for i in range(2)]
  return [_start([*args, '--process_id', str(i)], logs[i]) for i in range(2)], logs


def _predictions(out) -> tuple:
  with open(out / 'predictions.csv') as f:
    rows = list(csv.DictReader(f))
  probs = np.array([[float(v) for k, v in r.items() if k.startswith('p_')] for r in rows])
  return [(r['sample'], r['predicted']) for r in rows], probs


def _same_predictions(a, b):
  (rows_a, probs_a), (rows_b, probs_b) = _predictions(a), _predictions(b)
  assert rows_a == rows_b  # the same samples, the same predicted classes
  np.testing.assert_allclose(probs_a, probs_b, atol=1e-5)


@pytest.fixture(scope='module')
def one_device(tmp_path_factory):
  """A one-device run; it also builds the synthetic data once, so that the processes of the
  runs below only read it."""
  tmp = tmp_path_factory.mktemp('multihost')
  _single(tmp / 'one', tmp / 'data', tmp)
  return tmp / 'one', tmp / 'data'


def test_two_processes_predict_as_two_devices_and_as_one(one_device, tmp_path):
  one, data = one_device
  _single(tmp_path / 'two_devices', data, tmp_path, devices=2)
  procs, logs = _two(tmp_path / 'two', data, tmp_path)
  codes = _wait(procs, logs)
  assert codes == [0, 0], '\n'.join(log.read_text()[-3000:] for log in logs)
  out = tmp_path / 'two'
  _same_predictions(out, tmp_path / 'two_devices')
  _same_predictions(out, one)
  summary = json.loads((out / 'summary.json').read_text())
  assert summary['devices']['processes'] == 2 and summary['devices']['count'] == 2
  assert 'coordinator_address' not in options.saved_record(out)['settings']
  # process 0 alone reports; process 1 says nothing but JAX's own lines
  report, quiet = (log.read_text() for log in logs)
  assert 'UF1' in report and 'starting the run' in report
  assert 'UF1' not in quiet and 'starting the run' not in quiet
  assert not list(out.glob('.write_test*'))
  # the kept models (process 0 writes those that process 1 trained too) are the one-device ones
  folds = sorted(p.name for p in (one / 'state' / 'models').iterdir())
  assert folds == sorted(p.name for p in (out / 'state' / 'models').iterdir()) and len(folds) == 3
  for fold in folds:
    kept, alone = (_leaves(trained.load_weights(o / 'state' / 'models' / fold)) for o in (out, one))
    assert kept.keys() == alone.keys()
    for name in kept:
      np.testing.assert_allclose(kept[name], alone[name], atol=1e-5, err_msg=f'{fold} {name}')


def _leaves(tree, prefix='') -> dict:
  if isinstance(tree, dict):
    return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f'{prefix}/{key}').items()}
  return {prefix: np.asarray(tree)}


def test_sigterm_on_one_process_stops_both_and_the_rerun_resumes(one_device, tmp_path):
  one, data = one_device
  out = tmp_path / 'run'
  more = ('--checkpoint_minutes', '60')  # saved where the signal stops them alone
  procs, logs = _two(out, data, tmp_path, model='SlowTinyNet', tag='stopped', more=more)
  deadline = time.monotonic() + TIMEOUT
  while 'train epoch 1/6' not in logs[0].read_text():
    assert all(p.poll() is None for p in procs), logs[0].read_text()[-3000:]
    assert time.monotonic() < deadline, 'no epoch ended'
    time.sleep(0.1)
  procs[1].send_signal(signal.SIGTERM)  # one host preempted
  codes = _wait(procs, logs)
  texts = [log.read_text() for log in logs]
  assert codes == [143, 143], '\n'.join(t[-3000:] for t in texts)
  for text in texts:
    assert 'stopped by SIGTERM. Run the same command again' in text and 'Traceback' not in text
  assert not list((out / 'state' / 'folds').glob('*.json')), 'stopped after the first group'
  assert list((out / 'state' / 'checkpoints').iterdir())

  procs, logs = _two(out, data, tmp_path, model='SlowTinyNet', tag='resumed', more=more)
  codes = _wait(procs, logs)
  text = logs[0].read_text()
  assert codes == [0, 0], text[-3000:] + logs[1].read_text()[-3000:]
  assert 'continuing the run' in text
  first = r'models? 1(-\d+)?/\d+, train epoch {}/6'  # the first group's lines
  assert re.search(first.format(6), text) and not re.search(first.format(1), text)  # resumed
  _same_predictions(out, one)


def test_two_processes_checkpoint_the_held_best_epochs_as_one(one_device, tmp_path):
  """With 'best_test' each checkpoint holds the best epoch's model so far (numpy arrays, alike
  on both processes): two processes write them together and keep the one-process models."""
  _, data = one_device
  best = ('--select_epoch', 'best_test')
  log = tmp_path / 'single.log'
  args = [*RUN, *best, '--model', 'tests.tiny:TinyNet', '--data_dir', str(data)]
  code = _wait([_start([*args, '--out', str(tmp_path / 'single')], log)], [log])[0]
  assert code == 0, log.read_text()[-3000:]
  procs, logs = _two(tmp_path / 'two', data, tmp_path, more=best)
  codes = _wait(procs, logs)
  assert codes == [0, 0], '\n'.join(log.read_text()[-3000:] for log in logs)
  _same_predictions(tmp_path / 'two', tmp_path / 'single')
  models = [tmp_path / o / 'state' / 'models' for o in ('two', 'single')]
  folds = sorted(p.name for p in models[1].iterdir())
  assert len(folds) == 3 and folds == sorted(p.name for p in models[0].iterdir())
  for fold in folds:
    kept, alone = (_leaves(trained.load_weights(m / fold)) for m in models)
    for name in kept:
      np.testing.assert_allclose(kept[name], alone[name], atol=1e-5, err_msg=f'{fold} {name}')


def test_options_go_together_and_a_single_process_starts_nothing(monkeypatch):
  for name in distributed.SLURM_STEP + ('TPU_WORKER_HOSTNAMES', 'TPU_PROCESS_ADDRESSES'):
    monkeypatch.delenv(name, raising=False)
  with pytest.raises(ValueError, match='go together: give all three'):
    distributed.job_kind('127.0.0.1:1234', 2)
  with pytest.raises(ValueError, match='an id from 0 to 1'):
    distributed.job_kind('127.0.0.1:1234', 2, 2)
  assert distributed.job_kind('127.0.0.1:1234', 2, 1) == 'options'
  assert distributed.job_kind('127.0.0.1:1234', 1, 0) is None
  assert distributed.job_kind() is None  # this machine: no SLURM step, no TPU
  steps = dict(SLURM_JOB_ID='7', SLURM_STEP_NODELIST='n[1-2]', SLURM_PROCID='1', SLURM_LOCALID='0')
  for k, v in steps.items():
    monkeypatch.setenv(k, v)
  monkeypatch.setenv('SLURM_NTASKS', '1')
  assert distributed.job_kind() is None  # one task: nothing to start
  monkeypatch.setenv('SLURM_NTASKS', '4')
  assert distributed.job_kind() == 'slurm'
  monkeypatch.delenv('SLURM_STEP_NODELIST')  # the batch script itself, not an srun step
  assert distributed.job_kind() is None
  monkeypatch.setenv('TPU_WORKER_HOSTNAMES', 'w0,w1,w2,w3')
  assert distributed.job_kind() == 'tpu'
  monkeypatch.setenv('TPU_WORKER_HOSTNAMES', 'w0')
  assert distributed.job_kind() is None  # a single-host TPU VM
  assert not distributed.initialize() and distributed.processes() == 1
