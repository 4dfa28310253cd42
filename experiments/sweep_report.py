"""The report of experiments.accelerator_sweep: per measurement a line while it runs, then
OUT.json (every row, the settings, the device) and OUT.md (a table of the rows and one line
per side: the largest K that ran, what stopped it, folds_at_once's choice, the plan's and the
measured bytes per fold)."""

from __future__ import annotations

import argparse
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent
STOPS = {
  'ok': 'every K asked for ran',
  'out_of_memory': 'out of memory',
  'time_limit': '--max_minutes spent',
  'error': 'an error (not memory)',
}


def mib(b, unit: str = '') -> str:
  """Bytes in MiB ('not reported' for None)."""
  return 'not reported' if b is None else f'{b / 2**20:.0f}{unit}'


def row_line(r: dict) -> str:
  """One measurement in a line."""
  head = f"side {r['side']:>3} K {r['folds']:>3}: "
  if r['status'] != 'ok':
    return head + f"{r['status'].replace('_', ' ')} ({r.get('error', '')[:200]})"
  return head + (
    f"{r['samples_per_s']:9.1f} fold-samples/s, step {r['step_s'] * 1e3:.1f} ms, compile "
    f"{r['compile_s']:.1f} s, device peak {mib(r['peak_bytes'], ' MiB')} of bytes_limit "
    f"{mib(r['bytes_limit'], ' MiB')}, estimate {mib(r['estimate_bytes'], ' MiB')} per device"
  )


def per_fold_measured(rows: list[dict]) -> float | str:
  """Bytes per fold of the device peak: the least-squares slope over folds per device of the
  rows that ran; 'not reported' where the device reports no peak, 'fewer than 2 K' else."""
  if not rows:
    return '-'
  if any(r['peak_bytes'] is None for r in rows):
    return 'not reported'
  points = [(r['folds_per_device'], r['peak_bytes']) for r in rows]
  if len({x for x, _ in points}) < 2:
    return 'fewer than 2 K'
  mx = sum(x for x, _ in points) / len(points)
  my = sum(y for _, y in points) / len(points)
  return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def summary(result: dict, sides: list[int]) -> list[dict]:
  """Per side: the largest K that ran, what stopped it, folds_at_once's choice, the estimate
  and the measured bytes per fold."""
  out = []
  for side in sides:
    rows = [r for r in result['rows'] if r['side'] == side]
    ok = [r for r in rows if r['status'] == 'ok']
    facts = next((r for r in rows if 'folds_at_once' in r), {})
    status, k = result['stops'].get(side, ('time_limit', None))
    out.append(
      dict(
        side=side,
        largest_k=max((r['folds'] for r in ok), default=None),
        stopped=STOPS[status] + (f' at K = {k}' if k else ''),
        folds_at_once=facts.get('folds_at_once'),
        estimate_per_fold=facts.get('estimate_per_fold'),
        measured_per_fold=per_fold_measured(ok),
      )
    )
  return out


def markdown(report: dict) -> str:
  """The sweep as Markdown: the device, one row per measurement, one line per side."""
  env, s = report['environment'] or {}, report['settings']
  device = (
    f"{env.get('device_count', '?')} x {env.get('device_kind', '?')} ({env.get('backend', '?')})"
  )
  lines = [
    f'# Accelerator sweep: {device}',
    '',
    f"{report['date']}, commit {report['commit']}, jax {env.get('jax', '?')}, model "
    f"{s['model']}, {s['dtype']}, batch {s['batch_size']} per fold, epochs of "
    f"{s['epoch_steps']} steps, {s['steps']} timed after 2 warm-ups. bytes_limit per device: "
    f"{mib(report['bytes_limit'], ' MiB')}. Memory in MiB per device: peak_bytes_in_use, "
    f"XLA's figure for the program, folds_at_once's estimate (hfa_jax.loso.memory's plan "
    f"for {s['model']}).",
    '',
    '| side | K | fold-samples/s | step ms | compile s | peak | XLA | estimate | status |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for r in report['rows']:
    ok = r['status'] == 'ok'
    cells = (
      [f"{r['samples_per_s']:.1f}", f"{r['step_s'] * 1e3:.1f}", f"{r['compile_s']:.1f}"]
      + [mib(r['peak_bytes']), mib(r['xla_bytes'])]
      if ok
      else ['-'] * 5
    )
    last = (r.get('error') or '').strip().splitlines()[-1:] or ['']
    status = 'ran' if ok else f"{r['status'].replace('_', ' ')}: {last[0][:160]}"
    status = ' '.join(status.replace('|', '/').split())
    estimate_cell = mib(r.get('estimate_bytes')) if 'estimate_bytes' in r else '-'
    lines.append(
      f"| {r['side']} | {r['folds']} | {' | '.join(cells)} | {estimate_cell} | {status} |"
    )
  lines += [
    '',
    '| side | largest K that ran | stopped by | folds_at_once chooses | estimate per fold | '
    'measured per fold |',
    '|---|---|---|---|---|---|',
  ]
  for p in report['sides']:
    measured = p['measured_per_fold']
    measured = mib(measured) if isinstance(measured, (int, float)) else measured
    lines.append(
      f"| {p['side']} | {p['largest_k'] or 'none'} | {p['stopped']} | {p['folds_at_once']} | "
      f"{mib(p['estimate_per_fold']) if p['estimate_per_fold'] else '-'} | {measured} |"
    )
  return '\n'.join(lines) + '\n'


def commit() -> str:
  """The checkout's commit (with '+changes' if its files differ), or 'unknown'."""
  try:
    run = lambda *a: subprocess.run(
      ['git', *a], cwd=ROOT, capture_output=True, text=True, timeout=20, check=True
    ).stdout.strip()
    return run('rev-parse', '--short', 'HEAD') + (
      '+changes' if run('status', '--porcelain', '-uno') else ''
    )
  except (OSError, subprocess.SubprocessError):
    return 'unknown'


def make_report(result: dict, args: argparse.Namespace, started: str, head: str) -> dict:
  facts = next((r for r in result['rows'] if 'environment' in r), {})
  rows = [{k: v for k, v in r.items() if k != 'environment'} for r in result['rows']]
  settings = {k: v for k, v in vars(args).items() if k != 'measure'}
  return dict(
    date=started,
    commit=head,
    settings=settings,
    environment=facts.get('environment'),
    bytes_limit=facts.get('bytes_limit'),
    rows=rows,
    sides=summary(result, args.sides),
  )
