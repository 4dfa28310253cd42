"""Keep freed host memory in the process: glibc settings for faster CPU training.

XLA:CPU allocates its temporaries on every step. glibc serves large blocks with fresh
mmap'd pages and returns them on free, so every step pays for ~1 million page faults at
side 224 (about a third of the step's CPU time on the 2-core machine of docs/performance.md).
With these glibc tunables freed memory stays in the process and is reused:

    GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4611686018427387904:glibc.malloc.arena_max=1

(no mmap'd blocks, never trim, one arena: with 2 arenas the page faults came back in some runs,
~0.9 million per step at side 224; one arena costs some lock contention on small steps, 196 vs
170 ms at side 32; measured on 2 cores only). The cost: the process keeps its peak resident
memory until it exits. glibc reads tunables only at start-up, so the command-line tools
(`python -m experiments.loso`, `experiments.benchmark`) restart themselves once with them set
(`restart_with_retained_memory`). In a notebook or your own script, export the variable
before starting Python. `HFA_JAX_MALLOC=system` turns the restart off. PyTorch's CPU
training profits the same way (docs/performance.md).
"""

from __future__ import annotations

import os
import platform
import sys

SETTINGS = (
  'glibc.malloc.mmap_max=0',
  'glibc.malloc.trim_threshold=4611686018427387904',
  'glibc.malloc.arena_max=1',
)


def tunables(current: str | None = None) -> str:
  """GLIBC_TUNABLES with our settings appended to `current` (the environment's by default)."""
  current = os.environ.get('GLIBC_TUNABLES', '') if current is None else current
  kept = [
    t
    for t in current.split(':')
    if t and t.split('=')[0] not in {s.split('=')[0] for s in SETTINGS}
  ]
  return ':'.join(kept + list(SETTINGS))


def active() -> bool:
  """True if this process started with the settings."""
  return all(s in os.environ.get('GLIBC_TUNABLES', '').split(':') for s in SETTINGS)


def restart_with_retained_memory() -> None:
  """Re-executes the current command with the settings, once; returns if it does not apply.

  Call it first thing under `if __name__ == '__main__':`, never from library code: it
  replaces the running process.
  """
  if (
    os.environ.get('HFA_JAX_MALLOC', '') == 'system'
    or active()
    or not sys.platform.startswith('linux')
    or platform.libc_ver()[0] != 'glibc'
  ):
    return
  env = dict(os.environ, GLIBC_TUNABLES=tunables())
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
