"""What the builders know about the STSTNet/HTNet precomputed MEGC2019 flow images: a CSV and
one 28x28 RGB PNG a sample (format, spellings of the `dataset` column, PNG names, layout).

CSV header: dataset,sub,filename_o,label,apex,imagename,sub_filename (extra columns and column
order do not matter); label 0 negative, 1 positive, 2 surprise. The PNG of a row is looked up
anywhere under the manual folder as `imagename` (with or without `.png`), then
`{sub}_{filename_o} .png` (with the space before `.png` of the original release), then
`{sub}_{filename_o}.png`.
"""

from __future__ import annotations

import csv
import pathlib

from datasets.common import labels, layout, names, registry
from datasets.common.samples import Problem, Sample, sample_key
from datasets.smic import rules as smic

LAYOUT = """\
  DIR/                               (any name; files may sit in subfolders)
    combined_3class.csv              (any .csv with header dataset,sub,filename_o,label,apex,...)
    <images>/sub01_EP02_01f .png     (28x28 RGB: u, v, optical strain, each 0..255)
             006_006_1_2 .png
             s1_s1_ne_01 .png ..."""

REQUIRED = ('dataset', 'sub', 'filename_o', 'label')
# Spellings of the CSV's `dataset` column (letters and digits only, lower case).
_DATABASES = {
  'casme2': 'casme2',
  'casmeii': 'casme2',
  'samm': 'samm',
  'smic': 'smic',
  'smichs': 'smic',
}


def _error(reason: str) -> layout.ManualDirError:
  return layout.expected(LAYOUT, reason)


def _header(path: pathlib.Path) -> list[str] | None:
  try:
    with open(path, newline='', encoding='utf-8-sig') as f:
      first = next(csv.reader(f), None)
  except (OSError, UnicodeDecodeError):
    return None
  header = [c.strip().lower() for c in first or []]
  return header if all(c in header for c in REQUIRED) else None


def find_csv(top: pathlib.Path) -> pathlib.Path:
  csvs = sorted(
    (p for p in top.rglob('*') if p.suffix.lower() == '.csv' and p.is_file()),
    key=lambda p: (len(p.parts), str(p)),
  )
  good = [p for p in csvs if _header(p)]
  if not good:
    tried = ''.join(f'\n  {p}' for p in csvs) or ' none'
    raise _error(
      f'No flow-image CSV (header {",".join(REQUIRED)},...) under {top}. CSV files found:{tried}'
    )
  return good[0]


def find_samples(manual_dir) -> tuple[list[Sample], list[Problem], str]:
  """(samples, problems, source) from the CSV and the PNG files under manual_dir."""
  top = pathlib.Path(manual_dir)
  table = find_csv(top)
  pngs: dict[str, pathlib.Path] = {}
  for path in sorted(top.rglob('*')):
    if path.suffix.lower() == '.png':
      pngs.setdefault(path.name, path)
  samples, problems, seen = [], [], set()
  with open(table, newline='', encoding='utf-8-sig') as f:
    reader = csv.DictReader(f)
    reader.fieldnames = [c.strip().lower() for c in reader.fieldnames]
    for line, row in enumerate(reader, start=2):
      row = {k: (v or '').strip() for k, v in row.items() if k}
      if not any(row.values()):
        continue
      result = _sample(row, f'{table.name} line {line}', pngs)
      if isinstance(result, Problem):
        problems.append(result)
      elif result.key in seen:
        reason = f'duplicate row ({table.name} line {line}); the first row for this sample is used'
        problems.append(Problem(result.key, reason, result.match_key, duplicate=True))
      else:
        seen.add(result.key)
        samples.append(result)
  return samples, problems, f'{table} and {len(pngs)} PNG files under {top}'


def _sample(row: dict, where: str, pngs: dict) -> Sample | Problem:
  database = _DATABASES.get(''.join(ch for ch in row['dataset'].lower() if ch.isalnum()))
  if database is None:
    return Problem(where, f'unknown dataset {row["dataset"]!r}; expected casme2, samm or smic')
  raw_sub, raw_sample = row['sub'], row['filename_o']
  sample = raw_sample
  try:
    subject = registry.rules(database).subject(raw_sub)
  except names.CellError as e:
    return Problem(where, f'{e}; fix the sub column')
  if database == 'smic':  # 's01_ne_01' in the CSV; the frame builder's name is 's1_ne_01'
    sample = smic.sample(sample)
  key = f'{database}/{subject}/{sample}'
  match = sample_key(database, subject, sample)
  label = names.frame_cell(row['label'])
  if label not in (0, 1, 2):
    return Problem(
      key,
      f'unknown label {row["label"]!r} ({where}); expected 0 negative, 1 positive, 2 surprise',
      match,
    )
  image = row.get('imagename', '')
  candidates = [
    image,
    f'{image}.png',
    f'{raw_sub}_{raw_sample} .png',
    f'{raw_sub}_{raw_sample}.png',
  ]
  path = next((pngs[c] for c in candidates if c and c in pngs), None)
  if path is None:
    return Problem(
      key,
      f'no flow image {raw_sub}_{raw_sample} .png (or {image!r}) under the manual folder ({where})',
      match,
    )
  apex = names.frame_cell(row.get('apex'))
  return Sample(
    database=database,
    subject=subject,
    sample=sample,
    emotion=labels.COMPOSITE_CLASSES[label],
    onset_frame=-1,
    apex_frame=-1 if apex is None else apex,
    offset_frame=-1,
    action_units='',
    onset_path='',
    apex_path=None,
    composite_label=label,
    flow_path=str(path),
  )
