"""Mean and spread over seeds, from one LOSO run that trained them together.

    python -m experiments.loso --dataset megc2019_flow_images --ensemble 3 --out runs/r3
    python -m experiments.seeds runs/r3                       # each seed alone, mean +- std
                                                      # (the loso command prints it too)
    python -m experiments.seeds runs/candidate --baseline runs/r3   # paired differences

A run with `--ensemble K` trains K models per fold, each from its own seed (member r's key
is fold_key(seed, fold, r), hfa_jax.loso.keys; member 0 is the single model of that seed),
together in the fold program. Scored one member at a time, they are K independent LOSO runs:
this command pools each member's predictions as a LOSO of its own, prints UF1 / UAR pooled
and per database for each, their mean and standard deviation (ddof 1), the ensemble's (mean
probability) for comparison, and with --baseline RUN (same K, same data), the paired
difference member by member: a candidate wins only by more than that spread.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

import numpy as np

from experiments import usage, input_pipeline, options
from experiments.options import UsageError
from hfa_jax import files, metrics
from hfa_jax.loso.errors import PlanError, RunMismatchError
from hfa_jax.loso import store
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


def member_scores(result, data) -> tuple[list[dict], dict, int]:
  """([per member: {'all': (uf1, uar), database: (uf1, uar), ...}], the ensemble's, K) of a
  LosoResult and its dataset (datasets.load.TrainingData)."""
  k = result.config.ensemble
  members = [scores(result.pool(member=r), data) for r in range(k)]
  return members, scores(result.pooled, data), k


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


def table(members: list[dict], ensemble: dict, baseline: list[dict] | None) -> str:
  """Markdown: one row per member, mean +- std, the ensemble, paired differences."""
  groups = list(members[0])
  head = ['seed'] + [f'{g} UF1 / UAR' for g in groups]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  cell = lambda m, g: f'{m[g][0]:.4f} / {m[g][1]:.4f}'
  for r, m in enumerate(members):
    lines.append(f'| member {r} | ' + ' | '.join(cell(m, g) for g in groups) + ' |')
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


def main(argv=None) -> int:
  p = usage.Parser(prog='python -m experiments.seeds', description=__doc__.split('\n\n')[0])
  p.add_argument('run', type=pathlib.Path, help='a finished experiments.loso run with --ensemble K')
  p.add_argument('--baseline', type=pathlib.Path, help='a run of the baseline with the same K')
  p.add_argument('--json', type=pathlib.Path, help='also write the scores as JSON here')
  args = p.parse_args(sys.argv[1:] if argv is None else argv)
  try:
    result, data = run_result(args.run)
    members, ensemble, k = member_scores(result, data)
    baseline = None
    if args.baseline:
      base_result, base_data = run_result(args.baseline)
      baseline, _, k_base = member_scores(base_result, base_data)
      if k_base != k:
        raise UsageError(f'--baseline has {k_base} seeds, {args.run} has {k}: pair equal counts')
      tested = lambda r, d: (same_samples(d.arrays), r.pooled['predictions']['index'].tolist())
      if tested(base_result, base_data) != tested(result, data):
        raise UsageError(
          f'--baseline {args.baseline} tested other samples than {args.run} (another dataset, '
          'build or --subjects): a paired difference needs the same folds and samples'
        )
  except (UsageError, PlanError, RunMismatchError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(heading(result.config) + '\n\n' + table(members, ensemble, baseline))
  schemes = (key_scheme(args.run), key_scheme(args.baseline)) if baseline is not None else ()
  if k > 1 and len(set(schemes)) > 1:
    print(
      f'note: the two runs derive the keys of members >= 1 differently (random_keys '
      f'{schemes[0]} and {schemes[1]}, hfa_jax.loso.keys): only member 0 is paired with the '
      'same initial weights'
    )
  if args.json:
    record = dict(members=members, ensemble=ensemble, baseline=baseline)
    args.json.write_text(json.dumps(record | dict(protocol=protocols(result.config))))
  return 0


if __name__ == '__main__':
  sys.exit(main())
