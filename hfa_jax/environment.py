"""What a run ran on, for its record: the CPU model and the versions of the packages."""

from __future__ import annotations

import platform


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
