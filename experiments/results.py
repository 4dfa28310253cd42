"""A Markdown table of finished LOSO runs, side by side (for papers and the README).

    python -m experiments.results runs/loso-megc2019_flow_images-* [--out table.md]

One row per run folder (its summary.json): the model, UF1 / UAR pooled and per database,
the protocol, epochs, wall time and the CPU or device it ran on.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys


def row(summary: dict) -> dict:
  s = summary['settings']
  per_db = summary.get('per_database') or {}
  device = summary.get('devices') or {}
  where = summary.get('cpu') if device.get('platform') == 'cpu' else device.get('kind')
  protocol = summary['protocol']
  short = (
    'last epoch'
    if summary['select_epoch'] == 'last'
    else 'epoch chosen on validation subjects' + (', retrained' if s.get('retrain') else '')
    if summary['select_epoch'] == 'validation'
    else 'BEST EPOCH BY TEST (not honest)'
  )
  if s.get('group_folds'):
    short = f"{s['group_folds']}-fold by subject, {short}"
  return dict(
    model=s['model'],
    dataset=summary.get('dataset', s.get('dataset')),
    n=summary['n_samples'],
    folds=summary['n_folds'],
    uf1=summary['uf1'],
    uar=summary['uar'],
    per_db={k: (v['uf1'], v['uar']) for k, v in per_db.items()},
    protocol=short,
    long_protocol=protocol,
    epochs=s['epochs'],
    size=s['size'],
    minutes=summary.get('wall_time_seconds', float('nan')) / 60,
    where=where,
    command=summary.get('command', ''),
  )


def table(rows: list[dict]) -> str:
  dbs = sorted({d for r in rows for d in r['per_db']})
  head = (
    ['model', 'samples', 'folds', 'UF1', 'UAR']
    + [f'{d} UF1 / UAR' for d in dbs]
    + ['epoch scored', 'epochs', 'input', 'wall time', 'machine']
  )
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    cells = [r['model'], str(r['n']), str(r['folds']), f"{r['uf1']:.4f}", f"{r['uar']:.4f}"]
    cells += [
      f'{r["per_db"][d][0]:.4f} / {r["per_db"][d][1]:.4f}' if d in r['per_db'] else '' for d in dbs
    ]
    cells += [
      r['protocol'],
      str(r['epochs']),
      f"{r['size']} px",
      f"{r['minutes']:.0f} min",
      str(r['where']),
    ]
    lines.append('| ' + ' | '.join(cells) + ' |')
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
    rows.append(row(json.loads(path.read_text())))
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
