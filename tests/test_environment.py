"""What a run records of the code it ran: the checkout's commit, else the package's version."""

import subprocess

import hfa_jax
from hfa_jax import environment


def test_a_checkout_names_its_commit():
  root = environment.pathlib.Path(hfa_jax.__file__).resolve().parent.parent
  head = subprocess.run(
    ['git', '-C', str(root), 'rev-parse', 'HEAD'], capture_output=True, text=True
  )
  code = environment.code_version()
  if head.returncode != 0:  # an installed package, not a checkout
    assert code == f'hfa_jax {hfa_jax.__version__}'
    return
  assert code.startswith(f'git {head.stdout.strip()}')
  changed = subprocess.run(
    ['git', '-C', str(root), 'status', '--porcelain', '--untracked-files=no'],
    capture_output=True,
    text=True,
  ).stdout.strip()
  assert code.endswith(' with uncommitted changes') == bool(changed)


def test_without_git_the_package_version(monkeypatch):
  def no_git(*args, **kwargs):
    raise FileNotFoundError('git')

  monkeypatch.setattr(environment.subprocess, 'run', no_git)
  assert environment.code_version() == f'hfa_jax {hfa_jax.__version__}'
