"""Reading numbers from spreadsheet and CSV cells (subject ids, frame numbers).

Each database's own spelling of subjects and samples is in datasets/<db>/rules.py
(`subject`, `match_key`).
"""

from __future__ import annotations

import re


class CellError(ValueError):
  """A subject or frame cell that cannot be read."""


def integer(raw) -> int | None:
  """An integer from a cell holding 6, 6.0, '6', ' 006 ', or None."""
  if raw is None:
    return None
  if isinstance(raw, bool):
    return None
  if isinstance(raw, int):
    return raw
  if isinstance(raw, float):
    return int(raw) if raw.is_integer() else None
  text = str(raw).strip()
  if re.fullmatch(r'\d+(\.0+)?', text):
    return int(float(text))
  return None


def frame_cell(raw) -> int | None:
  """Frame number from a spreadsheet cell; None for '/', '-', blank or text."""
  return integer(raw)
