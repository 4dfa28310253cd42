"""Leave-one-subject-out (LOSO) training and evaluation of HFA-Net and the baselines.

    python -m experiments.loso                             # synthetic database, quick CPU preset
    python -m experiments.loso --dataset megc2019_flow_images              # the real recipe
    python -m experiments.loso --dataset megc2019_flow_images --model ststnet   # STSTNet
    python -m experiments.loso --dataset samm              # a frame-based dataset, 224 px
    python -m experiments.loso --dataset casme2:size_224_missing_apex_middle --classes native
    python -m experiments.loso --resume runs/loso-samm-composite-224px-seed0

Every setting is declared once (Experiment below; hfa_jax.loso.LosoConfig for training).
They are layered: declared defaults < the config file's get_config() < command-line
options. Without --config the file follows the model and the data:
experiments/configs/ststnet.py for --model ststnet, else synthetic.py, flow_images.py or
frames.py. Running the same command again with the same --out continues a stopped run;
--resume OUT continues it with the settings saved in OUT.

Writes to --out: summary.json, predictions.csv, confusion.png, curves.png, config.json
and state/ (orbax checkpoints, one record per finished fold).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import importlib.util
import json
import os
import pathlib
import shlex
import sys

import numpy as np

from experiments.run_log import EpochLog, WallClock
from hfa_jax import settings as settings_lib
from hfa_jax.environment import cpu_model, versions
from hfa_jax.settings import setting

DATASETS = ('synthetic', 'samm', 'casme2', 'smic', 'megc2019', 'megc2019_flow_images')
FLOW_IMAGES = ('megc2019_flow_images',)
NATIVE_OK = ('samm', 'casme2', 'smic')
MODELS = {'hfanet': 'hfa_jax.models.hfanet:HFANet', 'ststnet': 'hfa_jax.models.ststnet:STSTNet'}
CONFIG_DIR = pathlib.Path(__file__).resolve().parent / 'configs'
COMPOSITE_SAMPLES = 442


@dataclasses.dataclass(frozen=True)
class Experiment:
  """What to train on, which model, where the results go (the training settings are
  hfa_jax.loso.LosoConfig's)."""

  dataset: str = setting(
    'synthetic',
    'NAME or NAME:CONFIG of a dataset built by python -m '
    'datasets.build (e.g. casme2:size_224_missing_apex_middle), or '
    'synthetic',
  )
  data_dir: str | None = setting(
    None,
    'where datasets are built ($TFDS_DATA_DIR or '
    '~/tensorflow_datasets; synthetic: ./synthetic_data)',
  )
  classes: str = setting(
    'composite',
    "'composite': negative/positive/surprise (MEGC2019); 'native': the database's emotions",
    choices=('composite', 'native'),
  )
  keep_emotions: list | None = setting(None, 'native classes to keep, comma-separated')
  size: int | None = setting(
    None,
    "input side (default: a flow-image dataset's native side, "
    "rounded up to the model's multiple; 224 for frame-based data)",
    minimum=8,
  )
  subjects: list | None = setting(
    None, 'test only these subjects (comma-separated): part of a LOSO'
  )
  model: str = setting(
    'hfanet',
    "'hfanet', 'ststnet', or 'module:Class' of a linen module "
    'taking num_classes, called as (x, train)',
  )
  out: str | None = setting(
    None,
    'output folder (default runs/loso-DATASET-CLASSES-SIZEpx-'
    'seedSEED, with the model unless HFA-Net)',
  )
  synthetic_subjects: int = setting(4, 'subjects per synthetic database', minimum=1)
  synthetic_seed: int = setting(0, 'seed of the synthetic databases')


class UsageError(Exception):
  """A bad option or setting; the message says which and why."""


def _training_fields() -> list[str]:
  from hfa_jax.loso import LosoConfig

  return settings_lib.names(LosoConfig)


def default_settings() -> dict:
  from hfa_jax.loso import LosoConfig

  return {**settings_lib.defaults(Experiment), **settings_lib.defaults(LosoConfig)}


# ----------------------------------------------------------------------- settings


def load_config_file(name: str) -> dict:
  """get_config() of experiments/configs/NAME.py (or of a .py path)."""
  path = pathlib.Path(name)
  if path.suffix != '.py':
    path = CONFIG_DIR / f'{name}.py'
  if not path.is_file():
    known = ', '.join(sorted(p.stem for p in CONFIG_DIR.glob('*.py') if p.stem != '__init__'))
    raise UsageError(f'--config {name}: no file {path} (configs: {known})')
  spec = importlib.util.spec_from_file_location(f'_loso_config_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise UsageError(f'--config {path} has no get_config()')
  cfg = dict(module.get_config())
  unknown = set(cfg) - set(default_settings())
  if unknown:
    raise UsageError(f'--config {path}: unknown settings {sorted(unknown)}')
  return cfg


def dataset_name(dataset: str) -> tuple[str, str | None]:
  """'casme2:size_224_missing_apex_middle' -> ('casme2', 'size_224_missing_apex_middle')."""
  name, _, config = dataset.partition(':')
  return name, config or None


def default_config_name(dataset: str, model: str) -> str:
  name, _ = dataset_name(dataset)
  if model == 'ststnet':
    return 'ststnet'
  if name == 'synthetic':
    return 'synthetic'
  return 'flow_images' if name in FLOW_IMAGES else 'frames'


def make_parser() -> argparse.ArgumentParser:
  from hfa_jax.loso import LosoConfig

  doc = __doc__.split('\n\n', 1)
  p = argparse.ArgumentParser(
    prog='python -m experiments.loso',
    description=doc[0],
    epilog=doc[1],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument(
    '--config',
    default=argparse.SUPPRESS,
    help='experiments/configs/NAME.py or a path (default: by model and data)',
  )
  p.add_argument(
    '--resume',
    metavar='OUT',
    default=argparse.SUPPRESS,
    help='continue the run in OUT with its saved settings',
  )
  p.add_argument(
    '--no_progress',
    action='store_true',
    default=argparse.SUPPRESS,
    help='no progress bar: plain log lines instead (the compile, then an epoch line at most '
    'once a minute)',
  )
  settings_lib.add_flags(p, Experiment, 'data, model and output')
  settings_lib.add_flags(p, LosoConfig, 'training (hfa_jax.loso.LosoConfig)')
  return p


def settings_from_args(args: argparse.Namespace) -> dict:
  """defaults < config file < explicit options (or the saved settings with --resume)."""
  given = {k: v for k, v in vars(args).items() if k not in ('config', 'resume', 'no_progress')}
  if getattr(args, 'resume', None):
    saved = pathlib.Path(args.resume) / 'config.json'
    if not saved.is_file():
      raise UsageError(f'--resume {args.resume}: no run there ({saved} is missing)')
    if given or getattr(args, 'config', None):
      raise UsageError(
        '--resume takes the saved settings; give no other settings with it '
        f'(got {", ".join("--" + k for k in given) or "--config"})'
      )
    record = json.loads(saved.read_text())
    s = {**default_settings(), **record['settings']}
    s['out'] = str(args.resume)
    s['_size_reason'] = record.get('size_reason', 'saved with the run')
    return s
  s = default_settings()
  dataset = given.get('dataset', s['dataset'])
  model = given.get('model', s['model'])
  config_name = getattr(args, 'config', None) or default_config_name(dataset, model)
  from_file = load_config_file(config_name)
  s.update(from_file)
  s.update(given)
  s['config'] = config_name
  s['_size_reason'] = (
    '--size'
    if 'size' in given
    else f'experiments/configs/{config_name}.py'
    if 'size' in from_file
    else None
  )
  return s


def model_class(spec: str):
  """The class of a model from 'hfanet', 'ststnet' or 'module:Class'."""
  module_name, _, attr = MODELS.get(spec, spec).partition(':')
  try:
    return getattr(importlib.import_module(module_name), attr)
  except (ImportError, AttributeError, ValueError) as e:
    raise UsageError(
      f"--model {spec}: cannot import it ({e}); use hfanet, ststnet or 'module:Class'"
    ) from None


def choose_size(s: dict) -> tuple[int, str]:
  """(input side, why) for these settings."""
  multiple = getattr(model_class(s['model']), 'side_multiple', 1)
  name, _ = dataset_name(s['dataset'])
  if s['size'] is not None:
    size, why = s['size'], f"set by {s.get('_size_reason') or 'the settings'}"
  elif name in FLOW_IMAGES:
    from datasets.load import native_size

    native = native_size(name)
    size = -(-native // multiple) * multiple
    why = f"the flow images' native {native} px" + (
      f", rounded up to {s['model']}'s multiple of {multiple}" if size != native else ''
    )
  elif name == 'synthetic':
    size, why = 32, 'the synthetic preset'
  else:
    size, why = 224, 'frame-based dataset: the side HFA-Net was designed for'
  if size % multiple:
    raise UsageError(
      f"--size must be a multiple of {multiple} for {s['model']} (its total stride), got {size}"
    )
  return size, why


def check_settings(s: dict) -> dict:
  """Raises UsageError for settings that cannot work; fills the dependent defaults."""
  try:
    experiment = Experiment(**{k: s[k] for k in settings_lib.names(Experiment)})
    settings_lib.check(experiment)
  except (ValueError, TypeError) as e:
    raise UsageError(str(e)) from None
  name, _ = dataset_name(s['dataset'])
  if name not in DATASETS:
    raise UsageError(
      f"dataset must be one of {', '.join(DATASETS)} (optionally NAME:CONFIG), got {s['dataset']!r}"
    )
  if s['classes'] == 'native' and name not in NATIVE_OK:
    raise UsageError(
      f"--classes native applies to {', '.join(NATIVE_OK)} (each database has "
      f'its own emotions); {name} has the composite classes only'
    )
  if s['keep_emotions'] and s['classes'] != 'native':
    raise UsageError('--keep_emotions needs --classes native')
  try:
    loso_config(s).validate()
  except (ValueError, TypeError) as e:
    raise UsageError(str(e)) from None
  s['size'], s['_size_reason'] = choose_size(s)
  if s['out'] is None:
    model = '' if s['model'] == 'hfanet' else f"-{s['model'].replace(':', '.')}"
    s['out'] = os.path.join(
      'runs',
      f"loso-{s['dataset'].replace(':', '-')}-{s['classes']}-{s['size']}px{model}-seed{s['seed']}",
    )
  return s


def loso_config(s: dict):
  from hfa_jax.loso import LosoConfig

  return LosoConfig(**{k: s[k] for k in _training_fields()})


def saved_settings(s: dict) -> dict:
  return {k: s[k] for k in default_settings()}


def reproduce_command(s: dict) -> str:
  """The command line that reruns these settings (every setting explicit)."""
  parts = ['python', '-m', 'experiments.loso']
  for key, value in saved_settings(s).items():
    if value is None:
      continue
    if isinstance(value, bool):
      value = str(value).lower()
    elif isinstance(value, (list, tuple)):
      value = ','.join(map(str, value))
    parts += [f'--{key}', str(value)]
  return shlex.join(parts)


# --------------------------------------------------------------------------- data


def _synthetic(s: dict, progress: bool = True):
  """Generate (once) the synthetic databases and build them with the megc2019 builder."""
  from datasets import build as build_cli
  from datasets import synthetic
  from datasets.load import DatasetNotBuiltError, load_arrays

  root = pathlib.Path(s['data_dir'] or 'synthetic_data')
  tag = f"{s['synthetic_subjects']}subjects-seed{s['synthetic_seed']}"
  manual, data_dir = root / f'manual-{tag}', root / f'tfds-{tag}'
  try:
    return load_arrays('megc2019', data_dir, s['size']), data_dir
  except DatasetNotBuiltError:
    pass
  done = manual / '.complete'
  if not done.exists():
    print(f'generating the synthetic databases in {manual}', flush=True)
    synthetic.generate('all', manual, s['synthetic_subjects'], s['synthetic_seed'])
    done.touch()
  print(f'building them with the megc2019 builder into {data_dir}', flush=True)
  code = build_cli.main(
    ['megc2019', '--manual_dir', str(manual), '--data_dir', str(data_dir), '--size', str(s['size'])]
    + ([] if progress else ['--no_progress'])
  )
  if code != 0:
    raise SystemExit(f'building the synthetic dataset failed (exit code {code})')
  return load_arrays('megc2019', data_dir, s['size']), data_dir


def load_dataset(s: dict, progress: bool = True) -> dict:
  """The input pipeline's arrays (datasets.load.training_data) for these settings; without
  `progress`, a synthetic build shows no progress bar (logs)."""
  from datasets.load import training_data

  name, config = dataset_name(s['dataset'])
  try:
    if name == 'synthetic':
      data, data_dir = _synthetic(s, progress)
      return training_data(
        'megc2019', data_dir, s['size'], s['classes'], s['keep_emotions'], data=data
      ) | dict(source='synthetic')
    return training_data(
      name, s['data_dir'], s['size'], s['classes'], s['keep_emotions'], config=config
    )
  except ValueError as e:
    raise UsageError(str(e)) from None


# --------------------------------------------------------------------------- main


def run(s: dict, progress: bool = True, argv=None) -> dict:
  """Runs the LOSO of settings `s` and writes every output; returns the summary."""
  import jax
  from hfa_jax import report
  from hfa_jax.loso import run_loso

  out = pathlib.Path(s['out'])
  if out.exists() and not out.is_dir():
    raise UsageError(f'--out {out} is a file; give a folder')
  saved = out / 'config.json'
  finished_before = (out / 'summary.json').is_file()
  if saved.is_file():
    print(f'continuing the run in {out}', flush=True)
  data = load_dataset(s, progress)
  try:
    out.mkdir(parents=True, exist_ok=True)
    probe = out / '.write_test'
    probe.write_text('')
    probe.unlink()
  except OSError as e:
    raise UsageError(
      f'--out {out} cannot be written ({e.strerror}); choose another folder'
    ) from None
  names = data['class_names']
  everyone = sorted(set(data['subjects'].tolist()))
  n = len(data['labels'])
  print(
    f"{data['source']}: {n} samples, {len(everyone)} subjects, classes {names} "
    f"({np.bincount(data['labels'], minlength=len(names)).tolist()})"
    + (f"; {data['dropped']} samples outside these classes left out" if data['dropped'] else ''),
    flush=True,
  )
  name, _ = dataset_name(s['dataset'])
  if name in ('megc2019',) + FLOW_IMAGES and s['classes'] == 'composite' and n < COMPOSITE_SAMPLES:
    skipped = data['skipped']
    print(
      f'WARNING: the MEGC2019 composite has {COMPOSITE_SAMPLES} samples, this dataset {n}'
      + (f" ({len(skipped)} skipped by the build, listed in summary.json)" if skipped else '')
      + ': the results are not comparable with published composite numbers.',
      flush=True,
    )
  stored = data['stored_size']
  print(
    f"input {s['size']} px: {s['_size_reason']}"
    + (f' (stored at {stored} px, resized on load)' if stored != s['size'] else ''),
    flush=True,
  )
  config = loso_config(s)
  if config.warmup_epochs > config.epochs:
    print(
      f'WARNING: --warmup_epochs {config.warmup_epochs} is longer than the run '
      f'({config.epochs} epochs): the learning rate never reaches its peak '
      f'{config.learning_rate}.',
      flush=True,
    )
  print(
    f"model {s['model']}, settings from {s.get('config') or 'the saved run'}; protocol: "
    f'{config.protocol()}',
    flush=True,
  )
  print(
    f'{jax.device_count()} {jax.devices()[0].device_kind} device(s); output in {out}', flush=True
  )
  if not saved.is_file():
    saved.write_text(
      json.dumps(
        dict(
          settings=saved_settings(s), size_reason=s['_size_reason'], command=reproduce_command(s)
        ),
        indent=1,
      )
    )
  model = model_class(s['model'])(num_classes=len(names))
  clock = WallClock(out)
  trained = []
  log = None if progress else EpochLog(config.epochs)

  def on_epoch(*args):
    trained.append(1)
    clock.tick()
    if log:
      log(*args)

  try:
    result = run_loso(
      data['images'],
      data['labels'],
      data['subjects'],
      config,
      model,
      num_classes=len(names),
      only_subjects=s['subjects'],
      strata=data['databases'],
      out_dir=out / 'state',
      progress=progress,
      on_epoch=on_epoch,
      run_record=dict(
        dataset=s['dataset'],
        classes=s['classes'],
        keep_emotions=s['keep_emotions'],
        size=s['size'],
        model=s['model'],
      ),
    )
  finally:
    clock.tick()
  if finished_before and not trained:
    print(f'already finished; results in {out}', flush=True)
  record = report.write(
    out,
    result,
    data,
    extra=dict(
      dataset=s['dataset'],
      settings=saved_settings(s),
      size_reason=s['_size_reason'],
      seed=s['seed'],
      versions=versions(),
      cpu=cpu_model(),
      devices=dict(
        platform=jax.devices()[0].platform,
        kind=jax.devices()[0].device_kind,
        count=jax.device_count(),
        processes=jax.process_count(),
      ),
      wall_time_seconds=clock.total,
      wall_time_parts=clock.parts,
      finished=datetime.datetime.now().isoformat(timespec='seconds'),
      command=reproduce_command(s),
      argv=list(sys.argv if argv is None else argv),
    ),
  )
  print('\n' + report.table(record))
  print(
    f"wall time {record['wall_time_seconds']:.0f} s"
    + (f" over {len(clock.parts)} parts" if len(clock.parts) > 1 else '')
    + f'; results in {out}'
  )
  return record


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  parser = make_parser()
  args = parser.parse_args(argv)
  try:
    s = check_settings(settings_from_args(args))
  except UsageError as e:
    parser.error(str(e))
  _enable_compilation_cache()
  from datasets.load import DatasetNotBuiltError
  from hfa_jax.loso import NonFiniteError, RunInUseError

  try:
    run(
      s,
      progress=not getattr(args, 'no_progress', False),
      argv=['python', '-m', 'experiments.loso', *argv],
    )
  except (UsageError, DatasetNotBuiltError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except ValueError as e:  # run_loso: the folder holds another run, or other data
    if 'holds a run' not in str(e):
      raise
    print(f'error: {e}', file=sys.stderr)
    return 2
  except (NonFiniteError, RunInUseError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print(
      f"\nstopped. Run the same command again (or --resume {s['out']}) to continue; "
      'finished folds and the last checkpoint are kept.',
      file=sys.stderr,
    )
    return 130
  return 0


def _enable_compilation_cache():
  """Persistent XLA cache: a rerun (or a resume) skips the minutes of compilation."""
  import jax
  from hfa_jax.kernels import cache_root

  if os.environ.get('JAX_COMPILATION_CACHE_DIR') is None:
    jax.config.update('jax_compilation_cache_dir', str(cache_root() / 'xla'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 2.0)


if __name__ == '__main__':
  from hfa_jax import allocator

  allocator.restart_with_retained_memory()  # glibc keeps freed memory: fewer page faults
  sys.exit(main())
