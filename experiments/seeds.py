"""Mean and spread over seeds, from LOSO runs that trained them together.

    python -m experiments.loso --dataset megc2019_flow_images --ensemble 3 --out runs/r3
    python -m experiments.seeds runs/r3                       # each seed alone, mean +- std
                                                      # (the loso command prints it too)
    python -m experiments.seeds runs/candidate --baseline runs/r3   # paired differences
    python -m experiments.loso ... --ensemble 3 --seed 1 --out runs/r3-seed1   # 3 seeds more
    python -m experiments.seeds runs/r3 runs/r3-seed1         # the 6 seeds together

A run with `--ensemble K` trains K models per fold, each from its own seed (member r's key
is fold_key(seed, fold, r), hfa_jax.loso.keys; member 0 is the single model of that seed),
together in the fold program. Scored one member at a time, they are K independent LOSO runs:
this command pools each member's predictions as a LOSO of its own, prints UF1 / UAR pooled
and per database for each, their mean and standard deviation (ddof 1), the ensemble's (mean
probability) for comparison, and with --baseline RUN (as many seeds, same data), the paired
difference member by member: a candidate wins only by more than that spread. With a baseline
it also resamples the tested subjects (10,000 times, with replacement, each database's among
themselves; every member under the same draw) and gives the 95 % interval of the seeds' mean
UF1 difference: the seeds' spread is the training's randomness, this the test subjects'
(metrics.subject_bootstrap_uf1).

Several runs of one recipe with other `--seed` values are several seeds' more: their members
are taken together, in the order given (runs of other settings, or that trained the same
models, are refused; runs of other code are taken together with a note naming each one's
commit); --baseline takes as many runs, paired member by member in that order.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

from experiments import declarations, input_pipeline, options, run_folder, usage
from experiments.options import UsageError
from hfa_jax import files, metrics
from hfa_jax.loso import keys, store
from hfa_jax.loso.errors import PlanError, RunMismatchError
from hfa_jax.loso.rescore import finished_result


def run_result(run: pathlib.Path):
  """(LosoResult, dataset) of the finished run in `run`: its settings and fold records read
  from the run folder, its data from the dataset it names."""
  saved = options.saved_settings(run)
  data = input_pipeline.load_dataset(saved, progress=False)
  config, subjects = saved.training, saved.experiment.subjects
  return finished_result(run / 'state', data.arrays, config, subjects), data


def key_scheme(run: pathlib.Path) -> int:
  """How the run derived its members' random keys (hfa_jax.loso.keys; 1 if unrecorded)."""
  return store.key_scheme(store.read_run(run / 'state') or {})


def run_code(run: pathlib.Path) -> tuple:
  """The code each part of a finished run ran ('git COMMIT', from its summary.json; () where
  it was not recorded)."""
  summary = run / 'summary.json'
  return tuple(json.loads(summary.read_text()).get('code_parts') or ()) if summary.exists() else ()


@dataclasses.dataclass(frozen=True)
class Scored:
  """A run at one epoch, its members pooled once: their scores and their predictions."""

  members: list[dict]  # per member: scores
  ensemble: dict  # scores of the members' mean probability
  preds: np.ndarray  # (members, samples) each member's predicted classes, by sample index
  predictions: dict  # the members' mean probability's pooled predictions ('label', 'index', ...)


def scored(result, data, select_epoch: str | None = None) -> Scored:
  """A LosoResult's members and their mean probability at `select_epoch` (None: the run's
  own, its pooled result), each pooled once, scored on `data` (datasets.load.TrainingData)."""
  k = result.config.ensemble
  pools = [result.pool(member=r, select_epoch=select_epoch) for r in range(k)]
  mean = result.pooled if select_epoch is None else result.pool(select_epoch=select_epoch)
  return Scored(
    members=[scores(p, data) for p in pools],
    ensemble=scores(mean, data),
    preds=np.stack([p['predictions']['pred'] for p in pools]),
    predictions=mean['predictions'],
  )


def member_scores(result, data) -> tuple[list[dict], dict, int]:
  """([per member: {'all': (uf1, uar), database: (uf1, uar), ...}], the ensemble's, K) of a
  LosoResult and its dataset (datasets.load.TrainingData)."""
  got = scored(result, data)
  return got.members, got.ensemble, len(got.members)


def scores(result: dict, data) -> dict:
  """{'all': (UF1, UAR), database: (UF1, UAR), ...} of a pooled result (LosoResult.pool()) of
  `data` (datasets.load.TrainingData), as summary.json has them."""
  pred = result['predictions']
  y, p, classes = pred['label'], pred['pred'], data.num_classes
  pooled = metrics.summarize(y, p, classes)
  out = {'all': (pooled['uf1'], pooled['uar'])}
  dbs = np.asarray(data.databases)[pred['index']]
  for db, m in metrics.by_group(y, p, dbs, classes).items():
    out[db] = (m['uf1'], m['uar'])
  return out


def mean_std(values) -> str:
  v = np.asarray(values, np.float64)
  return f'{v.mean():.4f}' + (f' +- {v.std(ddof=1):.4f}' if len(v) > 1 else '')


def table(
  members: list[dict], ensemble: dict, baseline: list[dict] | None, labels: list[str] | None = None
) -> str:
  """Markdown: one row per member (`labels`, default 'member r'), mean +- std, the ensemble,
  paired differences."""
  groups = list(members[0])
  labels = labels or [f'member {r}' for r in range(len(members))]
  head = ['seed'] + [f'{g} UF1 / UAR' for g in groups]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  cell = lambda m, g: f'{m[g][0]:.4f} / {m[g][1]:.4f}'
  for label, m in zip(labels, members):
    lines.append(f'| {label} | ' + ' | '.join(cell(m, g) for g in groups) + ' |')
  both = lambda ms, g: f'{mean_std([m[g][0] for m in ms])} / {mean_std([m[g][1] for m in ms])}'
  lines.append('| mean +- std | ' + ' | '.join(both(members, g) for g in groups) + ' |')
  lines.append('| ensemble | ' + ' | '.join(cell(ensemble, g) for g in groups) + ' |')
  if baseline is not None:
    diff = [{g: tuple(np.subtract(m[g], b[g])) for g in groups} for m, b in zip(members, baseline)]
    lines.append('| paired difference | ' + ' | '.join(both(diff, g) for g in groups) + ' |')
  return '\n'.join(lines)


def protocols(config) -> dict:
  """{'members': the protocol of each member scored alone, 'ensemble': the ensemble's} of a
  run's LosoConfig, in words (a best_test run's say so)."""
  alone = dataclasses.replace(config, ensemble=1).protocol()
  return dict(members=alone, ensemble=config.protocol())


def heading(config) -> str:
  """The lines above a per-seed table: what each row's figures are."""
  p = protocols(config)
  return f"each seed alone: {p['members']}\nthe ensemble: {p['ensemble']}"


def write_seeds(run: pathlib.Path, result, data) -> str:
  """The per-seed table of a finished --ensemble K run (its LosoResult and dataset), under
  its protocol, also written as RUN/seeds.md and RUN/seeds.json; experiments.loso prints it
  at the end of such a run."""
  members, ensemble, _ = member_scores(result, data)
  text = heading(result.config) + '\n\n' + table(members, ensemble, None)
  files.write_text(run / 'seeds.md', text + '\n')
  record = dict(members=members, ensemble=ensemble, protocol=protocols(result.config))
  files.write_json(run / 'seeds.json', record)
  return text


def same_samples(data) -> dict:
  """What two runs must share to be paired: the samples, their labels and subjects (their folds),
  not the images' pixels or side (another network's input side, or normalisation, pairs)."""
  return {k: v for k, v in data.fingerprint().items() if k not in ('images', 'shape')}


@dataclasses.dataclass
class Seeds:
  """The members of one or more runs of one recipe, taken together (`runs_seeds`)."""

  members: list[dict]  # per member: seeds.scores
  labels: list[str]  # 'member r', or with several runs 'seed S member r'
  ensemble: dict  # the scores of the mean probability of every member
  result: object  # the first run's LosoResult (its protocol, its tested samples)
  data: object  # its dataset (datasets.load.TrainingData)
  schemes: list  # each member's random-key scheme (its run's; None for a member 0: any)
  preds: np.ndarray  # (members, tested samples) each member's predicted classes, by index
  code: dict  # each run's code (run_code), by run

  def code_note(self, what: str) -> str | None:
    """A line naming each run's code where the runs taken together ran other code."""
    if len(set(self.code.values())) < 2:
      return None
    said = '; '.join(f"{run}: {', '.join(c) or 'not recorded'}" for run, c in self.code.items())
    return (
      f"note: {what} ran other code ({said}); their seeds are taken together as one recipe's: "
      'check that nothing between those commits changed what the models learn'
    )


def tested(result, data) -> tuple:
  """What a run tested, as paired runs must share it (same_samples and the tested indices)."""
  return same_samples(data.arrays), result.pooled['predictions']['index'].tolist()


def other_settings(run: pathlib.Path, first: pathlib.Path) -> dict:
  """The settings of `run` that differ from those of `first` and change what its models
  learn: not the seed, the number of models per fold or the evaluation of every epoch."""
  a, b = (options.saved_settings(r).values() for r in (run, first))
  names = declarations.field_names()
  changed = run_folder.changed_from(a, b, names)
  changed |= {k: a[k] for k in ('dataset', 'classes', 'size', 'model', 'subjects') if a[k] != b[k]}
  return {k: v for k, v in changed.items() if k not in ('ensemble', 'eval_every_epoch')}


def runs_seeds(runs: list[pathlib.Path]) -> Seeds:
  """The members of `runs` (finished runs of one recipe, other seeds) taken together, in
  order; the ensemble is the mean probability over all of them. Refuses runs that tested other
  samples, ran other settings, or trained the same models (the same seed and key scheme)."""
  members, labels, probs, weights, schemes, seen, preds = [], [], [], [], [], {}, []
  first = None
  for run in runs:
    result, data = run_result(run)
    if first is None:
      first = result, data
    elif tested(result, data) != tested(*first):
      raise UsageError(
        f'{run} tested other samples than {runs[0]} (another dataset, build or --subjects): '
        'seeds are taken together only over the same folds and samples'
      )
    changed = other_settings(run, runs[0]) if run != runs[0] else {}
    if changed:
      said = ', '.join(f'{k} {v}' for k, v in changed.items())
      raise UsageError(
        f'{run} ran other settings than {runs[0]} ({said}): seeds are taken together only '
        'for one recipe (compare two recipes with --baseline)'
      )
    config, scheme = result.config, key_scheme(run)
    got = scored(result, data)
    k = len(got.members)
    for r in range(k):
      key = tuple(keys.fold_key(config.seed, 0, r, scheme).tolist())
      if key in seen:
        raise UsageError(
          f'{run} member {r} is the model of {seen[key]} (seed {config.seed}, the same key): '
          'give runs of other --seed values'
        )
      seen[key] = f'{run} member {r}'
    members += got.members
    preds += list(got.preds)
    labels += [f'seed {config.seed} member {r}' for r in range(k)]
    probs.append(result.pooled['predictions']['probs'])
    weights.append(k)
    schemes += [None] + [scheme] * (k - 1)  # member 0's key is the same in every scheme
  result, data = first
  if len(runs) == 1:
    labels = [f'member {r}' for r in range(len(members))]
    ensemble = scores(result.pooled, data)
  else:
    mean = np.average(np.stack(probs), axis=0, weights=weights)
    predictions = dict(result.pooled['predictions'], probs=mean, pred=mean.argmax(-1))
    ensemble = scores(dict(predictions=predictions), data)
  code = {str(run): run_code(run) for run in runs}
  return Seeds(members, labels, ensemble, result, data, schemes, np.stack(preds), code)


REPLICATES = 10000


def over_subjects(ours: Seeds, base: Seeds, replicates: int = REPLICATES) -> dict:
  """The paired UF1 difference of `ours` from `base` over resamples of the tested subjects
  (subjects_interval), each database's subjects drawn among themselves."""
  pred = ours.result.pooled['predictions']
  databases = np.asarray(ours.data.databases)[pred['index']]
  return subjects_interval(
    pred['label'],
    pred['subject'],
    ours.preds,
    base.preds,
    ours.data.num_classes,
    databases,
    replicates,
  )


def subjects_interval(
  labels, subjects, preds, base_preds, classes: int, databases=None, replicates=REPLICATES
) -> dict:
  """The paired UF1 difference (the mean over the seeds of `preds` (K, n) minus that of
  `base_preds` (K', n), the same samples) over resamples of the subjects
  (metrics.subject_bootstrap_uf1, every member under the same draw; with `databases`, per
  sample, each database's subjects drawn among themselves): {'interval': its 2.5 and 97.5
  percentiles, 'above': the share of draws where `preds` is above, 'subjects', 'replicates'}.
  The seeds' spread is the training's randomness; this is the test subjects' (another draw of
  as many subjects from each database, the trained models held as they are). Where no
  database has two tested subjects every draw is the same: 'interval' and 'above' are None."""
  names, subject = np.unique(np.asarray(subjects), return_inverse=True)
  tested = len(names)
  if all(len(s) < 2 for s in metrics.stratum_subjects(subject, tested, databases)):
    return dict(replicates=0, subjects=tested, interval=None, above=None)
  uf1 = metrics.subject_bootstrap_uf1(
    labels, np.concatenate([preds, base_preds]), subjects, classes, replicates, strata=databases
  )
  k = len(preds)
  diff = uf1[:, :k].mean(1) - uf1[:, k:].mean(1)
  low, high = np.percentile(diff, [2.5, 97.5])
  return dict(
    replicates=replicates,
    subjects=tested,
    interval=[float(low), float(high)],
    above=float((diff > 0).mean()),
  )


def main(argv=None) -> int:
  p = usage.Parser(
    prog='python -m experiments.seeds',
    description=__doc__.split('\n\n')[0],
    epilog=__doc__.split('\n\n', 1)[1] + '\nGive the runs before --baseline, which takes the rest.',
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument(
    'runs',
    nargs='*',
    type=pathlib.Path,
    metavar='run',
    help='finished experiments.loso runs with --ensemble K (several: one recipe, other --seed)',
  )
  p.add_argument(
    '--baseline',
    nargs='+',
    type=pathlib.Path,
    help="runs of the baseline with as many seeds, paired with the runs' member by member",
  )
  p.add_argument('--json', type=pathlib.Path, help='also write the scores as JSON here')
  args = p.parse_args(sys.argv[1:] if argv is None else argv)
  if not args.runs:
    order = ' (--baseline takes every path after it)' if args.baseline else ''
    p.error(f'give the runs to score first: RUN [RUN ...] --baseline BASE [BASE ...]{order}')
  try:
    ours = runs_seeds(args.runs)
    k = len(ours.members)
    base = None
    if args.baseline:
      base = runs_seeds(args.baseline)
      if len(base.members) != k:
        raise UsageError(
          f'--baseline has {len(base.members)} seeds, {" ".join(map(str, args.runs))} '
          f'{k}: pair equal counts'
        )
      if tested(base.result, base.data) != tested(ours.result, ours.data):
        raise UsageError(
          f'--baseline {args.baseline[0]} tested other samples than {args.runs[0]} (another '
          'dataset, build or --subjects): a paired difference needs the same folds and samples'
        )
  except (UsageError, PlanError, RunMismatchError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  baseline = base.members if base else None
  config = dataclasses.replace(ours.result.config, ensemble=k)  # the ensemble: every member
  print(heading(config) + '\n\n' + table(ours.members, ours.ensemble, baseline, ours.labels))
  for taken, what in ((ours, 'the runs'), (base, 'the --baseline runs')):
    note = taken.code_note(what) if taken else None
    if note:
      print(note)
  paired = zip(ours.schemes, base.schemes) if base else ()
  differ = sorted({(a, b) for a, b in paired if None not in (a, b) and a != b})
  if differ:
    print(
      f'note: the paired runs derive the keys of members >= 1 differently (random_keys '
      f'{differ[0][0]} and {differ[0][1]}, hfa_jax.loso.keys): only members 0 are paired with '
      'the same initial weights'
    )
  bootstrap = over_subjects(ours, base) if base else None
  if bootstrap and bootstrap['interval'] is None:
    print(
      'over subjects: no interval: no database has two tested subjects, so every resample '
      'draws the same ones'
    )
  elif bootstrap:
    low, high = bootstrap['interval']
    print(
      f"over subjects: the {bootstrap['subjects']} tested subjects resampled with replacement "
      'within their databases '
      f"{bootstrap['replicates']:,} times, the paired UF1 difference of the seeds' mean lies in "
      f"[{low:+.4f}, {high:+.4f}] (95 %), above 0 in {100 * bootstrap['above']:.1f} % of the draws"
    )
  if args.json:
    record = dict(members=ours.members, labels=ours.labels, ensemble=ours.ensemble)
    record |= dict(baseline=baseline, protocol=protocols(config), over_subjects=bootstrap)
    args.json.write_text(json.dumps(record))
  return 0


if __name__ == '__main__':
  sys.exit(main())
