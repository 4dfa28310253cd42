"""After `pip install -e .`, the README's commands from any folder: `hfa_jax COMMAND` (or
`python -m hfa_jax COMMAND`) runs the checkout's datasets/ and experiments/ wherever the user
is, and `import hfa_jax` works from the folder above a clone named hfa_jax.

Skipped, saying so, where the installed hfa_jax is not this checkout (another clone or
worktree installed in this environment): `pip install -e .` here first."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ['--config', 'tiny', '--model', 'ststnet', '--synthetic_subjects', '1']  # a registered model


def _installed_here(folder) -> pathlib.Path | None:
  """Where `import hfa_jax` leads from `folder` (None if nowhere)."""
  code = 'import pathlib, hfa_jax; print(pathlib.Path(hfa_jax.__file__).resolve())'
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  out = subprocess.run(
    [sys.executable, '-c', code], cwd=folder, env=env, capture_output=True, text=True
  )
  return pathlib.Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


@pytest.fixture(scope='module')
def outside(tmp_path_factory):
  """A folder outside the checkout, once the installed hfa_jax is known to be this one."""
  folder = tmp_path_factory.mktemp('anywhere')
  found = _installed_here(folder)
  if found is None or not found.is_relative_to(ROOT):
    pytest.skip(
      f'the installed hfa_jax is not this checkout ({found or "none"}): run pip install -e '
      f'{ROOT} to test the commands from other folders'
    )
  return folder


def _command() -> list[str]:
  """The console command installed beside this Python, else `python -m hfa_jax`."""
  script = pathlib.Path(sys.executable).parent / 'hfa_jax'
  return [str(script)] if script.is_file() else [sys.executable, '-m', 'hfa_jax']


def _run(args, cwd):
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  proc = subprocess.run(
    [*_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
  )
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
  return proc.stdout


def test_import_from_the_folder_above_a_clone_named_hfa_jax(outside):
  parent = outside / 'parent'
  parent.mkdir()
  (parent / 'hfa_jax').symlink_to(ROOT, target_is_directory=True)  # a clone named hfa_jax
  found = _installed_here(parent)
  assert found == ROOT / 'hfa_jax' / '__init__.py', found
  code = 'import hfa_jax; print(hfa_jax.load_model.__module__)'
  out = subprocess.run(
    [sys.executable, '-c', code], cwd=parent, capture_output=True, text=True, check=True
  )
  assert out.stdout.strip() == 'hfa_jax.trained'


def test_the_readme_commands_run_from_another_folder(outside):
  """The LOSO, evaluate, the final model, predict and load_model, from outside the clone."""
  work = outside / 'work'
  work.mkdir()
  out = _run(['loso', *TINY, '--keep_models', 'true', '--out', 'runs/kept', '--no_progress'], work)
  assert 'results in runs/kept' in out and (work / 'synthetic_data').is_dir()
  assert 'the same predicted class' in _run(['evaluate', 'runs/kept', '--no_progress'], work)
  _run(['final_model', *TINY, '--out', 'runs/final', '--loso', 'runs/kept', '--no_progress'], work)
  clip = next(p for p in (work / 'synthetic_data').rglob('EP*') if p.is_dir())
  out = _run(['predict', '--model', 'runs/final', str(clip)], work)
  assert out.startswith('SYNTHETIC: drawn faces, not a recogniser. model: ')
  code = "import hfa_jax; print(hfa_jax.load_model('runs/final')[2]['model'])"
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  loaded = subprocess.run(
    [sys.executable, '-c', code], cwd=work, env=env, capture_output=True, text=True, check=True
  )
  assert loaded.stdout.strip() == 'ststnet'
  assert 'usage: hfa_jax COMMAND' in _run(['--help'], work)
  shutil.rmtree(work / 'synthetic_data')
