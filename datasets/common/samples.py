"""Turn a database copy (+ its spreadsheet) into samples to build, and problems to report.

The machinery for any database with a spreadsheet (CASME II, SAMM); what is particular to a
database (subject spelling, emotion names) comes from datasets/<db>/rules.py, and SMIC, which
has no spreadsheet, finds its samples in datasets/smic/rules.py. Every database's
`find_samples` has one signature, `FindSamples`.

Rules (documented in each builder's README):
- A `/` (or blank) apex is a problem ("missing apex") unless the config asks for
  `missing_apex='middle'`, which uses the middle frame of onset..offset (noted in the summary).
- An apex outside onset..offset, onset after offset, an unknown emotion, a clip folder or an
  onset/apex frame that is not on disk: problems (skipped or stop the build). A duplicate row
  too, though its sample is built from its first row: reported as a duplicate, not skipped.
- An offset frame missing on disk is only noted: the flow uses onset and apex.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Protocol

from hfa_jax import preprocess

from datasets.common import labels, layout, names, registry, spreadsheet
from datasets.common.layout import Copy
from datasets.common.spreadsheet import Row, Sheet


def sample_key(database: str, subject: str, sample: str) -> tuple[str, str, str]:
  """Key that matches a sample across spellings (SMIC `s01` == `s1`, case, spaces)."""
  return (database, *registry.rules(database).match_key(subject, sample))


@dataclasses.dataclass
class Sample:
  """Everything needed to build one example, except its flow."""

  database: str
  subject: str
  sample: str
  emotion: str
  onset_frame: int
  apex_frame: int  # -1 until an apex strategy picks it (SMIC)
  offset_frame: int
  action_units: str
  onset_path: str
  apex_path: str | None  # None: chosen by `apex_strategy` among `frames`
  frames: tuple[str, ...] = ()
  crop: bool = False  # raw (uncropped) release: detect the face
  composite_label: int = -1
  flow_path: str | None = None  # precomputed flow image (flow-image format)
  notes: list[str] = dataclasses.field(default_factory=list)

  @property
  def key(self) -> str:
    return f'{self.database}/{self.subject}/{self.sample}'

  @property
  def match_key(self) -> tuple[str, str, str]:
    return sample_key(self.database, self.subject, self.sample)


@dataclasses.dataclass
class Problem:
  """A sample (or spreadsheet row) that cannot become a correct example."""

  where: str  # sample key or spreadsheet row
  reason: str
  match_key: tuple[str, str, str] | None = None
  duplicate: bool = False  # another row of a sample built from its first: none left out

  def __str__(self) -> str:
    return f'{self.where}: {self.reason}'


# What a database's find_samples returns: the samples to build, the problems met while reading
# (skipped or stopping the build), and a description of the copy (the build's `source`).
Found = tuple[list[Sample], list[Problem], str]


class FindSamples(Protocol):
  """The one signature of every database's `find_samples` (datasets/<db>/rules.py).

  `apex` is SMIC's apex strategy ('middle', or 'max_motion': chosen when the flow is computed);
  `missing_apex` what CASME II and SAMM do with a `/` apex ('skip' it as a problem, or use the
  'middle' frame). A database reads the option it has; the composite passes both to all three.
  """

  def __call__(self, manual_dir, *, apex: str = 'middle', missing_apex: str = 'skip') -> Found: ...


# How a build's `source` says whether the copy's faces come cropped or are detected and cropped
# (datasets.card reads it back into a model's card).
CROPPED, RAW = 'cropped', 'raw: face detected and cropped'


def describe(copy: Copy) -> str:
  """The copy's folder, for a build's `source`."""
  return f'{copy.root} ({CROPPED if copy.cropped else RAW})'


def annotated(database: str, manual_dir, missing_apex: str = 'skip') -> Found:
  """A database with a spreadsheet: (samples, problems, source) from the copy and its sheet."""
  rules = registry.rules(database)
  copy = layout.find_copy(database, manual_dir)
  sheet, tried = spreadsheet.find(pathlib.Path(manual_dir), database)
  if sheet is None:
    found = '\n  '.join([''] + tried) if tried else ' none'
    raise layout.expected(
      rules.LAYOUT,
      f'No {rules.TITLE} annotation spreadsheet (.xlsx with columns '
      f'{", ".join(spreadsheet.REQUIRED)}) found under {manual_dir}. '
      f'Spreadsheets that could not be used:{found}\n'
      '(.xls files must be saved as .xlsx first.)',
    )
  found, problems = from_sheet(copy, sheet, missing_apex)
  return found, problems, f'{describe(copy)}, annotations {sheet.path}'


def annotated_finder(database: str) -> FindSamples:
  """The `find_samples` of a database annotated by a spreadsheet (CASME II, SAMM)."""

  def find_samples(manual_dir, *, apex: str = 'middle', missing_apex: str = 'skip') -> Found:
    """(samples, problems, source) from the copy under manual_dir and its spreadsheet (the
    spreadsheet gives the apex: `apex`, SMIC's strategy, does not apply)."""
    del apex
    return annotated(database, manual_dir, missing_apex)

  return find_samples


def _subject_dirs(copy: Copy, normalize) -> dict[str, pathlib.Path]:
  out = {}
  for folder in copy.subjects:
    try:
      out.setdefault(normalize(folder.name), folder)
    except names.CellError:
      continue
  return out


def child(folder: pathlib.Path, name: str) -> pathlib.Path | None:
  exact = folder / name
  if exact.is_dir():
    return exact
  for child in folder.iterdir():
    if child.is_dir() and child.name.strip().lower() == name.lower():
      return child
  return None


def frames(clip: pathlib.Path) -> dict[int, pathlib.Path]:
  return {f.number: f.path for f in preprocess.list_frames(clip)}


def text(cell) -> str:
  if cell is None:
    return ''
  if isinstance(cell, float) and cell.is_integer():
    cell = int(cell)
  return str(cell).strip()


def from_sheet(
  copy: Copy, sheet: Sheet, missing_apex: str = 'skip'
) -> tuple[list[Sample], list[Problem]]:
  """Samples of CASME II or SAMM from the spreadsheet rows and the frame folders."""
  normalize = registry.rules(copy.database).subject
  subjects = _subject_dirs(copy, normalize)
  samples: list[Sample] = []
  problems: list[Problem] = []
  seen: set[str] = set()
  for row in sheet.rows:
    result = _from_row(copy, row, normalize, subjects, missing_apex)
    if isinstance(result, Problem):
      problems.append(result)
    elif result.key in seen:
      problems.append(
        Problem(
          result.key,
          f'duplicate row ({row.where()}); the first row for this sample is used',
          result.match_key,
          duplicate=True,
        )
      )
    else:
      seen.add(result.key)
      samples.append(result)
  return samples, problems


class _RowError(Exception):
  """Why a spreadsheet row cannot become a sample."""


def _from_row(copy, row: Row, normalize, subjects, missing_apex) -> Sample | Problem:
  database = copy.database
  try:
    subject = normalize(row.subject)
  except names.CellError as e:
    return Problem(row.where(), f'{e}; fix the Subject cell')
  sample = text(row.filename)
  if not sample:
    return Problem(row.where(), 'blank Filename cell')
  key = f'{database}/{subject}/{sample}'
  match = sample_key(database, subject, sample)
  notes: list[str] = []
  try:
    emotion = _emotion(database, row)
    onset, apex, offset = _onset_apex_offset(row, missing_apex, notes)
    clip, on_disk = _clip_frames(copy, subjects, (subject, sample), (onset, apex, offset), notes)
  except _RowError as e:
    return Problem(key, f'{e} ({row.where()})', match)
  return Sample(
    database=database,
    subject=subject,
    sample=clip.name,
    emotion=emotion,
    onset_frame=onset,
    apex_frame=apex,
    offset_frame=offset,
    action_units=text(row.action_units),
    onset_path=str(on_disk[onset]),
    apex_path=str(on_disk[apex]),
    crop=not copy.cropped,
    notes=notes,
  )


def _emotion(database: str, row: Row) -> str:
  """The row's native emotion name; _RowError if the database has no such emotion."""
  emotion = labels.normalize_emotion(database, row.emotion)
  if emotion is None:
    known = ', '.join(registry.rules(database).EMOTIONS)
    raise _RowError(f'unknown emotion {row.emotion!r}; known: {known}')
  return emotion


def _onset_apex_offset(row: Row, missing_apex: str, notes: list[str]) -> tuple[int, int, int]:
  """The row's frame numbers, a `/` apex replaced by the middle frame if asked (noted)."""
  onset, apex, offset = (names.frame_cell(c) for c in (row.onset, row.apex, row.offset))
  if onset is None or offset is None:
    raise _RowError(f'onset {row.onset!r} / offset {row.offset!r} is not a frame number')
  if onset > offset:
    raise _RowError(f'onset {onset} is after offset {offset}')
  if apex is None:
    if missing_apex != 'middle':
      raise _RowError(
        f'apex is {row.apex!r}, not a frame number; build with '
        '--missing_apex middle to use the middle frame of onset..offset'
      )
    apex = (onset + offset) // 2
    notes.append(f'apex {row.apex!r} replaced by the middle frame {apex}')
  if not onset <= apex <= offset:
    raise _RowError(
      f'apex {apex} lies outside onset..offset {onset}..{offset}; '
      'correct the spreadsheet row to include it'
    )
  return onset, apex, offset


def _clip_frames(
  copy: Copy,
  subjects: dict[str, pathlib.Path],
  subject_sample: tuple[str, str],
  onset_apex_offset: tuple[int, int, int],
  notes: list[str],
) -> tuple[pathlib.Path, dict[int, pathlib.Path]]:
  """The sample's clip folder and its frames on disk (number -> path); _RowError if the
  folder, the onset or the apex frame is missing (a missing offset frame is only noted)."""
  subject, sample = subject_sample
  onset, apex, offset = onset_apex_offset
  subject_dir = subjects.get(subject)
  clip = child(subject_dir, sample) if subject_dir else None
  if clip is None:
    title = registry.rules(copy.database).TITLE
    raise _RowError(f'clip folder {copy.root / subject / sample} not found in the {title} copy')
  try:
    on_disk = frames(clip)
  except (OSError, preprocess.PreprocessError) as e:
    raise _RowError(str(e)) from None
  span = f'{min(on_disk)}..{max(on_disk)}'
  for what, number in (('onset', onset), ('apex', apex)):
    if number not in on_disk:
      raise _RowError(f'{what} frame {number} is missing from {clip} (frames on disk: {span})')
  if offset not in on_disk:
    notes.append(f'offset frame {offset} not on disk (frames {span})')
  return clip, on_disk
