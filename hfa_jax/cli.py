"""The project's commands from any folder, after `pip install -e CHECKOUT`:

    hfa_jax loso --dataset samm            # = python -m experiments.loso ... in the checkout
    hfa_jax build samm --manual_dir DIR    # = python -m datasets.build ...
    hfa_jax predict --model DIR clip/      # = python -m experiments.predict ...
    python -m hfa_jax loso                 # the same, without the console command

Only the library is installed (setup.cfg): `datasets` is also the name of a PyPI package, so
the commands' own packages, datasets/ and experiments/, stay in the checkout, and a command
run here finds them beside the installed hfa_jax/ and puts them first on sys.path. Files and
folders given to a command are relative to the current folder, as with `python -m`.
"""

from __future__ import annotations

import pathlib
import runpy
import sys

COMMANDS = {
  'loso': 'experiments.loso',
  'evaluate': 'experiments.evaluate',
  'results': 'experiments.results',
  'seeds': 'experiments.seeds',
  'compare': 'experiments.compare',
  'final_model': 'experiments.final_model',
  'predict': 'experiments.predict',
  'build': 'datasets.build',
  'synthetic': 'datasets.synthetic',
  'benchmark': 'experiments.benchmark',
  'profile_step': 'experiments.profile_step',
  'bench_kernels': 'experiments.bench_kernels',
  'accelerator_sweep': 'experiments.accelerator_sweep',
}
USAGE = (
  'usage: hfa_jax COMMAND [options]   (COMMAND --help lists its options)\n\ncommands: '
  + ', '.join(COMMANDS)
  + '\n\nEach is `python -m MODULE` of the checkout: '
  + ', '.join(f'{c} = {m}' for c, m in list(COMMANDS.items())[:8])
  + ', ...'
)


def checkout() -> pathlib.Path:
  """The checkout the installed hfa_jax comes from (holding datasets/ and experiments/)."""
  root = pathlib.Path(__file__).resolve().parents[1]
  if not (root / 'experiments' / 'loso.py').is_file() or not (root / 'datasets').is_dir():
    raise SystemExit(
      f'error: hfa_jax is installed from {root}, which holds no datasets/ and experiments/: '
      'the commands need the checkout itself (pip install -e CHECKOUT)'
    )
  return root


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  if not argv or argv[0] in ('-h', '--help'):
    print(USAGE)
    return 0 if argv else 2
  command, rest = argv[0], argv[1:]
  if command not in COMMANDS:
    print(f'hfa_jax: error: no command {command!r}\n{USAGE}', file=sys.stderr)
    return 2
  root = str(checkout())
  if sys.path[:1] != [root]:
    sys.path.insert(0, root)
  for name in ('datasets', 'experiments'):  # never a package of that name from elsewhere
    module = sys.modules.get(name)
    if module is not None and not str(getattr(module, '__file__', '') or '').startswith(root):
      del sys.modules[name]
  sys.argv = [f'hfa_jax {command}', *rest]
  runpy.run_module(COMMANDS[command], run_name='__main__', alter_sys=True)
  return 0
