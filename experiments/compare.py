"""How the networks compare: each trained with its own published recipe, K seeds together,
on the same folds and samples, scored one honest way; with `--protocol published`, beside
each, the figure its authors' public script would have printed.

    python -m experiments.compare                               # the dev part, every network
                                                                # (on a CPU all but HTNet)
    python -m experiments.compare --models hfanet,ststnet --ensemble 5
    python -m experiments.compare --protocol published          # + each script's own figure
    python -m experiments.compare --subjects sub01,s3           # a part of the LOSO (a check)

Each network is an `experiments.loso` run of its recipe (experiments/configs/NAME.py; HFA-Net's
by the data) with `--ensemble K` (its K seeds trained together) and every epoch evaluated, in
OUT/runs/NAME/; the same command again resumes the runs where they stopped. Other options
(e.g. --data_dir, --subjects, --epochs) are passed to every run. Writes OUT/leaderboard.md,
.csv, .json and .png (OUT/leaderboard-NET1-NET2.* for --models other than the default, so
that no table overwrites another's): per network UF1 and UAR mean +- std over the seeds
(each seed scored as a LOSO of its own), pooled and per database, its paired difference from
HFA-Net (seed r against seed r) with its 95 % interval over resamples of the tested subjects
(experiments.seeds), the ensemble of its seeds, wall and CPU time, machine, code
(each part's git commit) and command; one row for the ensemble of all the networks (the mean
of their probabilities per sample).

The honest protocol scores each fold's model after its last epoch. `--protocol published`
adds, per network whose authors' public script differs, the row that script would print:
where it keeps each subject's best test epoch the row is labelled 'NOT honest: epoch chosen
on the test subject' and never sorts above an honest one (a network whose script scores the
last epoch of its own recipe says so in its honest row). HFA-Net's authors' script has a
recipe of its own (experiments/configs/hfanet_published.py), trained as a run of its own and
shown twice: honestly (its last epoch, against HFA-Net's recipe seed by seed) and as the
script scores it (against that honest row: the inflation).

`--recipe NAME` trains every network with experiments/configs/NAME.py instead of its own (each
keeps its own input side and models per program), in OUT/runs/NETWORK-NAME (OUT/runs/NETWORK
where NAME is its own), and writes OUT/leaderboard-recipe-NAME.*: whether a lead comes with the
network or with the recipe (`--recipe flow_images`: HFA-Net's recipe for every network).
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import shlex
import sys

from experiments import declarations, leaderboard, loso, options, recipes, run_folder, seeds, usage
from experiments.compare_rows import (
  PUBLISHED,
  honest_epoch,
  honest_row,
  in_words,
  models_ensemble,
  published_rows,
  reference_scores,
  shows_published,
)
from experiments.options import UsageError
from hfa_jax import settings as settings_lib
from hfa_jax.environment import cpu_model
from hfa_jax.loso.config import LosoConfig
from hfa_jax.models import registry


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  p = usage.Parser(
    prog='python -m experiments.compare',
    description=__doc__.split('\n\n')[0],
    epilog=__doc__.split('\n\n', 1)[1],
    formatter_class=argparse.RawDescriptionHelpFormatter,
    allow_abbrev=False,  # '--e 5' is not --ensemble, nor '--resu' past the refusals below
  )
  p.add_argument('--dataset', default='megc2019_flow_images', help='(default %(default)s)')
  p.add_argument(
    '--models',
    help='comma-separated networks (default: every registered one, %s; on a CPU all but %s)'
    % (','.join(every_network()), ','.join(NOT_ON_A_CPU)),
  )
  p.add_argument('--ensemble', type=int, default=3, help='seeds per network (default 3)')
  p.add_argument('--protocol', choices=('honest', 'published'), default='honest')
  p.add_argument(
    '--recipe',
    help='train every network with experiments/configs/RECIPE.py instead of its own (its own '
    'input side kept), e.g. flow_images: HFA-Net\'s recipe (default: each its own)',
  )
  p.add_argument(
    '--out',
    type=pathlib.Path,
    help='default runs/compare-DATASET, named also by the settings given to every run '
    '(--seed 1: runs/compare-DATASET-seed1)',
  )
  p.add_argument('--no_progress', action='store_true', help='log lines instead of progress bars')
  args, rest = p.parse_known_args(argv)
  chosen = bool(args.models)
  args.models = [m for m in (args.models or ','.join(default_networks())).split(',') if m]
  unknown = [m for m in args.models if m not in PUBLISHED]
  if unknown:
    p.error(f"--models: {', '.join(unknown)} not in {', '.join(PUBLISHED)}")
  if args.ensemble < 1:
    p.error('--ensemble must be at least 1')
  if args.recipe and args.protocol == 'published':
    p.error(
      "--protocol published shows each authors' script with its own recipe: not with --recipe"
    )
  if args.recipe and args.recipe not in recipes.recipe_names():
    p.error(f"--recipe {args.recipe}: no such recipe ({', '.join(recipes.recipe_names())})")
  passed = loso_options()
  for option in rest:
    name = option.split('=', 1)[0]
    if name == '--config':
      p.error(
        "--config would replace every network's recipe under its own recipe's name: use "
        '--recipe NAME to train every network with another recipe'
      )
    if name in OWN:
      p.error(f'{name} is not an option of every network run: give {OWN[name]}')
    if name in ('--eval_every_epoch', '--config.eval_every_epoch'):
      p.error(
        f'{name}: compare evaluates every epoch of every run (the published protocol\'s rows '
        'and the curves need each epoch\'s test score): leave it out'
      )
    if name.startswith('--') and name not in passed:
      near = usage.nearest_option(name, passed | set(p._option_string_actions))
      p.error(
        f'{name}: no such option{f" (did you mean {near}?)" if near else ""} (abbreviations '
        "are not taken: give an option's full name; python -m experiments.loso --help lists "
        'those passed to every network run)'
      )
  if args.out is None:
    args.out = default_out(args.dataset, rest)
  if not chosen:
    default_networks(say=True)  # once the options are taken: an option error comes alone
  return args, rest


def default_out(dataset: str, rest: list[str]) -> pathlib.Path:
  """runs/compare-DATASET, named also by the settings given to every run that change what it
  learns or tests (`--seed 1`: runs/compare-DATASET-seed1; `--subjects`: ...-only-SUBJECTS), so
  that a comparison with other settings never meets another's runs in its folder."""
  _, namespace = options.parse(rest)
  given = {k: v for k, v in vars(namespace).items() if k not in options.COMMAND}
  unnamed = ('dataset', 'model', 'subjects', 'data_dir', 'out', *run_folder.EXECUTION)
  changed = {k: given[k] for k in declarations.field_names() if k in given and k not in unnamed}
  name = f"compare-{dataset.replace(':', '-')}" + run_folder.settings_part(changed)
  return pathlib.Path('runs') / (name + run_folder.subjects_part(given.get('subjects')))


# experiments.loso's options that would override compare's own in every run: the one to give.
OWN = {
  '--model': '--models',
  '--config.model': '--models',
  '--config.dataset': '--dataset',
  '--config.ensemble': '--ensemble',
  '--config.out': '--out',
  '--resume': '--out',
}


def loso_options() -> set[str]:
  """Every option string of experiments.loso, spelled out (what compare passes to its runs)."""
  return {o for action in options.make_parser()._actions for o in action.option_strings}


# Networks the default leaves out on a CPU, and why (--models NAME still runs them there).
NOT_ON_A_CPU = {
  'htnet': 'HTNet: 140 M parameters trained 800 epochs at batch 256, days on a CPU',
}


def every_network() -> list[str]:
  return [n for n in registry.names() if n in PUBLISHED]


def default_networks(say: bool = False) -> list[str]:
  """Every network; on a CPU (the devices JAX sees), all but NOT_ON_A_CPU (`say`: saying so)."""
  import jax

  if jax.default_backend() != 'cpu':
    return every_network()
  for name, why in NOT_ON_A_CPU.items() if say else ():
    print(f'left out on a CPU: {why}. --models {name} (or a list with it) runs it.')
  return [n for n in every_network() if n not in NOT_ON_A_CPU]


def board_stem(args) -> str:
  """The leaderboard's file name without suffix: `leaderboard` for the default networks,
  `-recipe-NAME` with --recipe, `-NET1-NET2...` for other --models, in the registry's order
  (so that a table of some networks never overwrites the table of all, or of others)."""
  stem = f'leaderboard-recipe-{args.recipe}' if args.recipe else 'leaderboard'
  if set(args.models) != set(default_networks()):
    stem += '-' + '-'.join(m for m in every_network() if m in args.models)  # in one order
  return stem


def model_argv(args, model: str, recipe: str | None, folder: str) -> list[str]:
  """The experiments.loso options of one network's run."""
  argv = ['--dataset', args.dataset, '--model', model, '--ensemble', str(args.ensemble)]
  argv += ['--config', recipe] if recipe else []
  return argv + ['--eval_every_epoch', 'true', '--out', str(args.out / 'runs' / folder)]


def own_recipe(args, model: str) -> bool:
  """Whether `model` trains with its own recipe in this comparison."""
  return not args.recipe or args.recipe == recipes.default_recipe(args.dataset, model)


def recipe_argv(args, rest: list[str], model: str) -> list[str]:
  """For another network's recipe: the input side and models per program of `model`'s own
  run (its architecture's side; how many models share a program changes no result)."""
  _, namespace = options.parse(model_argv(args, model, None, model) + rest)
  own = options.settings_from_args(namespace)
  at_once = own.training.folds_in_parallel
  return [
    '--size',
    str(own.size),
    '--folds_in_parallel',
    'none' if at_once is None else str(at_once),
  ]


def run_model(
  args, rest: list[str], model: str, recipe: str | None, folder: str, swapped: bool = False
) -> dict:
  """Trains (or resumes, or reads back) one network's run; its result, data and record.
  `swapped`: `recipe` is not the network's own (--recipe), its rows say so."""
  argv = model_argv(args, model, recipe, folder) + rest
  _, namespace = options.parse(argv)
  s = options.settings_from_args(namespace)
  print(f'\n== {model}{f" ({recipe})" if recipe else ""}: {s.out}', flush=True)
  record, result, data = loso.run_with_result(s, not args.no_progress)
  command = shlex.join(['python', '-m', 'experiments.loso', *argv])
  return dict(
    result=result,
    data=data,
    record=record,
    command=command,
    recipe=s.recipe,
    swapped=swapped,
    changed=changed_from_recipe(s),
  )


def changed_from_recipe(s: options.Settings) -> dict:
  """The settings of a network's run that differ from its recipe's and change what it learns
  (training settings and the input side given to every run, such as --epochs 2), less
  compare's own: its seeds and the evaluation of every epoch."""
  changed = options.changed_settings(s.values(), s.recipe)
  learned = set(settings_lib.names(LosoConfig)) - {'ensemble', 'eval_every_epoch'}
  given = s.size_reason == 'set by --size'  # the input side is not among changed_settings
  size = {'size': s.size} if given and s.size != recipes.load_recipe(s.recipe).get('size') else {}
  return size | {k: v for k, v in changed.items() if k in learned}


# Where HFA-Net's recipes come from: none is its authors' (the paper states none).
HFANET_RECIPES = {
  'flow_images': 'chosen by subject-grouped cross-validation on the CASME II + SMIC part of '
  'the MEGC2019 flow images, so its row is not blind there',
  'frames': 'a starting recipe, not tuned on real frames',
  'synthetic': "the synthetic database's quick preset",
}


def own_recipes(runs: dict) -> str:
  """What the notes say of recipes where every network trains with its own: HFA-Net's is
  this project's (where it was chosen), the others' their authors' published ones."""
  if 'hfanet' not in runs:
    return (
      "Every network was trained with its authors' published recipe (not tuned here) on the "
      'same folds and samples.'
    )
  recipe = runs['hfanet']['recipe']
  origin = HFANET_RECIPES.get(recipe, 'a recipe file of your own')
  hfanet = f"HFA-Net with this project's recipe ({recipes.recipe_path(recipe)}: {origin})"
  if len(runs) == 1:
    return f'{hfanet}.'
  return (
    f'Every network was trained with its own recipe on the same folds and samples: {hfanet}, '
    "every other network with its authors' published one (not tuned here)."
  )


def notes(args, runs: dict) -> list[str]:
  data = next(iter(runs.values()))['data']
  subjects = len(set(data.subjects.tolist()))
  tested = next(iter(runs.values()))['result'].pooled['predictions']
  covered = len(set(tested['subject'].tolist()))
  dataset = (
    f'Dataset {args.dataset}: {len(data.labels)} samples of {subjects} subjects, leave one '
    'subject out'
    if covered == subjects
    else f'Dataset {args.dataset}: a part of the LOSO (--subjects), {len(tested["index"])} '
    f'samples of {covered} of its {subjects} subjects tested; the figures pool those only and '
    "do not compare with a whole LOSO's"
  )
  epochs = {honest_epoch(run) for run in runs.values()}
  honest = (
    'Honest rows score the model after its last epoch'
    if epochs == {'last'}
    else 'Honest rows score the model after its last epoch or, where its row says validation, '
    "the epoch of its best UF1 on validation subjects held out of the fold's training subjects"
  )
  trained = (
    own_recipes(runs)
    if not args.recipe
    else f'Every network was trained with the recipe experiments/configs/{args.recipe}.py '
    '(its own input side kept) on the same folds and samples: rows named NETWORK (RECIPE) '
    "are not their authors' recipes."
  )
  changed = {k: v for run in runs.values() for k, v in run.get('changed', {}).items()}
  changed = {k: changed[k] for k in declarations.field_names() if k in changed}
  if changed:
    trained += (
      f' The recipes were changed by the options given ({in_words(changed)}): '
      "no row is its authors' recipe."
    )
  over = (
    ' A paired difference from HFA-Net also gives its 95 % interval over subjects: the tested '
    f'subjects resampled with replacement {seeds.REPLICATES:,} times (each database\'s among '
    'themselves), every seed of both '
    "networks under the same draw, the 2.5 and 97.5 percentiles of the seeds' mean UF1 "
    "difference (the test subjects' uncertainty, which the seeds' spread leaves out; none "
    'where no database has two tested subjects).'
    if 'hfanet' in runs and len(runs) > 1
    else ''
  )
  return [
    f'{dataset}; {args.ensemble} seeds per network trained together, each seed scored as a '
    f'LOSO of its own (UF1 and UAR pooled over all folds), mean +- std (ddof 1).{over}',
    f'{trained} {honest}; rows marked NOT '
    "honest score each subject's best test epoch, as their authors' scripts do, and are "
    'listed after every honest row.',
    f'Made by `python -m experiments.compare {shlex.join(sys.argv[1:])}` on '
    f'{datetime.date.today().isoformat()}, {cpu_model()}.',
  ]


def run_networks(args, rest: list[str]) -> tuple[dict, dict]:
  """Each network's run (run_model), and with --protocol published its authors' recipe's."""
  runs, published = {}, {}
  for model in args.models:
    if own_recipe(args, model):
      runs[model] = run_model(args, rest, model, None, model)
    elif args.recipe == PUBLISHED[model].recipe:  # its authors' recipe: that run
      runs[model] = run_model(args, rest, model, args.recipe, f'{model}-published', True)
    else:
      more = recipe_argv(args, rest, model) + rest
      folder = f'{model}-{args.recipe}'
      runs[model] = run_model(args, more, model, args.recipe, folder, True)
    recipe = PUBLISHED[model].recipe
    if args.protocol == 'published' and recipe:
      published[model] = run_model(args, rest, model, recipe, f'{model}-published')
  return runs, published


def main(argv=None) -> int:
  args, rest = parse(sys.argv[1:] if argv is None else list(argv))
  try:
    with loso.sigterm_stops():  # as experiments.loso: the epoch in progress is saved first
      runs, published = run_networks(args, rest)
  except KeyboardInterrupt as e:
    return loso.stopped(isinstance(e, loso.Terminated))
  except (UsageError, *(kind for kind, _ in loso.USER_ERRORS)) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  reference = reference_scores(runs)
  rows = [honest_row(m, run, reference) for m, run in runs.items()]
  if len(runs) > 1:
    rows.append(models_ensemble(runs))
  if args.protocol == 'published':
    honest = {r.name: r for r in rows}
    for m, run in runs.items():
      if shows_published(m):
        rows += published_rows(m, published.get(m, run), honest[m], reference)
  title = f'How the networks compare on {args.dataset}'
  title += f', each trained with the recipe {args.recipe}' if args.recipe else ''
  meta = dict(
    dataset=args.dataset, ensemble=args.ensemble, protocol=args.protocol, recipe=args.recipe
  )
  stem = board_stem(args)
  text = leaderboard.write(args.out, rows, title, notes(args, runs), meta, stem)
  print('\n' + text)
  print(f'leaderboard in {args.out}/{stem}.md (.csv, .json, .png)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
