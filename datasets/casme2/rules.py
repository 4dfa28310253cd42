"""What the builders know about CASME II: emotions, spellings, folder layout, spreadsheet.

The machinery that applies these rules to any database is in datasets/common/ (layout.py finds
the copy, spreadsheet.py reads the .xlsx, samples.py turns rows into samples).
"""

from __future__ import annotations

import re

from datasets.common import names, samples

NAME = 'casme2'
TITLE = 'CASME II'

# Native emotion names, in the index order stored in the `emotion` feature.
EMOTIONS = ('happiness', 'disgust', 'repression', 'surprise', 'fear', 'sadness', 'others')
# Unambiguous spelling variants seen in the spreadsheets (after lower-casing).
ALIASES = {
  'other': 'others',
  'happy': 'happiness',
  'sad': 'sadness',
  'surprised': 'surprise',
  'disgusted': 'disgust',
  'repressed': 'repression',
}

# Layout: a folder of `subNN/` folders holding `EP..` clip folders.
LAYOUT = """\
  DIR/                                  (any name, may be nested, e.g. CASME2_RAW_selected/
    CASME2-coding-20140508.xlsx          or Cropped/; any .xlsx with the CASME II header)
    sub01/
      EP02_01f/img46.jpg img47.jpg ...   (or reg_img46.jpg in the cropped release)
    sub02/ ..."""
SUBJECT_DIR = re.compile(r'(?i)^sub\d+$')
# A clip folder (and a spreadsheet's Filename cell) starts like this: `EP02_01f`.
CLIP_DIR = re.compile(r'(?i)^ep\d')
# A subject folder is recognised by holding at least one such child folder.
SUBJECT_CHILD = CLIP_DIR

# Spreadsheet: a CASME II sheet is told from a SAMM one by its sample names (see CLIP_DIR).
SHEET_NAMES = 'EP..'


def subject(raw) -> str:
  """`sub01` from 1, 1.0, '1', '01', 'sub1', 'Sub01'."""
  text = str(raw).strip().lower()
  number = names.integer(raw)
  if number is None:
    m = re.fullmatch(r'sub\s*0*(\d+)', text)
    if not m:
      raise names.CellError(f'not a CASME II subject: {raw!r}')
    number = int(m.group(1))
  return f'sub{number:02d}'


def match_key(subject_: str, sample: str) -> tuple[str, str]:
  """(subject, sample) spelled to match across spellings (case, spaces, `1` == `sub01`)."""
  return subject(subject_), str(sample).strip().lower()


# (samples, problems, source) from the copy under manual_dir and its spreadsheet.
find_samples: samples.FindSamples = samples.annotated_finder(NAME)
