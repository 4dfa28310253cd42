"""What the builders know about SAMM: emotions, spellings, folder layout, spreadsheet.

The machinery that applies these rules to any database is in datasets/common/ (layout.py finds
the copy, spreadsheet.py reads the .xlsx, samples.py turns rows into samples).
"""

from __future__ import annotations

import re

from datasets.common import names, samples

NAME = 'samm'
TITLE = 'SAMM'

# Native emotion names, in the index order stored in the `emotion` feature.
EMOTIONS = ('anger', 'contempt', 'happiness', 'surprise', 'disgust', 'fear', 'sadness', 'other')
# Unambiguous spelling variants seen in the spreadsheet (after lower-casing): the FACS-codes
# sheet writes both `Other` and `Others`.
ALIASES = {
  'others': 'other',
  'happy': 'happiness',
  'sad': 'sadness',
  'surprised': 'surprise',
  'disgusted': 'disgust',
  'angry': 'anger',
}

# Layout: a folder of `NNN/` folders holding `NNN_N_N` clip folders.
LAYOUT = """\
  DIR/                                  (any name, may be nested, e.g. SAMM/)
    SAMM_Micro_FACS_Codes_v2.xlsx        (any .xlsx with the SAMM header, preamble rows ok)
    006/
      006_1_2/006_05562.jpg ...
    007/ ..."""
SUBJECT_DIR = re.compile(r'^\d+$')
# A clip folder (and a spreadsheet's Filename cell) starts like this: `006_1_2`.
CLIP_DIR = re.compile(r'^\d+_\d+')
# A subject folder is recognised by holding at least one such child folder.
SUBJECT_CHILD = CLIP_DIR

# Spreadsheet: free-text rows above the header are skipped by the reader (the header row is
# found by its content); Subject cells are numbers (6) or text ('006'). A SAMM sheet is told
# from a CASME II one by its sample names (see CLIP_DIR).
SHEET_NAMES = '006_1_2'


def subject(raw) -> str:
  """`006` from 6, 6.0, '6', '006'."""
  number = names.integer(raw)
  if number is None:
    raise names.CellError(f'not a SAMM subject: {raw!r}')
  return f'{number:03d}'


def match_key(subject_: str, sample: str) -> tuple[str, str]:
  """(subject, sample) spelled to match across spellings (case, spaces, `6` == `006`)."""
  return subject(subject_), str(sample).strip().lower()


# (samples, problems, source) from the copy under manual_dir and its spreadsheet.
find_samples: samples.FindSamples = samples.annotated_finder(NAME)
