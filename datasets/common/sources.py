"""Read the samples of one database copy found in a manual folder (used by the builders)."""

from __future__ import annotations

import pathlib

from datasets.common import layout, samples, spreadsheet


def _describe(copy: layout.Copy) -> str:
  return f'{copy.root} ({"cropped" if copy.cropped else "raw: face detected and cropped"})'


def annotated(database: str, manual_dir, missing_apex: str = 'skip'):
  """CASME II or SAMM: (samples, problems, source) from the copy and its spreadsheet."""
  copy = layout.find_copy(database, manual_dir)
  sheet, tried = spreadsheet.find(pathlib.Path(manual_dir), database)
  if sheet is None:
    found = '\n  '.join([''] + tried) if tried else ' none'
    raise layout.expected(
      database,
      manual_dir,
      f'No {layout.database_title(database)} annotation spreadsheet (.xlsx with columns '
      f'{", ".join(spreadsheet.REQUIRED)}) found under {manual_dir}. '
      f'Spreadsheets that could not be used:{found}\n'
      '(.xls files must be saved as .xlsx first.)',
    )
  found, problems = samples.from_sheet(copy, sheet, missing_apex)
  return found, problems, f'{_describe(copy)}, annotations {sheet.path}'


def smic(manual_dir, apex: str = 'middle'):
  """SMIC-HS: (samples, problems, source) from the `sN/micro/<label>/<clip>` folders."""
  copy = layout.find_copy('smic', manual_dir)
  found, problems = samples.from_smic(copy, apex)
  return found, problems, f'{_describe(copy)}, apex: {apex}'
