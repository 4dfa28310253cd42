"""Emotion-name matching for any database, and the composite classes every dataset stores.

A database's own emotion names and spelling variants are in datasets/<db>/rules.py
(`EMOTIONS`, `ALIASES`); the MEGC2019 list and rule are in datasets/megc2019/rules.py.
"""

from __future__ import annotations

import re

from datasets.common import registry

# MEGC2019 composite (CDE) classes: the `composite_label` feature of every dataset.
COMPOSITE_CLASSES = ('negative', 'positive', 'surprise')


def normalize_emotion(database: str, raw) -> str | None:
  """Canonical native emotion name for a spreadsheet cell or folder, or None if unknown."""
  if raw is None:
    return None
  rules = registry.rules(database)
  text = re.sub(r'\s+', ' ', str(raw)).strip().lower()
  text = rules.ALIASES.get(text, text)
  return text if text in rules.EMOTIONS else None
