"""Fixtures the test files share, made once per test session (once for all pytest-xdist
workers: the first to need one makes it under a file lock, the others wait and read it):

- `tiny_data`: the synthetic databases (1 subject each) generated and built with the
  megc2019 builder, as `python -m experiments.loso` builds them (a --data_dir);
- `tiny_run`: a finished LOSO run of `TINY` on them (its folder and what the command
  printed); read it, never write into it: `tiny_run_copy` is a copy a test may change.

Tiers: tests marked `slow` (end to end: the tfds command line, the notebook, many processes,
compile smoke tests) run with the others by default and in CI; `pytest -m "not slow"` runs
the quick tier alone.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The smallest LOSO of the command: the tiny recipe, a tiny network, 1 synthetic subject per
# database (3 subjects), 2 epochs, a checkpoint after every epoch, log lines.
TINY = [
  '--config',
  'tiny',
  '--model',
  'tests.tiny:TinyNet',
  '--synthetic_subjects',
  '1',
  '--epochs',
  '2',
  '--checkpoint_minutes',
  '0',
  '--no_progress',
]


def run_module(module: str, args: list, cwd=ROOT, timeout: int = 900):
  """`python -m module args` in a subprocess (the repository on PYTHONPATH); the
  CompletedProcess, text captured."""
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run(
    [sys.executable, '-m', module, *args],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@dataclasses.dataclass(frozen=True)
class Printed:
  """What a finished command printed (read back by every worker)."""

  returncode: int
  stdout: str
  stderr: str


@pytest.fixture(scope='session')
def shared_dir(tmp_path_factory, worker_id) -> pathlib.Path:
  """A folder that every xdist worker of this session sees (the session's base temp)."""
  base = tmp_path_factory.getbasetemp()
  return base if worker_id == 'master' else base.parent


def made_once(folder: pathlib.Path, make) -> pathlib.Path:
  """`folder`, made by make(folder) unless a worker already made it (a file lock beside it)."""
  with open(folder.with_name(folder.name + '.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (folder / '.made').exists():
      if folder.exists():
        shutil.rmtree(folder)  # a make that failed before
      folder.mkdir(parents=True)
      make(folder)
      (folder / '.made').touch()
  return folder


@pytest.fixture(scope='session')
def tiny_data(shared_dir) -> pathlib.Path:
  """--data_dir of the synthetic databases of TINY, generated and built."""

  def make(folder):
    from experiments import input_pipeline, options

    _, args = options.parse([*TINY, '--data_dir', str(folder)])
    input_pipeline.load_dataset(options.settings_from_args(args), progress=False)

  return made_once(shared_dir / 'tiny_data', make)


@pytest.fixture(scope='session')
def tiny_run(shared_dir, tiny_data) -> tuple[pathlib.Path, Printed]:
  """(the run folder, what the command printed) of a finished TINY LOSO on tiny_data."""

  def make(folder):
    proc = run_module(
      'experiments.loso', [*TINY, '--data_dir', str(tiny_data), '--out', str(folder / 'out')]
    )
    (folder / 'printed').write_text(f'{proc.returncode}\n{proc.stdout}\0{proc.stderr}')
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

  folder = made_once(shared_dir / 'tiny_run', make)
  code, _, text = (folder / 'printed').read_text().partition('\n')
  stdout, _, stderr = text.partition('\0')
  return folder / 'out', Printed(int(code), stdout, stderr)


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path) -> pathlib.Path:
  """A copy of tiny_run's folder that the test may change."""
  return pathlib.Path(shutil.copytree(tiny_run[0], tmp_path / 'run'))
