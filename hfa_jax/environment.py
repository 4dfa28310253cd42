"""What a run ran on, for its record: the CPU model, the versions of the packages and the
project's own code (its git commit)."""

from __future__ import annotations

import pathlib
import platform
import subprocess


def versions() -> dict:
  """Python and the versions of the packages that shape the numbers (None: not installed)."""
  import importlib.metadata as md

  out = {'python': platform.python_version()}
  for pkg in ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy', 'tensorflow-datasets'):
    try:
      out[pkg] = md.version(pkg)
    except md.PackageNotFoundError:
      out[pkg] = None
  return out


def cpu_model() -> str:
  """The CPU's model name (/proc/cpuinfo), else what the platform module says."""
  try:
    for line in open('/proc/cpuinfo'):
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def code_version() -> str:
  """The project's code that runs: 'git COMMIT' (40 hex digits; ' with uncommitted changes'
  where tracked files differ from it) when hfa_jax is imported from the top of a git checkout,
  else 'hfa_jax VERSION' (an installed package)."""
  root = pathlib.Path(__file__).resolve().parent.parent

  def git(*args) -> str | None:
    try:
      done = subprocess.run(
        ['git', '-C', str(root), *args], capture_output=True, text=True, timeout=20
      )
    except (OSError, subprocess.SubprocessError):
      return None
    return done.stdout.strip() if done.returncode == 0 else None

  top = git('rev-parse', '--show-toplevel')
  if top and pathlib.Path(top).resolve() == root:
    commit = git('rev-parse', 'HEAD')
    if commit:
      changed = git('status', '--porcelain', '--untracked-files=no')
      return f'git {commit}' + (' with uncommitted changes' if changed else '')
  from hfa_jax import __version__

  return f'hfa_jax {__version__}'
