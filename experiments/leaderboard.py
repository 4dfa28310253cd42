"""The leaderboard of experiments.compare: rows of scored models -> leaderboard.md, .csv,
.json and .png.

A row is one model (or the ensemble of the models) under one protocol: its K members' UF1 and
UAR, pooled and per database, each member scored as a LOSO of its own (mean +- std, ddof 1),
and, where given, the paired difference of its members from a reference's (member r against
member r: the same folds, samples and seeds). Honest rows sort by UF1; rows whose epoch was
chosen on the test subject follow them, always labelled so.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import pathlib
import textwrap

import numpy as np

from hfa_jax import files

NOT_HONEST = 'NOT honest: epoch chosen on the test subject'


@dataclasses.dataclass
class Row:
  """One row: `members` [{'all': (uf1, uar), database: (uf1, uar), ...}] per member."""

  name: str  # the model, or 'ensemble of N models'
  protocol: str  # in words, e.g. 'honest: last epoch' or NOT_HONEST
  honest: bool
  members: list
  ensemble: dict  # the K members' mean probability, scored: {'all': (uf1, uar), ...}
  paired: list | None = None  # per member {'all': (duf1, duar), ...} against the reference
  paired_with: str = ''  # what `paired` is against, in words
  # the 95 % interval of the paired mean UF1 difference over resamples of the tested subjects
  over_subjects: tuple | None = None
  command: str = ''
  wall_time_s: float | None = None
  cpu_time_s: float | None = None  # the process's CPU time, all threads (None: not known)
  code: list = dataclasses.field(default_factory=list)  # each part's code (None: not known)
  machine: str = ''
  source: str = ''  # where the recipe (and protocol) come from
  seeds: bool = True  # False: one figure of several networks' models (no seeds to average)

  def groups(self) -> list[str]:
    return list(self.members[0])

  def stat(self, group: str, which: int, of: str = 'members') -> tuple[float, float]:
    """(mean, std) over the members of UF1 (which 0) or UAR (1) in `group`; of 'paired'."""
    values = np.array([m[group][which] for m in getattr(self, of)], np.float64)
    std = values.std(ddof=1) if len(values) > 1 else float('nan')
    return float(values.mean()), float(std)


def ordered(rows: list[Row]) -> list[Row]:
  """Honest rows by mean UF1 (best first), then the others (by UF1 among themselves)."""
  key = lambda r: -r.stat('all', 0)[0]
  return sorted([r for r in rows if r.honest], key=key) + sorted(
    [r for r in rows if not r.honest], key=key
  )


def _pm(mean_std: tuple[float, float]) -> str:
  mean, std = mean_std
  return f'{mean:.4f}' + ('' if np.isnan(std) else f' +- {std:.4f}')


def _duration(seconds: float | None) -> str:
  """A row's wall time in words: '' unknown, '19 s' under a minute, else whole minutes."""
  if seconds is None:
    return ''
  return f'{seconds:.0f} s' if seconds < 59.5 else f'{seconds / 60:.0f} min'


def _times(r: Row) -> str:
  """'79 min (CPU 150 min)': the wall time, and the CPU time where known."""
  wall = _duration(r.wall_time_s)
  return f'{wall} (CPU {_duration(r.cpu_time_s)})' if wall and r.cpu_time_s is not None else wall


def code_cell(parts: list) -> str:
  """Each part's code in words: 'git 1a2b3c4', 'git 1a2b3c4, resumed at git 5d6e7f8' (a part
  that ran the same code as the one before is not repeated); '' where none is known."""
  short = lambda c: c if c is None or not c.startswith('git ') else 'git ' + c[4:11] + c[44:]
  said, out = None, []
  for code in map(short, parts):
    if code != said and code is not None:
      out.append(code if not out else f'resumed at {code}')
    said = code
  return ', '.join(out)


def paired_cell(r: Row) -> str:
  """'-0.0140 +- 0.0213 (HFA-Net, seed by seed; over subjects -0.0508 to +0.0161)'."""
  if not r.paired:
    return ''
  low_high = ''
  if r.over_subjects is not None:
    low, high = r.over_subjects
    low_high = f'; 95 % over subjects {low:+.4f} to {high:+.4f}'
  return f"{_pm(r.stat('all', 0, 'paired'))} ({r.paired_with}{low_high})"


def markdown(rows: list[Row], title: str, notes: list[str]) -> str:
  """The leaderboard as Markdown: the table, then what it says and how it was made."""
  rows = ordered(rows)
  dbs = [g for g in rows[0].groups() if g != 'all']
  head = ['model', 'protocol', 'seeds', 'UF1', 'UAR'] + [f'{d} UF1 / UAR' for d in dbs]
  head += ['ensemble of its seeds UF1 / UAR', 'paired UF1 difference', 'wall time', 'machine']
  head += ['code']
  lines = [f'# {title}', '', '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    seeds = str(len(r.members)) if r.seeds else '-'
    cells = [r.name, r.protocol, seeds, _pm(r.stat('all', 0)), _pm(r.stat('all', 1))]
    cells += [
      f'{_pm(r.stat(d, 0))} / {_pm(r.stat(d, 1))}' if d in r.members[0] else '' for d in dbs
    ]
    cells.append(f"{r.ensemble['all'][0]:.4f} / {r.ensemble['all'][1]:.4f}")
    cells.append(paired_cell(r))
    cells += [_times(r), r.machine, code_cell(r.code)]
    lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
  lines += ['', *notes, '', 'Each row\'s command:', '']
  lines += [f'- {r.name} ({r.protocol}): `{r.command}`' for r in rows if r.command]
  sources = [f'- {r.name}: {r.source}' for r in rows if r.source]
  if sources:
    lines += ['', 'Recipes and protocols:', '', *sources]
  return '\n'.join(lines) + '\n'


def _known(mean_std: tuple[float, float]) -> tuple[float, float | None]:
  """(mean, std) with None for the std of one member (NaN is not JSON; the CSV leaves it
  empty)."""
  mean, std = mean_std
  return mean, None if np.isnan(std) else std


def table_rows(rows: list[Row]) -> list[dict]:
  """Flat dicts, one per row (the CSV's and the JSON's 'rows')."""
  out = []
  for r in ordered(rows):
    seeds = len(r.members) if r.seeds else None
    d = dict(model=r.name, protocol=r.protocol, honest=r.honest, seeds=seeds)
    for g in r.groups():
      for which, metric in ((0, 'uf1'), (1, 'uar')):
        d[f'{g}_{metric}_mean'], d[f'{g}_{metric}_std'] = _known(r.stat(g, which))
    d['ensemble_uf1'], d['ensemble_uar'] = r.ensemble['all']
    if r.paired:
      d['paired_with'] = r.paired_with
      d['paired_uf1_mean'], d['paired_uf1_std'] = _known(r.stat('all', 0, 'paired'))
      d['paired_uar_mean'], d['paired_uar_std'] = _known(r.stat('all', 1, 'paired'))
      low_high = r.over_subjects or (None, None)
      d['paired_uf1_subjects_low'], d['paired_uf1_subjects_high'] = low_high
    d |= dict(wall_time_s=r.wall_time_s, cpu_time_s=r.cpu_time_s, machine=r.machine)
    d |= dict(code=code_cell(r.code), command=r.command, source=r.source)
    out.append(d)
  return out


def plot(path, rows: list[Row], title: str):
  """UF1 mean +- std per row as a point with its spread, each labelled with its mean; rows
  not honest in red, open, and labelled. The axis spans the rows' figures (it does not
  start at 0, so that differences of 0.01-0.05 show)."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  rows = ordered(rows)[::-1]
  fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.6))
  ends = []
  for i, r in enumerate(rows):
    mean, std = r.stat('all', 0)
    std = 0.0 if np.isnan(std) else std
    colour = 'tab:blue' if r.honest else 'tab:red'
    ax.errorbar(
      mean, i, xerr=std, fmt='o', color=colour, mfc=colour if r.honest else 'white', capsize=3
    )
    ax.annotate(
      f'{mean:.3f}',
      (mean + std, i),
      xytext=(6, 0),
      textcoords='offset points',
      va='center',
      fontsize=8,
      color=colour,
    )
    ends += [mean - std, mean + std]
  labels = [r.name if r.honest else f'{r.name} (NOT honest: epoch chosen on test)' for r in rows]
  ax.set_yticks(range(len(rows)), labels)
  low, high = (
    (max(0.0, np.floor(min(ends) * 20 - 1) / 20), min(1.0, np.ceil(max(ends) * 20 + 1) / 20))
    if ends
    else (0.0, 1.0)
  )
  title = textwrap.fill(title, 44)  # a long title (e.g. with its recipe) over the axes
  ax.set(xlabel='UF1 (mean +- std over seeds, each a LOSO)', title=title, xlim=(low, high))
  ax.set_ylim(-0.7, len(rows) - 0.3)
  ax.grid(axis='x', alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write(
  out: pathlib.Path,
  rows: list[Row],
  title: str,
  notes: list[str],
  meta: dict,
  stem: str = 'leaderboard',
) -> str:
  """Writes OUT/STEM.md, .csv, .json and .png; returns the Markdown."""
  out.mkdir(parents=True, exist_ok=True)
  text = markdown(rows, title, notes)
  files.write_text(out / f'{stem}.md', text)
  flat = table_rows(rows)
  buffer = io.StringIO()
  fields = list(dict.fromkeys(k for d in flat for k in d))
  writer = csv.DictWriter(buffer, fieldnames=fields)
  writer.writeheader()
  writer.writerows(flat)
  files.write_text(out / f'{stem}.csv', buffer.getvalue())
  members = {f'{r.name} | {r.protocol}': r.members for r in rows}
  files.write_json(out / f'{stem}.json', meta | dict(rows=flat, members=members))
  plot(out / f'{stem}.png', rows, title)
  return text
