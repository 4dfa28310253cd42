"""Find and read annotation spreadsheets (CASME II, SAMM: the databases whose rules have
`SHEET_NAMES`).

The header row is found by its content (SAMM has free-text rows above it), columns by their
normalised names (blank columns and column order do not matter; the header is read before the
database is known, so these names serve every database), and a spreadsheet is told apart by
its sample names (each database's `CLIP_DIR` in datasets/<db>/rules.py: `EP02_01f` vs
`006_1_2`), not by its file name.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import openpyxl

from datasets.common import registry

# Normalised header name -> field. A header matches the first pattern it starts with.
_COLUMNS = (
  ('subject', 'subject'),
  ('filename', 'filename'),
  ('onset', 'onset'),
  ('apex', 'apex'),
  ('offset', 'offset'),
  ('actionunit', 'action_units'),
  ('aus', 'action_units'),
  ('estimatedemotion', 'emotion'),
  ('emotion', 'emotion'),
)
REQUIRED = ('subject', 'filename', 'onset', 'apex', 'offset', 'emotion')
_HEADER_SEARCH_ROWS = 40


class SpreadsheetError(ValueError):
  """A spreadsheet that cannot be read or has no usable header row."""


@dataclasses.dataclass(frozen=True)
class Row:
  """One annotation row, cells as found (not yet validated)."""

  sheet: str  # file name, for messages
  line: int  # 1-based row number in the sheet
  subject: object
  filename: object
  onset: object
  apex: object
  offset: object
  emotion: object
  action_units: object

  def where(self) -> str:
    return f'{self.sheet} row {self.line}'


@dataclasses.dataclass
class Sheet:
  path: pathlib.Path
  database: str  # 'casme2' or 'samm': a database with SHEET_NAMES
  rows: list[Row]


def _norm(cell) -> str:
  return re.sub(r'[^a-z]', '', str(cell).lower()) if cell is not None else ''


def _header_columns(cells) -> dict[str, int] | None:
  columns: dict[str, int] = {}
  for index, cell in enumerate(cells):
    name = _norm(cell)
    if not name:
      continue
    for prefix, field in _COLUMNS:
      if name.startswith(prefix) and field not in columns:
        if field == 'emotion' and 'objective' in name:
          continue
        columns[field] = index
        break
  return columns if all(f in columns for f in REQUIRED) else None


def _annotated() -> list:
  """The rules of the databases that come with a spreadsheet."""
  return [r for r in map(registry.rules, registry.DATABASES) if r.SHEET_NAMES]


def _kind(rows: list[Row]) -> str | None:
  """The database most of the rows' sample names belong to; None on a tie."""
  counts = dict.fromkeys((r.NAME for r in _annotated()), 0)
  for row in rows:
    name = str(row.filename).strip()
    for rules in _annotated():
      if rules.CLIP_DIR.match(name):
        counts[rules.NAME] += 1
        break
  ranked = sorted(counts.values(), reverse=True)
  if len(ranked) > 1 and ranked[0] == ranked[1]:
    return None
  return max(counts, key=counts.get)


def read(path: str | pathlib.Path) -> Sheet:
  """Read the annotation rows of one .xlsx file; raises SpreadsheetError."""
  path = pathlib.Path(path)
  try:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
  except Exception as e:  # openpyxl raises many kinds on corrupt files
    raise SpreadsheetError(f'cannot read spreadsheet {path}: {type(e).__name__}: {e}') from e
  try:
    for ws in book.worksheets:
      columns = None
      rows: list[Row] = []
      for line, cells in enumerate(ws.iter_rows(values_only=True), start=1):
        if columns is None:
          if line > _HEADER_SEARCH_ROWS:
            break
          columns = _header_columns(cells)
          continue
        get = lambda f: cells[columns[f]] if f in columns and columns[f] < len(cells) else None
        if all(get(f) in (None, '') for f in ('subject', 'filename')):
          continue  # blank or trailing note row
        rows.append(
          Row(
            path.name,
            line,
            get('subject'),
            get('filename'),
            get('onset'),
            get('apex'),
            get('offset'),
            get('emotion'),
            get('action_units'),
          )
        )
      if columns is not None:
        kind = _kind(rows)
        if kind is None:
          raise SpreadsheetError(
            f'{path}: cannot tell whether it annotates '
            f'{" or ".join(r.TITLE for r in _annotated())} (sample names are neither '
            f'{" nor ".join(r.SHEET_NAMES for r in _annotated())} style)'
          )
        return Sheet(path, kind, rows)
  finally:
    book.close()
  raise SpreadsheetError(
    f'{path}: no header row with columns {", ".join(REQUIRED)} in the first '
    f'{_HEADER_SEARCH_ROWS} rows of any sheet'
  )


def find(root: pathlib.Path, database: str) -> tuple[Sheet | None, list[str]]:
  """The annotation spreadsheet of `database` under root (nearest to root wins).

  Returns the sheet (or None) and the problems met on the way (unreadable files, etc.)."""
  problems = []
  candidates = sorted((p for p in _walk_xlsx(root)), key=lambda p: (len(p.parts), str(p)))
  for path in candidates:
    try:
      sheet = read(path)
    except SpreadsheetError as e:
      problems.append(str(e))
      continue
    if sheet.database == database:
      return sheet, problems
  return None, problems


def _walk_xlsx(root: pathlib.Path, max_depth: int = 6):
  stack = [(pathlib.Path(root), 0)]
  while stack:
    folder, depth = stack.pop()
    try:
      entries = list(folder.iterdir())
    except OSError:
      continue
    for entry in entries:
      if entry.name.startswith(('.', '~$')):
        continue
      if entry.is_dir() and depth < max_depth and not _is_clip_folder(entry):
        stack.append((entry, depth + 1))
      elif entry.suffix.lower() in ('.xlsx', '.xlsm') and entry.is_file():
        yield entry


def _is_clip_folder(folder: pathlib.Path) -> bool:
  # Do not descend into folders of frames (thousands of images, never a spreadsheet).
  return any(registry.rules(d).CLIP_DIR.match(folder.name) for d in registry.DATABASES)
