"""Spellings of subjects, samples and frame-number cells in the three databases."""

from __future__ import annotations

import re


class CellError(ValueError):
  """A subject or frame cell that cannot be read."""


def _integer(raw) -> int | None:
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


def casme2_subject(raw) -> str:
  """`sub01` from 1, 1.0, '1', '01', 'sub1', 'Sub01'."""
  text = str(raw).strip().lower()
  number = _integer(raw)
  if number is None:
    m = re.fullmatch(r'sub\s*0*(\d+)', text)
    if not m:
      raise CellError(f'not a CASME II subject: {raw!r}')
    number = int(m.group(1))
  return f'sub{number:02d}'


def samm_subject(raw) -> str:
  """`006` from 6, 6.0, '6', '006'."""
  number = _integer(raw)
  if number is None:
    raise CellError(f'not a SAMM subject: {raw!r}')
  return f'{number:03d}'


def smic_subject(raw) -> str:
  """`s1` from 's1', 's01', 'S01', 1."""
  number = _integer(raw)
  if number is None:
    m = re.fullmatch(r's\s*0*(\d+)', str(raw).strip().lower())
    if not m:
      raise CellError(f'not a SMIC subject: {raw!r}')
    number = int(m.group(1))
  return f's{number}'


def smic_sample(raw) -> str:
  """`s1_ne_01` from 's01_ne_01' (subject part without zero padding, lower case)."""
  text = str(raw).strip().lower()
  return re.sub(r'^s0*(\d+)_', r's\1_', text)


def frame_cell(raw) -> int | None:
  """Frame number from a spreadsheet cell; None for '/', '-', blank or text."""
  return _integer(raw)
