"""Install the project on a Colab (or any) runtime without replacing its accelerator's jax.

    python experiments/colab_setup.py                 # from the repository root
    python experiments/colab_setup.py --want tpu      # also check that the runtime has a TPU
    python experiments/colab_setup.py --dry_run       # say what pip would do; change nothing

Colab's TPU and GPU runtimes come with jax and jaxlib (and libtpu) built for their chip; a
plain `pip install -e .` may replace them with versions that do not match it. This pins
every such package already installed to its version (a pip constraints file), installs the
project, then checks that jax still imports and sees the accelerator asked for. Each step
stops with a message saying what failed and what to do.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
PINNED = (
  'jax',
  'jaxlib',
  'libtpu',
  'libtpu-nightly',
  'jax-cuda12-plugin',
  'jax-cuda12-pjrt',
  'jax-cuda13-plugin',
  'jax-cuda13-pjrt',
  'numpy',
)
SWITCH = {
  'tpu': 'Runtime > Change runtime type > Hardware accelerator: TPU (v5e), then run '
  'the cells again from the top',
  'gpu': 'Runtime > Change runtime type > Hardware accelerator: a GPU, then run the '
  'cells again from the top',
}


class SetupError(Exception):
  """A step failed; the message says which and what to do."""


def constraints() -> list[str]:
  """'name==version' of every installed package that must stay as the runtime has it."""
  out = []
  for name in PINNED:
    try:
      out.append(f'{name}=={md.version(name)}')
    except md.PackageNotFoundError:
      pass
  return out


def pip_command(constraint_file: str, dry_run: bool) -> list[str]:
  cmd = [sys.executable, '-m', 'pip', 'install', '-e', str(ROOT), '-c', constraint_file]
  return cmd + (['--dry-run'] if dry_run else ['-q'])


def install(dry_run: bool = False) -> str:
  """pip install -e the repository with the runtime's jax pinned; returns pip's output."""
  if not (ROOT / 'setup.cfg').is_file():
    raise SetupError(
      f'{ROOT} is not the hfa_jax repository (no setup.cfg): unpack or clone '
      'the whole repository and run this from its root'
    )
  pins = constraints()
  with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:
    f.write('\n'.join(pins) + '\n')
  proc = subprocess.run(pip_command(f.name, dry_run), capture_output=True, text=True)
  if proc.returncode != 0:
    raise SetupError(
      'pip could not install the project with the runtime\'s '
      f"{', '.join(pins) or 'packages'} kept:\n{proc.stdout[-2000:]}"
      f'{proc.stderr[-3000:]}\nIf a package needs a newer jax than the runtime '
      'has, use a newer runtime rather than replacing its jax.'
    )
  return proc.stdout


def check_devices(want: str | None) -> str:
  """jax's platform after the install (raises SetupError if it is not `want`)."""
  code = 'import jax; d = jax.devices(); print(d[0].platform, len(d), d[0].device_kind)'
  proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
  if proc.returncode != 0:
    raise SetupError(
      f'jax does not import after the install:\n{proc.stderr[-3000:]}\n'
      'Restart the runtime (Runtime > Restart session) and run the cells again.'
    )
  platform = proc.stdout.split()[0] if proc.stdout.split() else '?'
  if want and platform != want:
    raise SetupError(
      f'this runtime has no {want.upper()} (jax sees: {proc.stdout.strip()}). '
      + SWITCH[want]
      + '. On a CPU the LOSO runs too, but far more slowly.'
    )
  return proc.stdout.strip()


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python experiments/colab_setup.py', description=__doc__)
  p.add_argument('--want', choices=('tpu', 'gpu'), help='stop unless jax sees this accelerator')
  p.add_argument('--dry_run', action='store_true', help='show what pip would do; change nothing')
  args = p.parse_args(argv)
  try:
    print('keeping the runtime\'s', ', '.join(constraints()) or 'packages (none pinned)')
    out = install(args.dry_run)
    if args.dry_run:
      print(
        '\n'.join(l for l in out.splitlines() if l.startswith('Would'))
        or 'pip would change nothing'
      )
    else:
      print('installed hfa_jax from', ROOT)
    print('jax sees:', check_devices(args.want))
  except SetupError as e:
    print(f'SETUP FAILED: {e}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
