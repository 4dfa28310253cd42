"""What the builders know about SMIC-HS: emotions, spellings, folder layout, how samples are found.

SMIC has no annotation file: each clip folder is a sample, its label is the folder it sits in
(`sN/micro/<label>/<clip>/`), onset = first frame, offset = last frame, and the apex is chosen
by the config's strategy. The machinery shared with the other databases is in datasets/common/.
"""

from __future__ import annotations

import re

from hfa_jax import preprocess

from datasets.common import labels, layout, names, samples
from datasets.common.samples import Problem, Sample

NAME = 'smic'
TITLE = 'SMIC-HS'

# Native emotion names (the label folders), in the index order stored in the `emotion` feature.
EMOTIONS = ('negative', 'positive', 'surprise')
# Abbreviations used in the clip names (s1_ne_01, s1_po_01, s1_sur_01).
ALIASES = {'ne': 'negative', 'po': 'positive', 'sur': 'surprise', 'su': 'surprise'}

# Layout: a folder of `sN/` folders holding `micro/{negative,positive,surprise}/` (inside the
# release's `HS/`; `VIS/` and `NIR/` are ignored, see keep_roots).
LAYOUT = """\
  DIR/                                  (e.g. SMIC_all_cropped/ or SMIC_all_raw/)
    HS/
      s1/micro/negative/s1_ne_01/image012345.bmp ...
               positive/s1_po_01/...
               surprise/s1_sur_01/...
      s2/ ..."""
SUBJECT_DIR = re.compile(r'(?i)^s\d+$')
# A subject folder is recognised by holding a `micro` folder.
SUBJECT_CHILD = re.compile(r'(?i)^micro\Z')
# A clip folder: `s1_ne_01`.
CLIP_DIR = re.compile(r'(?i)^s\d+_')
# No spreadsheet.
SHEET_NAMES = None


def keep_roots(roots: list, top) -> list:
  """Of the folders holding subject folders, those of the high-speed camera: `VIS` and `NIR`
  copies are dropped, and a copy inside an `HS` folder is preferred."""
  parts = lambda r: {p.lower() for p in r.relative_to(top.parent).parts}
  roots = [r for r in roots if not parts(r) & {'vis', 'nir'}]
  hs = [r for r in roots if 'hs' in parts(r)]
  return hs or roots


def subject(raw) -> str:
  """`s1` from 's1', 's01', 'S01', 1."""
  number = names.integer(raw)
  if number is None:
    m = re.fullmatch(r's\s*0*(\d+)', str(raw).strip().lower())
    if not m:
      raise names.CellError(f'not a SMIC subject: {raw!r}')
    number = int(m.group(1))
  return f's{number}'


def sample(raw) -> str:
  """`s1_ne_01` from 's01_ne_01' (subject part without zero padding, lower case)."""
  text = str(raw).strip().lower()
  return re.sub(r'^s0*(\d+)_', r's\1_', text)


def match_key(subject_: str, sample_: str) -> tuple[str, str]:
  """(subject, sample) spelled to match across spellings (`s01` == `s1`, case, spaces)."""
  return subject(subject_), sample(sample_)


def find_samples(manual_dir, *, apex: str = 'middle', missing_apex: str = 'skip') -> samples.Found:
  """(samples, problems, source) from the `sN/micro/<label>/<clip>` folders, the apex by the
  `apex` strategy (samples.FindSamples; `missing_apex` does not apply: SMIC has no apex
  annotation)."""
  del missing_apex
  copy = layout.find_copy(NAME, manual_dir)
  found, problems = from_copy(copy, apex)
  return found, problems, f'{samples.describe(copy)}, apex: {apex}'


def from_copy(
  copy: layout.Copy, apex_strategy: str = 'middle'
) -> tuple[list[Sample], list[Problem]]:
  """SMIC-HS samples from `sN/micro/<label>/<clip>/` folders: onset first frame, offset last,
  apex by `apex_strategy` ('middle' here; others are chosen from the frames when the flow is
  computed)."""
  found: list[Sample] = []
  problems: list[Problem] = []
  for subject_dir in copy.subjects:
    subject_ = subject(subject_dir.name)
    micro = samples.child(subject_dir, 'micro')
    if micro is None:  # a subject with non-micro clips only: none of its clips is a sample
      continue
    for label_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
      emotion = labels.normalize_emotion(NAME, label_dir.name)
      for clip in sorted(p for p in label_dir.iterdir() if p.is_dir()):
        key = f'smic/{subject_}/{clip.name}'
        match = samples.sample_key(NAME, subject_, clip.name)
        if emotion is None:
          problems.append(
            Problem(
              key,
              f'unknown emotion folder {label_dir.name!r} '
              f'({label_dir}); expected negative, positive or '
              'surprise',
              match,
            )
          )
          continue
        try:
          frames = samples.frames(clip)
        except (OSError, preprocess.PreprocessError) as e:
          problems.append(Problem(key, str(e), match))
          continue
        if len(frames) < 2:
          problems.append(
            Problem(
              key, f'{len(frames)} image files in {clip}; need at least onset and apex', match
            )
          )
          continue
        numbers = list(frames)
        onset, offset = numbers[0], numbers[-1]
        apex, apex_path = -1, None
        if apex_strategy == 'middle':
          apex = numbers[preprocess.pick_apex(numbers, 'middle')]
          apex_path = str(frames[apex])
        found.append(
          Sample(
            database=NAME,
            subject=subject_,
            sample=clip.name,
            emotion=emotion,
            onset_frame=onset,
            apex_frame=apex,
            offset_frame=offset,
            action_units='',
            onset_path=str(frames[onset]),
            apex_path=apex_path,
            frames=() if apex_path else tuple(str(p) for p in frames.values()),
            crop=not copy.cropped,
          )
        )
  return found, problems
