"""What the builders know about the MEGC2019 composite (CDE): its sample list and its rule.

The composite is defined by the explicit list megc2019_cde_samples.csv beside this file
(database, subject, sample, label; 442 samples of CASME II, SAMM and SMIC-HS). The composite's
builder builds the listed samples with the list's labels; the builders of the three databases
label their samples from it too (`label`: `composite_label`, -1 outside the list). The
databases' own rules (datasets/<db>/rules.py) know nothing of the composite.
"""

from __future__ import annotations

import csv
import functools
import pathlib

from datasets.common.labels import COMPOSITE_CLASSES
from datasets.common.samples import Sample, sample_key

# The MEGC2019 rule from native emotion to composite class (used to report disagreements
# with the explicit sample list, which is what defines the composite).
RULE = {
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

COMPOSITE_LIST = pathlib.Path(__file__).resolve().parent / 'megc2019_cde_samples.csv'


def composite_by_rule(database: str, emotion: str) -> int:
  """Composite class the MEGC2019 rule gives a native emotion, -1 if none."""
  return RULE[database].get(emotion, -1)


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


def label(samples: list[Sample]) -> None:
  """Set each sample's composite_label from the list (-1 if it is not listed)."""
  for s in samples:
    s.composite_label = composite_label(s.database, s.subject, s.sample)
