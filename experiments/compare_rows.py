"""The rows of `experiments.compare`'s leaderboard from its networks' runs: each network's
honest row (its run at its honest epoch, paired with HFA-Net's seed by seed), the rows its
authors' public script would print (`PUBLISHED`), and the ensemble of the networks.

A run here is experiments.compare.run_model's dict: 'result' (LosoResult), 'data', 'record'
(summary.json), 'command', 'recipe', 'swapped' (trained with another network's recipe),
'changed' (the settings the options given changed from its recipe: compare.changed_from_recipe).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import seeds
from experiments.leaderboard import NOT_HONEST, Row


@dataclasses.dataclass(frozen=True)
class Published:
  """What a network's authors' public script does: its recipe (None: the network's own
  recipe) and the epoch it scores ('last', or 'best_test': each subject's best)."""

  select_epoch: str
  script: str  # the public script, in words
  recipe: str | None = None


PUBLISHED = {
  'hfanet': Published(
    'best_test',
    "jiujiugang/HFA-Net train1.py (HTNet's template): each subject's best test accuracy kept",
    'hfanet_published',
  ),
  'ststnet': Published('last', 'christy1206/STSTNet main.py: the model after epoch 800 scored'),
  'sssnet': Published('last', 'tvaranka/meb Validator: the model after its last epoch scored'),
  'offapexnet': Published(
    'best_test',
    "tvaranka/meb 'Table 3. Early stopping' notebook: each subject's best test epoch (its "
    'published 0.839; the last epoch gave 0.703)',
  ),
  'rcn_a': Published(
    'last', 'xiazhaoqiang/ParameterFreeRCNs ModelTrain_Final.py: tested once, after training'
  ),
  'resnet18': Published(
    'last', 'tvaranka/meb Validator (ImageNet weights there; from scratch here)'
  ),
  'htnet': Published(
    'best_test', "wangzhifengharrison/HTNet main_HTNet.py: each subject's best test epoch kept"
  ),
}


def scored(run: dict, select_epoch: str | None = None) -> seeds.Scored:
  """A run's members and their mean probability at `select_epoch` (seeds.scored)."""
  return seeds.scored(run['result'], run['data'], select_epoch)


def honest_epoch(run: dict) -> str:
  """The epoch a run's honest rows score: the one its settings select ('last' or
  'validation'), or its last where they select each subject's best test epoch."""
  select = run['result'].config.select_epoch
  return 'last' if select == 'best_test' else select


@dataclasses.dataclass(frozen=True)
class Reference:
  """HFA-Net's run at its honest row's epoch (honest_epoch: never each subject's best test
  epoch), with which the other rows are paired."""

  scores: list[dict]  # per member: seeds.scores
  preds: np.ndarray  # (members, samples) each member's predicted classes, by sample index
  predictions: dict  # its pooled predictions ('label', 'subject', 'index', ...)
  num_classes: int
  databases: np.ndarray  # each tested sample's database, by sample index


def reference_scores(runs: dict) -> Reference | None:
  """HFA-Net's run as the Reference of the other rows; None without HFA-Net."""
  if 'hfanet' not in runs:
    return None
  run = runs['hfanet']
  got = scored(run, honest_epoch(run))
  databases = np.asarray(run['data'].databases)[got.predictions['index']]
  return Reference(got.members, got.preds, got.predictions, run['data'].num_classes, databases)


def paired(members: list[dict], reference: list[dict]) -> list[dict]:
  """Member r minus reference member r, per group (ValueError for other counts)."""
  if len(members) != len(reference):
    raise ValueError(f'{len(members)} seeds against {len(reference)}: pair equal counts')
  return [{g: tuple(np.subtract(m[g], r[g])) for g in m} for m, r in zip(members, reference)]


def over_subjects(run: seeds.Scored, reference: Reference) -> tuple[float, float] | None:
  """The 95 % interval of a run's paired UF1 difference from the reference over resamples of
  the tested subjects, each database's among themselves (seeds.subjects_interval); None where
  no database has two tested subjects (every draw the same)."""
  pred = reference.predictions
  if not np.array_equal(run.predictions['index'], pred['index']):
    raise ValueError('the run and HFA-Net were tested on different samples: no paired difference')
  interval = seeds.subjects_interval(
    pred['label'],
    pred['subject'],
    run.preds,
    reference.preds,
    reference.num_classes,
    reference.databases,
  )['interval']
  return None if interval is None else tuple(interval)


def machine(record: dict) -> str:
  devices = record.get('devices') or {}
  return record.get('cpu') if devices.get('platform') == 'cpu' else devices.get('kind', '')


def times(record: dict) -> dict:
  """A run's wall and CPU time and each part's code, for its Row (runs recorded before CPU
  time and code were kept: None, [])."""
  return dict(
    wall_time_s=record.get('wall_time_seconds'),
    cpu_time_s=record.get('cpu_time_seconds'),
    code=record.get('code_parts') or [],
  )


def shows_published(model: str) -> bool:
  """Whether the authors' script differs from the honest protocol (its own recipe, or each
  subject's best test epoch): then `--protocol published` adds its row."""
  pub = PUBLISHED[model]
  return bool(pub.recipe) or pub.select_epoch != 'last'


def honest_row(model: str, run: dict, reference: list[dict] | None) -> Row:
  """A run scored at the epoch its settings select, or at its last where they select each
  subject's best test epoch (a recipe that does so, given to every network by --recipe)."""
  record = run['record']
  select = honest_epoch(run)
  got = scored(run, select)
  members, ensemble = got.members, got.ensemble
  changed = run.get('changed')
  script = (
    not (shows_published(model) or run['swapped'] or changed)
    and select == PUBLISHED[model].select_epoch
  )
  same = ", as its authors' script" if script else ''
  return Row(
    name=f"{model} ({run['recipe']})" if run['swapped'] else model,
    protocol=f'honest: {select} epoch{same}',
    honest=True,
    members=members,
    ensemble=ensemble,
    paired=paired(members, reference.scores) if reference and model != 'hfanet' else None,
    over_subjects=over_subjects(got, reference) if reference and model != 'hfanet' else None,
    paired_with=f"HFA-Net{' with the same recipe' if run['swapped'] else ''}, seed by seed",
    command=run['command'],
    **times(record),
    machine=machine(record),
    source=f"experiments/configs/{run['recipe']}.py"
    + (f', changed: {in_words(changed)}' if changed else '')
    + (f'; its scoring as {PUBLISHED[model].script}' if script else ''),
  )


def in_words(changed: dict) -> str:
  """{'epochs': 2, 'batch_size': 4} -> 'epochs 2, batch_size 4'."""
  return ', '.join(f'{k} {v}' for k, v in changed.items())


def published_rows(model: str, run: dict, honest: Row, reference: Reference | None) -> list[Row]:
  """The rows of the authors' script. With a recipe of its own (`run` is its run): that
  recipe's honest row (last epoch), paired with HFA-Net's recipe seed by seed; then, where the
  script keeps each subject's best test epoch, the row it would print, paired with the same
  recipe's honest row: the inflation."""
  pub = PUBLISHED[model]
  base, rows = honest, []
  if pub.recipe:
    got = scored(run, 'last')
    members, ensemble = got.members, got.ensemble
    base = Row(
      name=f'{model} ({pub.recipe})',
      protocol="honest: last epoch, its authors' recipe"
      + (' (changed)' if run.get('changed') else ''),
      honest=True,
      members=members,
      ensemble=ensemble,
      paired=paired(members, reference.scores) if reference else None,
      over_subjects=over_subjects(got, reference) if reference else None,
      paired_with="HFA-Net's recipe, seed by seed",
      command=run['command'],
      **times(run['record']),
      machine=machine(run['record']),
      source=f'experiments/configs/{pub.recipe}.py'
      + (f", changed: {in_words(run['changed'])}" if run.get('changed') else '')
      + f'; {pub.script}',
    )
    rows.append(base)
  if pub.select_epoch == 'best_test':
    best = scored(run, 'best_test')
    rows.append(
      dataclasses.replace(
        base,
        protocol=NOT_HONEST,
        honest=False,
        members=best.members,
        ensemble=best.ensemble,
        paired=paired(best.members, base.members),
        over_subjects=None,
        paired_with='its honest row, seed by seed: the inflation',
        wall_time_s=None,
        cpu_time_s=None,
        source=pub.script,
      )
    )
  return rows


def ensemble_predictions(runs: dict) -> dict:
  """The networks' ensemble's pooled predictions: per sample ('index' order) the mean of each
  network's seed-mean probability ('probs'), each network at the epoch of its honest row
  (never a recipe's best test epoch), and their argmax ('pred')."""
  pooled = [
    run['result'].pool(select_epoch=honest_epoch(run))['predictions'] for run in runs.values()
  ]
  if any(not np.array_equal(p['index'], pooled[0]['index']) for p in pooled):
    raise ValueError('the networks were tested on different samples: no ensemble')
  probs = np.mean([p['probs'] for p in pooled], axis=0)
  return dict(pooled[0], probs=probs, pred=probs.argmax(-1))


def models_ensemble(runs: dict) -> Row:
  """The networks' ensemble (ensemble_predictions) as a row, scored as a LOSO."""
  data = next(iter(runs.values()))['data']
  score = seeds.scores(dict(predictions=ensemble_predictions(runs)), data)
  epochs = sorted({honest_epoch(run) for run in runs.values()})
  return Row(
    name=f'ensemble of the {len(runs)} networks (mean probability)',
    protocol=f"honest: {' or '.join(epochs)} epoch of each",
    honest=True,
    members=[score],
    ensemble=score,
    seeds=False,
  )
