"""The settings of `python -m experiments.loso`: the command line, saved runs, the checks.

Every setting is declared once (experiments.declarations: `Experiment` and
`hfa_jax.loso.LosoConfig`); a recipe (experiments.recipes) is an ml_collections config file,
experiments/configs/NAME.py, whose `get_config()` returns the settings it changes.
Layers, lowest first: the declarations < the recipe < the command line, where
`--epochs 12`, `--epochs=12` and `--config.epochs=12` are the same option. Without
--config the recipe follows the model and the data. `--resume OUT` takes the settings
saved in OUT instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import shlex


from datasets.load import native_size
from hfa_jax import settings as settings_lib
from hfa_jax.loso import store
from hfa_jax.loso.config import LosoConfig
from experiments import run_folder
from experiments.declarations import (
  DATASETS,
  FLOW_IMAGES,
  NATIVE_OK,
  Experiment,
  base_config,
  declared_defaults,
  field_names,
)
from experiments.networks import model_class
from experiments.recipes import (
  default_recipe,
  folder_recipe,
  load_recipe,
  recipe_path,
)
from experiments.run_folder import default_out  # noqa: F401 (the commands' folder names)
from experiments.usage import Parser, UsageError  # noqa: F401 (the commands' errors)

COMMAND = ('config', 'resume', 'no_progress')  # options that are not settings


@dataclasses.dataclass(frozen=True)
class Settings:
  """The checked settings of one run."""

  experiment: Experiment
  training: LosoConfig
  recipe: str  # the config file's name, or 'the saved run'
  size: int  # input side
  size_reason: str  # why that side, in words
  out: pathlib.Path

  def values(self) -> dict:
    """Every declared setting's value (the input side and output folder as chosen)."""
    values = dataclasses.asdict(self.experiment) | dataclasses.asdict(self.training)
    return values | dict(size=self.size, out=str(self.out))

  def command(self) -> str:
    """The command line that reruns these settings (every setting explicit; an unset one as
    `none`, which a recipe's value would otherwise replace: --folds_in_parallel none)."""
    parts = ['python', '-m', 'experiments.loso']
    for key, value in self.values().items():
      if value is None:
        value = 'none'
      elif isinstance(value, bool):
        value = str(value).lower()
      elif isinstance(value, (list, tuple)):
        value = ','.join(map(str, value))
      parts += [f'--{key}', str(value)]
    return shlex.join(parts)

  def record(self) -> dict:
    """What the run folder keeps of the settings (state/run.json's 'started_by'): the
    settings, the recipe, why the side, the command."""
    return dict(
      settings=self.values(),
      recipe=self.recipe,
      size_reason=self.size_reason,
      command=self.command(),
    )


# ----------------------------------------------------------------- command line


def make_parser(
  defaults: dict | None = None, recipe: str = 'synthetic', doc: str = __doc__
) -> argparse.ArgumentParser:
  """The command line; `defaults` (those of `recipe`) are what --help shows; `doc`, the
  command's docstring, its description and epilog."""
  defaults = defaults or {}
  doc = doc.split('\n\n', 1)
  p = Parser(
    prog='python -m experiments.loso',
    allow_abbrev=False,  # '--epoch 5' is no option (argparse would read it as --epochs)
    description=doc[0] + f'\n\nDefaults shown: those of {recipe_path(recipe)}, the '
    'recipe these options choose (--config, or by --dataset and --model).',
    epilog=doc[1],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument(
    '--config',
    default=argparse.SUPPRESS,
    help='experiments/configs/NAME.py or a path (default: by model and data); every option '
    'below may also be given as --config.NAME=VALUE',
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
  settings_lib.add_flags(p, Experiment, 'data, model and output', defaults, aliases='config.')
  settings_lib.add_flags(
    p, LosoConfig, 'training (hfa_jax.loso.LosoConfig)', defaults, aliases='config.'
  )
  return p


def chosen_recipe(argv: list[str]) -> str:
  """The recipe that `argv` chooses (its --config, or by --dataset and --model)."""
  pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
  for name in ('config', 'dataset', 'model'):
    pre.add_argument(f'--{name}', f'--config.{name}', dest=name)
  known, _ = pre.parse_known_args(argv)
  dataset = known.dataset or Experiment.dataset
  return known.config or default_recipe(dataset, known.model or Experiment.model)


def parse(
  argv: list[str], doc: str = __doc__, prog: str = 'python -m experiments.loso', extra=None
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
  """(parser, options); --help shows the defaults of the recipe `argv` chooses; `extra`
  (parser) adds a command's own options (settings_from_args is told their names)."""
  recipe = chosen_recipe(argv)
  try:
    defaults = declared_defaults()
    defaults |= load_recipe(recipe)
  except UsageError:
    defaults = None  # reported once the options are read
  parser = make_parser(defaults, recipe, doc)
  parser.prog = prog
  if extra is not None:
    extra(parser)
  return parser, parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace, command: tuple = ()) -> Settings:
  """Checked Settings: declarations < recipe < options, or those saved with --resume;
  `command`: the names of a command's own options, which are not settings."""
  given = {k: v for k, v in vars(args).items() if k not in COMMAND + command}
  if getattr(args, 'resume', None):
    return saved_settings(pathlib.Path(args.resume), given, getattr(args, 'config', None))
  values = declared_defaults()
  experiment = {k: given.get(k, values[k]) for k in settings_lib.names(Experiment)}
  recipe = getattr(args, 'config', None) or default_recipe(
    experiment['dataset'], experiment['model']
  )
  from_recipe = load_recipe(recipe)
  values |= from_recipe | given
  if 'size' in given:
    reason = '--size'
  elif 'size' in from_recipe:
    reason = recipe_path(recipe)
  else:
    reason = None
  return checked(values, recipe, reason)


def saved_record(out: pathlib.Path) -> dict | None:
  """Settings.record() of the run in `out`, as its state/run.json keeps it (or config.json,
  where runs of earlier versions kept it); None where no run has started there."""
  run = store.read_run(out / 'state')
  if run and store.NOTE in run:
    return run[store.NOTE]
  older = out / 'config.json'
  return json.loads(older.read_text()) if older.is_file() else None


def saved_settings(out: pathlib.Path, given: dict | None = None, config=None) -> Settings:
  """The Settings saved with the run in `out` (saved_record); `given`, `config`: options
  given besides, which are refused."""
  record = saved_record(out)
  if record is None:
    raise UsageError(f'{out}: no run there ({out / "state" / "run.json"} is missing)')
  if given or config:
    names = ', '.join('--' + k for k in given) or '--config'
    raise UsageError(
      f'--resume takes the saved settings; give no other settings with it (got {names})'
    )
  before_dtype = dict(dtype='float32')  # runs saved before the setting computed in float32
  values = declared_defaults() | before_dtype | record['settings'] | dict(out=str(out))
  return checked(values, 'the saved run', record.get('size_reason') or 'saved with the run')


def _check_experiment(e: Experiment):
  try:
    settings_lib.check(e)
  except (ValueError, TypeError) as err:
    raise UsageError(str(err)) from None
  if e.dataset_name not in DATASETS:
    raise UsageError(
      f"dataset must be one of {', '.join(DATASETS)} (optionally NAME:CONFIG), got {e.dataset!r}"
    )
  if e.classes == 'native' and e.dataset_name not in NATIVE_OK:
    raise UsageError(
      f"--classes native applies to {', '.join(NATIVE_OK)} (each database has "
      f'its own emotions); {e.dataset_name} has the composite classes only'
    )
  if e.keep_emotions and e.classes != 'native':
    raise UsageError('--keep_emotions needs --classes native')
  if e.subjects is not None and not e.subjects:
    raise UsageError('--subjects is empty: name the subjects to test, or leave it out to test all')
  if e.keep_emotions is not None and not e.keep_emotions:
    raise UsageError(
      '--keep_emotions is empty: name the emotions to keep, or leave it out to keep all'
    )


def choose_size(e: Experiment, reason: str | None) -> tuple[int, str]:
  """(input side, why) for these settings; `reason`: where a set size came from."""
  multiple = getattr(model_class(e.model), 'side_multiple', 1)
  if e.size is not None:
    size, why = e.size, f"set by {reason or 'the settings'}"
  elif e.dataset_name in FLOW_IMAGES:
    native = native_size(e.dataset_name)
    size = -(-native // multiple) * multiple
    why = f"the flow images' native {native} px" + (
      f", rounded up to {e.model}'s multiple of {multiple}" if size != native else ''
    )
  elif e.dataset_name == 'synthetic':
    size, why = 32, 'the synthetic preset'
  else:
    size, why = 224, 'frame-based dataset: the side HFA-Net was designed for'
  if size % multiple:
    raise UsageError(
      f'--size must be a multiple of {multiple} for {e.model} (its total stride), got {size}'
    )
  return size, why


def changed_settings(values: dict, recipe: str) -> dict:
  """The settings in `values` that differ from those of `recipe` (its declared defaults and
  its own), among those that change a run's results, in declaration order."""
  try:
    defaults = base_config().to_dict() | load_recipe(recipe)
  except UsageError:
    return {}
  return run_folder.changed_from(values, defaults, field_names())


def default_folder(s: Settings) -> pathlib.Path:
  """The output folder `s` would get without --out (from the settings as given)."""
  values = s.values() | dict(out=None)
  return checked(values, s.recipe, 'the settings').out


def checked(values: dict, recipe: str, size_reason: str | None) -> Settings:
  """Settings from declared values; UsageError for values that cannot work."""
  try:
    experiment = Experiment(**{k: values[k] for k in settings_lib.names(Experiment)})
    training = LosoConfig(**{k: values[k] for k in settings_lib.names(LosoConfig)})
  except TypeError as e:
    raise UsageError(str(e)) from None
  _check_experiment(experiment)
  try:
    training.validate()
  except (ValueError, TypeError) as e:
    raise UsageError(str(e)) from None
  if recipe == 'the saved run':
    size, why = experiment.size, size_reason
  else:
    size, why = choose_size(experiment, size_reason)
  out = experiment.out
  if out is None:
    other = folder_recipe(recipe, default_recipe(experiment.dataset, experiment.model))
    changed = changed_settings(values, recipe)
    out = run_folder.default_out(experiment, size, training.seed, changed, other)
  return Settings(experiment, training, recipe, size, why, pathlib.Path(out))
