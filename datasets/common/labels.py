"""Emotion names of each database, their spelling variants, and the MEGC2019 composite classes."""

from __future__ import annotations

import csv
import functools
import pathlib
import re

from datasets.common import names

# Native emotion names, in the index order stored in the `emotion` feature.
EMOTIONS = {
  'casme2': ('happiness', 'disgust', 'repression', 'surprise', 'fear', 'sadness', 'others'),
  'samm': ('anger', 'contempt', 'happiness', 'surprise', 'disgust', 'fear', 'sadness', 'other'),
  'smic': ('negative', 'positive', 'surprise'),
}

# MEGC2019 composite (CDE) classes: the `composite_label` feature.
COMPOSITE_CLASSES = ('negative', 'positive', 'surprise')

# Unambiguous spelling variants seen in the spreadsheets (after lower-casing).
_ALIASES = {
  'casme2': {
    'other': 'others',
    'happy': 'happiness',
    'sad': 'sadness',
    'surprised': 'surprise',
    'disgusted': 'disgust',
    'repressed': 'repression',
  },
  'samm': {
    'others': 'other',
    'happy': 'happiness',
    'sad': 'sadness',
    'surprised': 'surprise',
    'disgusted': 'disgust',
    'angry': 'anger',
  },
  'smic': {'ne': 'negative', 'po': 'positive', 'sur': 'surprise', 'su': 'surprise'},
}

# The MEGC2019 rule from native emotion to composite class (used to report disagreements
# with the explicit sample list, which is what defines the composite).
_COMPOSITE_RULE = {
  'casme2': {'disgust': 0, 'repression': 0, 'happiness': 1, 'surprise': 2},
  'samm': {
    'anger': 0,
    'contempt': 0,
    'disgust': 0,
    'fear': 0,
    'sadness': 0,
    'happiness': 1,
    'surprise': 2,
  },
  'smic': {'negative': 0, 'positive': 1, 'surprise': 2},
}

COMPOSITE_LIST = (
  pathlib.Path(__file__).resolve().parents[1] / 'megc2019' / 'megc2019_cde_samples.csv'
)


def normalize_emotion(database: str, raw) -> str | None:
  """Canonical native emotion name for a spreadsheet cell, or None if unknown."""
  if raw is None:
    return None
  text = re.sub(r'\s+', ' ', str(raw)).strip().lower()
  text = _ALIASES[database].get(text, text)
  return text if text in EMOTIONS[database] else None


def emotion_index(database: str, emotion: str) -> int:
  return EMOTIONS[database].index(emotion)


def composite_by_rule(database: str, emotion: str) -> int:
  """Composite class the MEGC2019 rule gives a native emotion, -1 if none."""
  return _COMPOSITE_RULE[database].get(emotion, -1)


def sample_key(database: str, subject: str, sample: str) -> tuple[str, str, str]:
  """Key that matches a sample across spellings (SMIC `s01` == `s1`, case, spaces)."""
  if database == 'smic':
    return database, names.smic_subject(subject), names.smic_sample(sample)
  if database == 'casme2':
    return database, names.casme2_subject(subject), str(sample).strip().lower()
  if database == 'samm':
    return database, names.samm_subject(subject), str(sample).strip().lower()
  raise ValueError(f'unknown database {database!r}')


class CompositeList(dict):
  """The MEGC2019 CDE sample list: sample key -> composite class index."""

  def __init__(self):
    super().__init__()
    self.names: dict[tuple[str, str, str], tuple[str, str, str]] = {}

  def original(self, key) -> tuple[str, str, str]:
    """The list's own spelling (database, subject, sample) of a key."""
    return self.names.get(key, key)


@functools.lru_cache(maxsize=None)
def composite_list(path: str | None = None) -> CompositeList:
  """Read the list (default: datasets/megc2019/megc2019_cde_samples.csv)."""
  path = pathlib.Path(path) if path else COMPOSITE_LIST
  out = CompositeList()
  with open(path, newline='', encoding='utf-8') as f:
    for row in csv.DictReader(f):
      database = row['database'].strip().lower()
      key = sample_key(database, row['subject'], row['sample'])
      out[key] = COMPOSITE_CLASSES.index(row['label'].strip().lower())
      out.names[key] = (database, row['subject'].strip(), row['sample'].strip())
  return out


def composite_label(database: str, subject: str, sample: str) -> int:
  """Composite class of a sample from the MEGC2019 list, -1 if it is not listed."""
  return composite_list().get(sample_key(database, subject, sample), -1)
