"""Install the project on a Colab (or any) runtime without replacing its accelerator's jax.

    python experiments/colab_setup.py                 # from the repository root
    python experiments/colab_setup.py --want tpu      # also check that the runtime has a TPU
    python experiments/colab_setup.py --dry_run       # say what pip would do; change nothing
    python experiments/colab_setup.py --no_device_check   # install only (what the notebook runs)

Colab's TPU and GPU runtimes come with jax and jaxlib (and libtpu) built for their chip; a
plain `pip install -e .` may replace them with versions that do not match it. This pins
every such package already installed to its version (a pip constraints file), installs the
project, then checks that jax still imports and sees the accelerator asked for. The check
runs jax in a second process, which takes the TPU while it runs: the notebook passes
--no_device_check and checks in its own process instead (`check_this_process`), the one that
then builds and trains (libtpu admits one process per TPU host).

OpenCV: Colab ships opencv-python, opencv-python-headless and opencv-contrib-python; the
project needs opencv-contrib-python-headless (setup.cfg). Each of these distributions
installs the same `cv2` package, so two of them side by side overwrite each other's files,
and removing one later breaks the other. Before installing, this uninstalls every other
distribution that provides `cv2`, and reinstalls the project's one if it was there beside
them (their removal took files it shares). opencv-contrib-python-headless holds every module
of the others except the GUI windows (cv2.imshow), which Colab does not show anyway
(google.colab.patches.cv2_imshow does). pip may then warn that a package which asks for one
of the removed names misses it: its `cv2` is there.

Each step stops with a message saying what failed and what to do.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata as md
import pathlib
import re
import shlex
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
# The distributions on PyPI that install the `cv2` package (besides any other installed one
# whose files hold it: installed_cv2 asks importlib.metadata).
CV2_DISTRIBUTIONS = (
  'opencv-python',
  'opencv-python-headless',
  'opencv-contrib-python',
  'opencv-contrib-python-headless',
)
SWITCH = {
  'tpu': 'Runtime > Change runtime type > Hardware accelerator: TPU (v5e), then run '
  'the cells again from the top',
  'gpu': 'Runtime > Change runtime type > Hardware accelerator: a GPU, then run the '
  'cells again from the top',
}
# When jax sees no TPU on a TPU runtime: another process holds the chip.
BUSY = {
  'tpu': 'If the runtime type already is TPU, another process holds the chip (libtpu '
  'admits one process per TPU host): Runtime > Restart session, then run the cells again '
  'from the top. '
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


# ------------------------------------------------------------------------------- OpenCV


def canonical(name: str) -> str:
  """A distribution's name as pip compares them: 'OpenCV_Python' -> 'opencv-python'."""
  return re.sub(r'[-_.]+', '-', name).lower()


def opencv_requirement(setup_cfg: str) -> str:
  """The project's OpenCV requirement in the text of setup.cfg, e.g.
  'opencv-contrib-python-headless>=4.10,<5'."""
  for line in setup_cfg.splitlines():
    if canonical(line.strip()).startswith('opencv-'):
      return line.strip()
  raise SetupError('setup.cfg names no OpenCV distribution in install_requires')


def installed_cv2() -> dict[str, str]:
  """{canonical name: version} of every installed distribution that provides `cv2`."""
  names = set(md.packages_distributions().get('cv2', ())) | set(CV2_DISTRIBUTIONS)
  out = {}
  for name in names:
    try:
      out[canonical(name)] = md.version(name)
    except md.PackageNotFoundError:
      pass
  return out


@dataclasses.dataclass(frozen=True)
class OpencvPlan:
  """What to change so that one distribution provides `cv2`: the project's."""

  wanted: str  # the project's distribution (canonical name)
  remove: tuple[str, ...]  # the other distributions that provide cv2: uninstalled
  restore: str | None  # 'name==version' of the project's, reinstalled after the removal

  def commands(self, python: str = sys.executable) -> list[list[str]]:
    """The pip commands of the plan, in order (none when there is nothing to change)."""
    cmds = []
    if self.remove:
      cmds.append([python, '-m', 'pip', 'uninstall', '-y', *self.remove])
    if self.restore:
      cmds.append(
        [python, '-m', 'pip', 'install', '-q', '--no-deps', '--force-reinstall', self.restore]
      )
    return cmds

  def describe(self) -> str:
    if not self.remove:
      return f'OpenCV: no other distribution provides cv2 beside {self.wanted}'
    text = (
      f'OpenCV: uninstalling {", ".join(self.remove)}: they install the same cv2 module as '
      f'the project\'s {self.wanted}, and two side by side break each other'
    )
    if self.restore:
      text += f'; then reinstalling {self.restore} (the removal took files it shares)'
    return text


def opencv_plan(installed: dict[str, str], requirement: str) -> OpencvPlan:
  """The plan for the distributions `installed` ({name: version}) that provide cv2, when
  the project requires `requirement` (its setup.cfg line)."""
  wanted = canonical(re.match(r'[A-Za-z0-9._-]+', requirement).group(0))
  versions = {canonical(name): version for name, version in installed.items()}
  remove = tuple(sorted(name for name in versions if name != wanted))
  restore = f'{wanted}=={versions[wanted]}' if remove and wanted in versions else None
  return OpencvPlan(wanted, remove, restore)


def one_opencv(dry_run: bool = False) -> OpencvPlan:
  """Carries out the OpenCV plan for this environment (with `dry_run`, only says it)."""
  plan = opencv_plan(installed_cv2(), opencv_requirement((ROOT / 'setup.cfg').read_text()))
  print(plan.describe())
  for cmd in plan.commands():
    if dry_run:
      print('would run:', shlex.join(cmd))
      continue
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
      raise SetupError(
        f'{shlex.join(cmd[2:])} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}\n'
        'Restart the runtime (Runtime > Restart session) and run the cells again.'
      )
  return plan


# ------------------------------------------------------------------------------ install


def install(dry_run: bool = False) -> str:
  """pip install -e the repository with the runtime's jax pinned; returns pip's output."""
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


# ------------------------------------------------------------------------------ devices


def verdict(want: str | None, seen: str) -> str:
  """`seen` ('PLATFORM COUNT KIND', what jax sees) if its platform is `want` (or `want` is
  None); else SetupError saying how to switch the runtime to it."""
  platform = seen.split()[0] if seen.split() else '?'
  if want and platform != want:
    raise SetupError(
      f'this runtime has no {want.upper()} (jax sees: {seen}). '
      + SWITCH[want]
      + '. '
      + BUSY.get(want, '')
      + 'On a CPU the LOSO runs too, but far more slowly.'
    )
  return seen


def describe(devices) -> str:
  """'PLATFORM COUNT KIND' of a list of jax devices."""
  return f'{devices[0].platform} {len(devices)} {devices[0].device_kind}'


def check_devices(want: str | None) -> str:
  """jax's devices as a new process sees them after the install (SetupError if not `want`).
  That process holds the TPU while it runs: on a TPU, call this before any other process
  has taken the chip, or use check_this_process."""
  code = 'import jax; d = jax.devices(); print(d[0].platform, len(d), d[0].device_kind)'
  proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
  if proc.returncode != 0:
    raise SetupError(
      f'jax does not import after the install:\n{proc.stderr[-3000:]}\n'
      'Restart the runtime (Runtime > Restart session) and run the cells again.'
    )
  return verdict(want, proc.stdout.strip())


def check_this_process(want: str | None) -> str:
  """jax's devices as this process sees them (SetupError if not `want`). This process takes
  the TPU: call it in the one that will build and train (the notebook's kernel)."""
  import jax

  return verdict(want, describe(jax.devices()))


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python experiments/colab_setup.py', description=__doc__)
  p.add_argument('--want', choices=('tpu', 'gpu'), help='stop unless jax sees this accelerator')
  p.add_argument('--dry_run', action='store_true', help='show what pip would do; change nothing')
  p.add_argument(
    '--no_device_check',
    action='store_true',
    help='install only; check the devices in the process that will use them '
    '(check_this_process: a TPU admits one process per host)',
  )
  args = p.parse_args(argv)
  try:
    if not (ROOT / 'setup.cfg').is_file():
      raise SetupError(
        f'{ROOT} is not the hfa_jax repository (no setup.cfg): unpack or clone '
        'the whole repository and run this from its root'
      )
    print('keeping the runtime\'s', ', '.join(constraints()) or 'packages (none pinned)')
    one_opencv(args.dry_run)
    out = install(args.dry_run)
    if args.dry_run:
      print(
        '\n'.join(l for l in out.splitlines() if l.startswith('Would'))
        or 'pip would change nothing'
      )
    else:
      print('installed hfa_jax from', ROOT)
    if not args.no_device_check:
      print('jax sees:', check_devices(args.want))
  except SetupError as e:
    print(f'SETUP FAILED: {e}', file=sys.stderr)
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
