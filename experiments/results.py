"""A Markdown table of finished LOSO runs, side by side (for papers and the README).

    python -m experiments.results runs/loso-megc2019_flow_images-* [--out table.md]

One row per run folder (its summary.json): the model, dataset, subjects tested ('40/40', or
'2/68 (partial)' for a --subjects part of a LOSO), UF1 / UAR pooled and per database, the
protocol, epochs, wall time, the CPU or device it ran on, and the run folder.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from hfa_jax import report


def _protocol(summary: dict) -> str:
  """'LOSO, last epoch', '5-fold by subject, epoch chosen on validation subjects' ..."""
  s = summary['settings']
  chosen = summary['select_epoch']
  short = (
    'last epoch'
    if chosen == 'last'
    else 'epoch chosen on validation subjects' + (', retrained' if s.get('retrain') else '')
    if chosen == 'validation'
    else 'BEST EPOCH BY TEST (not honest)'
  )
  return (
    f"{s['group_folds']}-fold by subject, {short}" if s.get('group_folds') else f'LOSO, {short}'
  )


def _dataset(summary: dict) -> str:
  s = summary['settings']
  name = summary.get('dataset') or s.get('dataset') or '?'
  return name + (', native classes' if s.get('classes') == 'native' else '')


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
    + ['protocol', 'epochs', 'input', 'wall time', 'machine', 'run']
  )
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    cells = [r['model'], r['dataset'], r['subjects'], str(r['n']), str(r['folds'])]
    cells += [f"{r['uf1']:.4f}", f"{r['uar']:.4f}"]
    cells += [
      f'{r["per_db"][d][0]:.4f} / {r["per_db"][d][1]:.4f}' if d in r['per_db'] else '' for d in dbs
    ]
    cells += [
      r['protocol'],
      str(r['epochs']),
      f"{r['size']} px",
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


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m experiments.results', description=__doc__)
  p.add_argument('runs', nargs='+', help='run folders (each holding summary.json)')
  p.add_argument('--out', help='also write the table to this file')
  args = p.parse_args(argv)
  rows = []
  for run in args.runs:
    path = pathlib.Path(run) / 'summary.json'
    if not path.is_file():
      print(f'skipping {run}: no summary.json (not finished?)', file=sys.stderr)
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
