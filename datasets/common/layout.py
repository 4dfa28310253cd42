"""Locate a database copy (its frame folders) inside a user's manual folder.

A copy is recognised by its layout, wherever it sits below the manual folder (nested twice
after unzipping, renamed, or several copies side by side for the MEGC2019 composite): a folder
of subject folders (`SUBJECT_DIR` in datasets/<db>/rules.py), each holding at least one folder
named like `SUBJECT_CHILD`. A database's rules may drop or prefer some of the folders found
(`keep_roots`, SMIC: the high-speed camera). Where both the raw and the cropped release are
present, the cropped one is used.
"""

from __future__ import annotations

import dataclasses
import pathlib

from hfa_jax.preprocess import IMAGE_SUFFIXES

from datasets.common import registry

_MAX_DEPTH = 6


class ManualDirError(Exception):
  """The manual folder is missing or holds no usable copy of the database."""


@dataclasses.dataclass(frozen=True)
class Copy:
  database: str
  root: pathlib.Path  # the folder holding the subject folders
  cropped: bool

  @property
  def subjects(self) -> list[pathlib.Path]:
    subject_dir = registry.rules(self.database).SUBJECT_DIR
    return sorted(p for p in self.root.iterdir() if p.is_dir() and subject_dir.match(p.name))


def expected(layout: str, reason: str) -> ManualDirError:
  """The error saying why, and how --manual_dir should be laid out (a builder's LAYOUT)."""
  return ManualDirError(
    f'{reason}\nExpected --manual_dir to be a folder laid out like this:\n{layout}'
  )


def check_dir(manual_dir, layout: str) -> pathlib.Path:
  if manual_dir is None:
    raise expected(layout, 'No manual folder given (--manual_dir).')
  path = pathlib.Path(manual_dir).expanduser()
  if not path.is_dir():
    raise expected(layout, f'Manual folder {path} does not exist.')
  return path


def _is_subject_dir(rules, folder: pathlib.Path) -> bool:
  if not rules.SUBJECT_DIR.match(folder.name):
    return False
  try:
    children = [c for c in folder.iterdir() if c.is_dir()]
  except OSError:
    return False
  return any(rules.SUBJECT_CHILD.match(c.name) for c in children)


def _roots(database: str, top: pathlib.Path) -> list[pathlib.Path]:
  """Folders under top (top included) that directly hold subject folders."""
  rules = registry.rules(database)
  any_subject = [registry.rules(d).SUBJECT_DIR for d in registry.DATABASES]
  found = []
  stack = [(top, 0)]
  while stack:
    folder, depth = stack.pop()
    try:
      children = sorted(c for c in folder.iterdir() if c.is_dir() and not c.name.startswith('.'))
    except OSError:
      continue
    if any(_is_subject_dir(rules, c) for c in children):
      found.append(folder)
      continue
    if depth < _MAX_DEPTH:
      stack.extend(
        (c, depth + 1) for c in children if not any(s.match(c.name) for s in any_subject)
      )
  return sorted(found)


def _cropped(root: pathlib.Path, top: pathlib.Path) -> bool:
  rel = (root.relative_to(top).as_posix() if root != top else root.name).lower()
  if 'crop' in rel:
    return True
  for subject in sorted(root.iterdir()):
    for path in subject.rglob('*'):
      if path.suffix.lower() in IMAGE_SUFFIXES:
        return path.name.lower().startswith('reg_')
  return False


def find_copy(database: str, manual_dir) -> Copy:
  """The copy of `database` under manual_dir; raises ManualDirError saying what was expected."""
  rules = registry.rules(database)
  top = check_dir(manual_dir, rules.LAYOUT)
  roots = _roots(database, top)
  keep_roots = getattr(rules, 'keep_roots', None)
  if keep_roots:
    roots = keep_roots(roots, top)
  if not roots:
    raise expected(rules.LAYOUT, f'No {rules.TITLE} frame folders found under {top}.')
  copies = [Copy(database, r, _cropped(r, top)) for r in roots]
  cropped = [c for c in copies if c.cropped]
  if len(cropped) == 1:
    return cropped[0]
  if len(copies) == 1:
    return copies[0]
  listing = '\n'.join(f'  {c.root}' for c in copies)
  raise ManualDirError(
    f'Several {rules.TITLE} copies found under {top}:\n'
    f'{listing}\nPoint --manual_dir at the one to use.'
  )
