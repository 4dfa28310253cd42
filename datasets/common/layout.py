"""Locate a database copy (its frame folders) inside a user's manual folder.

A copy is recognised by its layout, wherever it sits below the manual folder (nested twice
after unzipping, renamed, or several copies side by side for the MEGC2019 composite):

- CASME II: a folder of `subNN/` folders holding `EP..` clip folders.
- SAMM:     a folder of `NNN/` folders holding `NNN_N_N` clip folders.
- SMIC-HS:  a folder of `sN/` folders holding `micro/{negative,positive,surprise}/`
            (inside the release's `HS/`; `VIS/` and `NIR/` are ignored).

Where both the raw and the cropped release are present, the cropped one is used.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

from hfa_jax.preprocess import IMAGE_SUFFIXES


LAYOUTS = {
  'casme2': """\
  DIR/                                  (any name, may be nested, e.g. CASME2_RAW_selected/
    CASME2-coding-20140508.xlsx          or Cropped/; any .xlsx with the CASME II header)
    sub01/
      EP02_01f/img46.jpg img47.jpg ...   (or reg_img46.jpg in the cropped release)
    sub02/ ...""",
  'samm': """\
  DIR/                                  (any name, may be nested, e.g. SAMM/)
    SAMM_Micro_FACS_Codes_v2.xlsx        (any .xlsx with the SAMM header, preamble rows ok)
    006/
      006_1_2/006_05562.jpg ...
    007/ ...""",
  'smic': """\
  DIR/                                  (e.g. SMIC_all_cropped/ or SMIC_all_raw/)
    HS/
      s1/micro/negative/s1_ne_01/image012345.bmp ...
               positive/s1_po_01/...
               surprise/s1_sur_01/...
      s2/ ...""",
}
LAYOUTS['megc2019'] = (
  '  DIR/ holding one copy of each of CASME II, SAMM and SMIC-HS, in any '
  'subfolders:\n' + '\n'.join(LAYOUTS[d] for d in ('casme2', 'samm', 'smic'))
)
LAYOUTS['megc2019_flow_images'] = """\
  DIR/                               (any name; files may sit in subfolders)
    combined_3class.csv              (any .csv with header dataset,sub,filename_o,label,apex,...)
    <images>/sub01_EP02_01f .png     (28x28 RGB: u, v, optical strain, each 0..255)
             006_006_1_2 .png
             s1_s1_ne_01 .png ..."""

_SUBJECT_DIR = {
  'casme2': re.compile(r'(?i)^sub\d+$'),
  'samm': re.compile(r'^\d+$'),
  'smic': re.compile(r'(?i)^s\d+$'),
}
_CLIP_DIR = {
  'casme2': re.compile(r'(?i)^ep\d'),
  'samm': re.compile(r'^\d+_\d+'),
}
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
    return sorted(
      p for p in self.root.iterdir() if p.is_dir() and _SUBJECT_DIR[self.database].match(p.name)
    )


def expected(database: str, manual_dir, reason: str) -> ManualDirError:
  return ManualDirError(
    f'{reason}\nExpected --manual_dir to be a folder laid out like this:\n{LAYOUTS[database]}'
  )


def check_dir(database: str, manual_dir) -> pathlib.Path:
  if manual_dir is None:
    raise expected(database, manual_dir, 'No manual folder given (--manual_dir).')
  path = pathlib.Path(manual_dir).expanduser()
  if not path.is_dir():
    raise expected(database, manual_dir, f'Manual folder {path} does not exist.')
  return path


def _is_subject_dir(database: str, folder: pathlib.Path) -> bool:
  if not _SUBJECT_DIR[database].match(folder.name):
    return False
  try:
    children = [c for c in folder.iterdir() if c.is_dir()]
  except OSError:
    return False
  if database == 'smic':
    return any(c.name.lower() == 'micro' for c in children)
  return any(_CLIP_DIR[database].match(c.name) for c in children)


def _roots(database: str, top: pathlib.Path) -> list[pathlib.Path]:
  """Folders under top (top included) that directly hold subject folders."""
  found = []
  stack = [(top, 0)]
  while stack:
    folder, depth = stack.pop()
    try:
      children = sorted(c for c in folder.iterdir() if c.is_dir() and not c.name.startswith('.'))
    except OSError:
      continue
    if any(_is_subject_dir(database, c) for c in children):
      found.append(folder)
      continue
    if depth < _MAX_DEPTH:
      stack.extend(
        (c, depth + 1)
        for c in children
        if not any(_SUBJECT_DIR[d].match(c.name) for d in _SUBJECT_DIR)
      )
  return sorted(found)


def _cropped(database: str, root: pathlib.Path, top: pathlib.Path) -> bool:
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
  top = check_dir(database, manual_dir)
  roots = _roots(database, top)
  if database == 'smic':
    parts = lambda r: {p.lower() for p in r.relative_to(top.parent).parts}
    roots = [r for r in roots if not parts(r) & {'vis', 'nir'}]
    hs = [r for r in roots if 'hs' in parts(r)]
    roots = hs or roots
  if not roots:
    raise expected(
      database, manual_dir, f'No {database_title(database)} frame folders found under {top}.'
    )
  copies = [Copy(database, r, _cropped(database, r, top)) for r in roots]
  cropped = [c for c in copies if c.cropped]
  if len(cropped) == 1:
    return cropped[0]
  if len(copies) == 1:
    return copies[0]
  listing = '\n'.join(f'  {c.root}' for c in copies)
  raise ManualDirError(
    f'Several {database_title(database)} copies found under {top}:\n'
    f'{listing}\nPoint --manual_dir at the one to use.'
  )


def database_title(database: str) -> str:
  return {'casme2': 'CASME II', 'samm': 'SAMM', 'smic': 'SMIC-HS'}.get(database, database)
