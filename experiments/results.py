"""A Markdown table of finished LOSO runs, side by side (for papers and the README).

    python -m experiments.results runs/loso-megc2019_flow_images-* [--out table.md]

One row per run folder (its summary.json): the model, dataset, subjects tested ('40/40', or
'2/68 (partial)' for a --subjects part of a LOSO), UF1 / UAR pooled and per database, the
protocol (an ensemble's and a best_test run's say so), what tells runs apart (the recipe, the
seed, epochs, learning rate, input side, whether it was resumed), wall time, the CPU or device
it ran on, and the run folder. A folder that is not a finished run is named with what it is
(a final model's folder; a run not finished yet, with how far it has got: its finished fold
models, its wall time so far and when its last epoch ended) and left out. A comparison's folder
(`hfa_jax compare`, OUT/runs/NETWORK) stands for its networks' runs, its leaderboards named.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from experiments.run_log import duration
from hfa_jax import report
from hfa_jax.loso import store


def _protocol(summary: dict) -> str:
  """'LOSO, last epoch', '5-fold by subject, epoch chosen on validation subjects', with ', an
  ensemble of 3 (mean probabilities)' for an --ensemble run's headline ..."""
  s = summary['settings']
  chosen = summary['select_epoch']
  short = (
    'last epoch'
    if chosen == 'last'
    else 'epoch chosen on validation subjects' + (', retrained' if s.get('retrain') else '')
    if chosen == 'validation'
    else 'BEST EPOCH BY TEST (not honest)'
  )
  folds = f"{s['group_folds']}-fold by subject" if s.get('group_folds') else 'LOSO'
  ensemble = s.get('ensemble') or 1
  many = f', an ensemble of {ensemble} (mean probabilities)' if ensemble > 1 else ''
  flip = ', test flip' if s.get('test_flip') else ''
  return f'{folds}, {short}{many}{flip}'


def _dataset(summary: dict) -> str:
  """The dataset and its classes: 'casme2, native classes (5)', 'casme2, classes happiness,
  disgust, surprise' (--keep_emotions), 'megc2019_flow_images' (the composite's 3; '(309 of
  the composite's 442 samples)' for a part of it)."""
  s = summary['settings']
  name = summary.get('dataset') or s.get('dataset') or '?'
  classes = summary.get('classes') or []
  if s.get('keep_emotions'):
    return f"{name}, classes {', '.join(classes)}"
  if s.get('classes') == 'native':
    return f'{name}, native classes ({len(classes)})' if classes else f'{name}, native classes'
  of = summary.get('composite_part_of')
  return f"{name} ({summary['n_samples']} of the composite's {of} samples)" if of else name


def row(summary: dict, run: str = '') -> dict:
  """One run's cells, from its summary.json (`run`: its folder)."""
  s = summary['settings']
  per_db = summary.get('per_database') or {}
  device = summary.get('devices') or {}
  where = summary.get('cpu') if device.get('platform') == 'cpu' else device.get('kind')
  return dict(
    run=run,
    model=s['model'],
    dataset=_dataset(summary),
    subjects=report.coverage(summary),
    partial='(partial)' in report.coverage(summary),
    n=summary['n_samples'],
    folds=summary['n_folds'],
    uf1=summary['uf1'],
    uar=summary['uar'],
    per_db={k: (v['uf1'], v['uar']) for k, v in per_db.items()},
    protocol=_protocol(summary),
    long_protocol=summary['protocol'],
    epochs=s['epochs'],
    size=s['size'],
    recipe=summary.get('recipe') or '?',
    seed=summary.get('seed', s.get('seed')),
    lr=s.get('learning_rate'),
    resumed=len(summary.get('wall_time_parts') or []) > 1,
    minutes=summary.get('wall_time_seconds', float('nan')) / 60,
    where=where,
    command=summary.get('command', ''),
  )


def table(rows: list[dict]) -> str:
  """The Markdown table; a note under it when a run is partial."""
  dbs = sorted({d for r in rows for d in r['per_db']})
  head = (
    ['model', 'dataset', 'subjects', 'samples', 'folds', 'UF1', 'UAR']
    + [f'{d} UF1 / UAR' for d in dbs]
    + ['protocol', 'recipe', 'seed', 'epochs', 'lr', 'input', 'resumed', 'wall time']
    + ['machine', 'run']
  )
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    cells = [r['model'], r['dataset'], r['subjects'], str(r['n']), str(r['folds'])]
    cells += [f"{r['uf1']:.4f}", f"{r['uar']:.4f}"]
    cells += [
      f'{r["per_db"][d][0]:.4f} / {r["per_db"][d][1]:.4f}' if d in r['per_db'] else '' for d in dbs
    ]
    lr = '?' if r['lr'] is None else f"{r['lr']:g}"
    cells += [r['protocol'], r['recipe'], str(r['seed']), str(r['epochs']), lr]
    cells += [
      f"{r['size']} px",
      'yes' if r['resumed'] else 'no',
      f"{r['minutes']:.0f} min",
      str(r['where']),
      r['run'],
    ]
    lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
  if any(r['partial'] for r in rows):
    lines += [
      '',
      '(partial): a --subjects part of a LOSO, fewer test subjects than the data has; its '
      "numbers pool those subjects only and do not compare with a full run's.",
    ]
  return '\n'.join(lines)


def how_far(folder: pathlib.Path, now: float | None = None) -> str:
  """How far an unfinished run has got, from its files: ': 20 of 120 fold models finished,
  5.9 h of wall time in 5 parts, the last epoch ended 2 min ago' ('' where it has no record;
  without 'of 120' where its wall_time.json predates the record of the total)."""
  models = len(list((folder / 'state' / 'folds').glob('fold_*.json')))
  clock = folder / 'wall_time.json'
  saved = json.loads(clock.read_text()) if clock.is_file() else {}
  total = f' of {saved["models"]}' if saved.get('models') else ''
  said = [f'{models}{total} fold model{"s" * (models != 1 or bool(total))} finished']
  if clock.is_file():
    parts = saved.get('parts', [])
    said.append(
      f'{duration(sum(parts))} of wall time in {len(parts)} part{"s" * (len(parts) != 1)}'
    )
    ago = ((time.time() if now is None else now) - clock.stat().st_mtime) / 60
    when = 'under a minute' if ago < 1 else f'{ago:.0f} min' if ago < 120 else f'{ago / 60:.0f} h'
    said.append(f'the last epoch ended {when} ago')
  return ': ' + ', '.join(said)


def is_comparison(folder: pathlib.Path) -> bool:
  """Whether `folder` is an `hfa_jax compare` output folder: OUT/runs/NETWORK beside
  OUT/leaderboard*.json, or, before its first leaderboard, the default name compare-DATASET."""
  if not (folder / 'runs').is_dir() or (folder / 'summary.json').is_file():
    return False
  return folder.name.startswith('compare-') or any(folder.glob('leaderboard*.json'))


def comparison_runs(folder: pathlib.Path) -> list[pathlib.Path]:
  """A comparison's network runs (OUT/runs/*), in name order."""
  return sorted(p for p in (folder / 'runs').iterdir() if p.is_dir())


def what_it_is(folder: pathlib.Path) -> str:
  """What a folder without summary.json is, in words."""
  run = store.read_run(folder / 'state') or {}
  if run.get('run', {}).get('final_model'):
    return (
      'a final model stopped while it trained, not a LOSO run (its experiments.final_model '
      'command, run again, goes on from its last checkpoint)'
    )
  if (folder / 'model.json').is_file():
    return 'a model folder (experiments.final_model), not a LOSO run'
  if (folder / 'config.json').is_file() or (folder / 'state' / 'run.json').is_file():
    how = f'hfa_jax loso --resume {folder}'
    if is_comparison(folder.parent.parent):
      how = (
        f'the hfa_jax compare command that started it, which resumes it and then writes '
        f'{folder.parent.parent}/leaderboard*, or {how}'
      )
    return f'a LOSO run that has not finished{how_far(folder)} (continue it with {how})'
  if not folder.exists():
    return 'no such folder'
  return 'not a run folder (no summary.json)'


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m experiments.results', description=__doc__)
  p.add_argument('runs', nargs='+', help='run folders (each holding summary.json)')
  p.add_argument('--out', help='also write the table to this file')
  args = p.parse_args(argv)
  rows, runs = [], []
  for run in args.runs:
    if is_comparison(pathlib.Path(run)):
      boards = sorted(p.name for p in pathlib.Path(run).glob('leaderboard*.md'))
      said = f"its leaderboards: {', '.join(boards)}" if boards else 'no leaderboard written yet'
      print(f'{run}: a comparison (hfa_jax compare), {said}; its network runs:', file=sys.stderr)
      runs += [str(p) for p in comparison_runs(pathlib.Path(run))]
    else:
      runs.append(run)
  for run in runs:
    path = pathlib.Path(run) / 'summary.json'
    if not path.is_file():
      print(f'skipping {run}: {what_it_is(pathlib.Path(run))}', file=sys.stderr)
      continue
    rows.append(row(json.loads(path.read_text()), run))
  if not rows:
    print('error: no finished run among the folders given', file=sys.stderr)
    return 2
  text = table(rows)
  print(text)
  if args.out:
    pathlib.Path(args.out).write_text(text + '\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())
