"""What a build produced: counts per subject and label, skipped samples and why, duplicate
rows, notes."""

from __future__ import annotations

import collections
import dataclasses
import re

from datasets.common.labels import COMPOSITE_CLASSES


@dataclasses.dataclass
class BuildReport:
  name: str
  source: str = ''
  built: int = 0
  subjects: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  emotions: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  composite: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  databases: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  # rows repeating a sample built from its first row: no sample left out
  duplicates: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  notes: list[tuple[str, str]] = dataclasses.field(default_factory=list)

  def add(self, subject: str, emotion: str, composite_label: int, database: str) -> None:
    self.built += 1
    self.subjects[subject] += 1
    self.emotions[emotion] += 1
    self.composite[COMPOSITE_CLASSES[composite_label] if composite_label >= 0 else '-'] += 1
    self.databases[database] += 1

  def metadata(self) -> dict:
    """JSON-friendly summary stored in the dataset's metadata."""
    return {
      'source': self.source,
      'num_examples': self.built,
      'skipped': [{'sample': s, 'reason': r} for s, r in self.skipped],
      'duplicates': [{'sample': s, 'reason': r} for s, r in self.duplicates],
      'notes': [{'sample': s, 'note': n} for s, n in self.notes],
    }

  def format(self) -> str:
    lines = [
      f'{self.name}: {self.built} examples built' + (f' from {self.source}' if self.source else '')
    ]
    if len(self.databases) > 1:
      lines.append('  per database: ' + _counts(self.databases))
    lines.append(f'  per subject ({len(self.subjects)}): ' + _counts(self.subjects))
    lines.append('  per emotion: ' + _counts(self.emotions))
    lines.append('  per composite class: ' + _counts(self.composite))
    if self.notes:
      lines.append(f'  notes ({len(self.notes)}; built anyway):')
      lines += [f'    {s}: {n}' for s, n in self.notes]
    if self.duplicates:
      lines.append(f'  duplicate rows ({len(self.duplicates)}; their samples built once):')
      lines += [f'    {s}: {r}' for s, r in self.duplicates]
    if self.skipped:
      entries = [dict(sample=s) for s, _ in self.skipped]
      lines.append(f'  SKIPPED ({skipped_count(entries)} samples):')
      lines += [f'    {s}: {_short(r)}' for s, r in self.skipped]
    else:
      lines.append('  skipped: none')
    return '\n'.join(lines)


def skipped_count(skipped: list) -> int:
  """Samples a build left out, from its metadata's `skipped` entries ({'sample': ...}): an
  entry 'casme2: 126 listed sample(s)' (the composite's listed samples missing from a copy)
  counts 126, any other 1."""
  count = 0
  for entry in skipped:
    found = re.search(r'(\d+) listed sample', str(entry.get('sample', '')))
    count += int(found[1]) if found else 1
  return count


def _counts(counter: collections.Counter) -> str:
  return ', '.join(f'{k} {v}' for k, v in sorted(counter.items())) or 'none'


def _short(text: str, limit: int = 400) -> str:
  """A long reason cut for the console (the dataset's metadata keeps it whole)."""
  return text if len(text) <= limit else text[:limit] + ' ...'
