"""Synthetic micro-expression databases in the exact on-disk layouts of the real ones.

    python -m datasets.synthetic --database all --out synthetic_data [--subjects 4] [--seed 0]

writes (each folder is a valid --manual_dir for its builder; OUT itself for `megc2019`):

    OUT/casme2/CASME2-coding-20140508.xlsx
    OUT/casme2/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg ...        colour JPEG, unpadded numbers
    OUT/samm/SAMM_Micro_FACS_Codes_v2.xlsx
    OUT/samm/SAMM/006/006_1_2/006_05562.jpg ...                         grayscale JPEG
    OUT/smic/SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image012345.bmp colour BMP, 6 digits
    OUT/megc2019_flow_images/combined_3_class2_for_optical_flow.csv
    OUT/megc2019_flow_images/combined_datasets_whole/sub01_EP02_01f .png 28x28 RGB = u, v, strain

`--database casme2|samm|smic|flow_images` writes only OUT/<its folder>.

Subjects and sample names come from datasets/megc2019/megc2019_cde_samples.csv (the first N
subjects of each database in that list, ALL their composite samples), plus samples outside
the composite (EXTRA_SAMPLES) and the quirks of the real copies (QUIRKS). SMIC folders use the
real, unpadded ids (s1, s1_ne_01) where the composite list writes s01, s01_ne_01.

Frames are drawn faces (shape, position, brightness and skin texture differ per subject). Between
onset and apex a smooth local displacement field, chosen by the emotion, warps the face
(ACTIONS: brows down and inward for every negative emotion, lip corners up for happiness,
brows up and jaw drop for surprise...); frames in between follow a smooth ramp up to the apex
and back to rest at the offset, with sensor noise and sub-pixel head jitter on every frame.
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
import time
import zlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import openpyxl

from hfa_jax.preprocess import encode_png, flow_image

COMPOSITE_CSV = Path(__file__).resolve().parent / 'megc2019' / 'megc2019_cde_samples.csv'
DATABASES = ('casme2', 'samm', 'smic', 'flow_images')
FOLDERS = {
  'casme2': 'casme2',
  'samm': 'samm',
  'smic': 'smic',
  'flow_images': 'megc2019_flow_images',
}
CASME2_XLSX = 'CASME2-coding-20140508.xlsx'
SAMM_XLSX = 'SAMM_Micro_FACS_Codes_v2.xlsx'
FLOW_CSV = 'combined_3_class2_for_optical_flow.csv'
FLOW_PNG_DIR = 'combined_datasets_whole'
FLOW_CSV_HEADER = ['dataset', 'sub', 'filename_o', 'label', 'apex', 'imagename', 'sub_filename']
LABELS = {'negative': 0, 'positive': 1, 'surprise': 2}
FRAME_SIZE = {'casme2': (160, 128), 'samm': (144, 112), 'smic': (128, 112)}  # (width, height)
CASME2_HEADER = [
  'Subject',
  'Filename',
  None,
  'OnsetFrame',
  'ApexFrame',
  'OffsetFrame',
  None,
  'Action Units',
  'Estimated Emotion',
]
SAMM_HEADER = [
  'Subject',
  'Filename',
  'Inducement Code',
  'Onset Frame',
  'Apex Frame',
  'Offset Frame',
  'Duration',
  'Micro',
  'Action Units',
  'Estimated Emotion',
  'Objective Classes',
  'Notes',
]
SAMM_PREAMBLE_ROWS = 13

# Native emotion names drawn for a composite label (real spellings of each database).
NATIVE = {
  'casme2': {
    'negative': ('disgust', 'repression'),
    'positive': ('happiness',),
    'surprise': ('surprise',),
  },
  'samm': {
    'negative': ('Anger', 'Anger', 'Contempt', 'Disgust', 'Fear', 'Sadness'),
    'positive': ('Happiness',),
    'surprise': ('Surprise',),
  },
  'smic': {'negative': ('negative',), 'positive': ('positive',), 'surprise': ('surprise',)},
}
# Samples outside the MEGC2019 composite: (database, subject index, name, emotion, apex quirk);
# apex quirk '/' writes '/' as the apex cell, 'after_offset' an apex 2 frames after the offset.
EXTRA_SAMPLES = (
  ('casme2', 0, 'EP03_09', 'others', None),
  ('casme2', 1, 'EP08_07f', 'fear', None),
  ('casme2', 2, 'EP15_05', 'sadness', '/'),
  ('samm', 0, '{sub}_4_9', 'Other', None),
  ('samm', 1, '{sub}_2_11', 'Others', None),
  ('samm', 2, '{sub}_3_12', 'Anger', 'after_offset'),
)
QUIRKS = {
  'casme2': [
    'frame numbers unpadded; the first clip runs across img99 -> img100',
    'two extra frames before onset and after offset on disk',
    'Subject cells are text with 2 digits ("01"); two blank-header columns',
    "one ApexFrame is '/' (EP15_05, sadness)",
    'one Action Units cell is a number',
    'stray Thumbs.db in the first clip, .DS_Store in the first subject folder',
  ],
  'samm': [
    '13 free-text rows before the header on row 14 (two of them blank)',
    'Subject cells alternate between numbers (6) and text ("006")',
    "emotions include 'Other' and 'Others'",
    'one apex after its offset frame (<sub>_3_12 of the third subject)',
    'frame numbers padded to 5 digits, one clip to 4 (<sub>_NNNN.jpg)',
  ],
  'smic': [
    'folders use unpadded subject ids s1, s2 (the composite list: s01, s02)',
    'no annotation file: onset = first frame, offset = last, apex in the middle',
    'a non_micro folder beside micro in the first subject; a stray Thumbs.db',
  ],
  'flow_images': ['PNG names have a space before .png', 'only composite samples'],
}


# ----------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Sample:
  """One synthetic clip. Frame numbers are absolute; apex_cell is what the sheet says."""

  database: str
  subject: str  # the composite list's id: sub01, 006, s01
  name: str  # the composite list's sample name: EP02_01f, 006_1_2, s01_ne_01
  emotion: str  # native emotion as written in the database
  label: str | None  # composite label, None outside the composite
  onset: int
  apex: int  # the frame where the motion peaks
  offset: int
  first: int  # first frame on disk
  last: int  # last frame on disk
  apex_cell: object = None  # the spreadsheet's apex cell when it differs from apex


def _rng(*keys) -> np.random.Generator:
  return np.random.default_rng(zlib.crc32('/'.join(map(str, keys)).encode()))


def composite_rows() -> list[dict]:
  with open(COMPOSITE_CSV, newline='') as f:
    return list(csv.DictReader(f))


def smic_folder_id(composite_id: str) -> str:
  """'s01' -> 's1', 's01_ne_01' -> 's1_ne_01' (the real SMIC folders are unpadded)."""
  head, _, tail = composite_id.partition('_')
  number = head[1:]
  return f's{int(number)}' + (f'_{tail}' if tail else '')


def plan(database: str, subjects: int = 4, seed: int = 0) -> list[Sample]:
  """The samples of one synthetic database (casme2, samm or smic), composite ones first."""
  rows = [r for r in composite_rows() if r['database'] == database]
  chosen = list(dict.fromkeys(r['subject'] for r in rows))[:subjects]
  samples = []
  for index, row in enumerate(r for r in rows if r['subject'] in chosen):
    rng = _rng(seed, database, row['sample'])
    emotion = str(rng.choice(NATIVE[database][row['label']]))
    samples.append(
      _timing(
        database,
        row['subject'],
        row['sample'],
        emotion,
        row['label'],
        rng,
        cross_100=(index == 0 and database == 'casme2'),
      )
    )
  for db, subject_index, name, emotion, apex_quirk in EXTRA_SAMPLES:
    if db != database or subject_index >= len(chosen):
      continue
    subject = chosen[subject_index]
    name = name.format(sub=subject)
    sample = _timing(database, subject, name, emotion, None, _rng(seed, database, name))
    if apex_quirk == 'after_offset':  # the frame exists on disk: only the range is wrong
      sample = dataclasses.replace(sample, apex_cell=sample.offset + 2, last=sample.offset + 2)
    elif apex_quirk == '/':
      sample = dataclasses.replace(sample, apex_cell='/')
    samples.append(sample)
  return samples


def _timing(database, subject, name, emotion, label, rng, cross_100=False) -> Sample:
  if database == 'smic':  # whole clip is the ME: onset first, offset last, peak in the middle
    n = int(rng.integers(9, 12))
    first = int(rng.integers(1000, 90000))
    return Sample(
      database,
      subject,
      name,
      emotion,
      label,
      first,
      first + (n - 1) // 2,
      first + n - 1,
      first,
      first + n - 1,
    )
  rise, fall = int(rng.integers(4, 7)), int(rng.integers(4, 7))
  if cross_100:
    onset = 97
  elif database == 'casme2':
    onset = int(rng.integers(1, 300))
  else:
    onset = int(rng.integers(1200, 9000))
  return Sample(
    database,
    subject,
    name,
    emotion,
    label,
    onset,
    onset + rise,
    onset + rise + fall,
    max(onset - 2, 1),
    onset + rise + fall + 2,
  )


# ----------------------------------------------------------------------------- drawing
# Landmarks in face units (x: fraction of the half width, y: of the half height).
LANDMARKS = {
  'brow': (0.40, -0.42),
  'eye': (0.38, -0.20),
  'lid': (0.38, -0.14),
  'nose': (0.0, 0.10),
  'corner': (0.36, 0.47),
  'chin': (0.0, 0.64),
}
# An action: (landmark, displacement of the left-side point in units of `amp`, sigma in
# half widths). Mirrored (dx -> -dx) on the right side for paired landmarks.
ACTIONS = {
  'brows_down_in': [('brow', (0.7, 1.0), 0.30)],
  'brows_up': [('brow', (0.0, -1.2), 0.30)],
  'lip_corners_up': [('corner', (-0.5, -1.1), 0.25)],
  'lip_corners_down': [('corner', (0.0, 0.9), 0.25)],
  'jaw_drop': [('chin', (0.0, 1.4), 0.40)],
  'nose_wrinkle': [('nose', (0.0, -0.8), 0.20)],
  'lip_press': [('corner', (0.8, 0.0), 0.22)],
  'lids_tighten': [('lid', (0.0, -0.7), 0.18)],
}
EMOTION_ACTIONS = {
  'happiness': ['lip_corners_up'],
  'positive': ['lip_corners_up'],
  'surprise': ['brows_up', 'jaw_drop'],
  'negative': ['brows_down_in'],
  'disgust': ['brows_down_in', 'nose_wrinkle'],
  'repression': ['brows_down_in', 'lip_press'],
  'anger': ['brows_down_in', 'lids_tighten'],
  'contempt': ['brows_down_in', 'lip_press'],
  'fear': ['brows_down_in', 'lids_tighten'],
  'sadness': ['brows_down_in', 'lip_corners_down'],
  'others': ['lids_tighten'],
  'other': ['lids_tighten'],
}


@dataclass(frozen=True)
class Look:
  """A subject's face: frame size, face ellipse (centre, half axes), base image."""

  width: int
  height: int
  cx: float
  cy: float
  ax: float
  ay: float
  base: np.ndarray  # float32 (height, width), the face at rest


@functools.lru_cache(maxsize=64)
def subject_look(database: str, subject: str, seed: int) -> Look:
  """Draw a subject's face at rest; differs per subject in shape, position and brightness."""
  width, height = FRAME_SIZE[database]
  rng = _rng(seed, 'look', database, subject)
  ay = height * rng.uniform(0.40, 0.45)
  ax = ay * rng.uniform(0.72, 0.84)
  cx = width / 2 + rng.uniform(-0.06, 0.06) * width
  cy = height / 2 + rng.uniform(-0.03, 0.03) * height
  skin, background = rng.uniform(120, 190), rng.uniform(25, 80)
  dark = skin * rng.uniform(0.25, 0.45)
  s = 4  # draw at 4x and shrink: anti-aliased shapes
  canvas = np.full((height * s, width * s), background, np.float32)

  def pt(x, y):
    return int(round((cx + x * ax) * s)), int(round((cy + y * ay) * s))

  def axes(a, b):
    return int(round(a * ax * s)), int(round(b * ay * s))

  cv2.ellipse(canvas, pt(0, 0), axes(1, 1), 0, 0, 360, skin, -1)
  brow_w, eye_h = rng.uniform(0.20, 0.28), rng.uniform(0.05, 0.08)
  for side in (-1, 1):
    bx, by = LANDMARKS['brow']
    cv2.line(
      canvas,
      pt(side * (bx - brow_w), by + 0.03),
      pt(side * (bx + brow_w), by - 0.01),
      dark,
      int(rng.uniform(0.05, 0.08) * ay * s),
    )
    ex, ey = LANDMARKS['eye']
    cv2.ellipse(canvas, pt(side * ex, ey), axes(0.17, eye_h), 0, 0, 360, skin * 1.15, -1)
    cv2.circle(canvas, pt(side * ex, ey), int(eye_h * 0.9 * ay * s), dark, -1)
  nx, ny = LANDMARKS['nose']
  cv2.line(canvas, pt(0, ny - 0.25), pt(0.05, ny + 0.05), skin * 0.8, int(0.03 * ay * s))
  cv2.ellipse(canvas, pt(0, ny + 0.06), axes(0.12, 0.04), 0, 0, 180, skin * 0.6, int(0.03 * ay * s))
  mouth_w = LANDMARKS['corner'][0]
  cv2.ellipse(canvas, pt(0, LANDMARKS['corner'][1]), axes(mouth_w, 0.05), 0, 0, 360, dark * 1.4, -1)
  cv2.line(canvas, pt(-mouth_w, 0.47), pt(mouth_w, 0.47), dark, int(0.025 * ay * s))
  base = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA)
  texture = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 1.2)
  base += texture / texture.std() * rng.uniform(7, 12)
  return Look(width, height, float(cx), float(cy), float(ax), float(ay), base)


def displacement(look: Look, emotion: str, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
  """The apex displacement field (dx, dy), float32 (height, width) each, in pixels."""
  yy, xx = np.mgrid[0 : look.height, 0 : look.width].astype(np.float32)
  dx, dy = np.zeros_like(xx), np.zeros_like(xx)
  amp = 0.03 * look.ay * amplitude
  for action in EMOTION_ACTIONS[emotion.lower()]:
    for landmark, (ux, uy), sigma in ACTIONS[action]:
      lx, ly = LANDMARKS[landmark]
      for side in (-1, 1) if lx else (0,):
        x0, y0 = look.cx + side * lx * look.ax, look.cy + ly * look.ay
        bump = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * (sigma * look.ax) ** 2))
        dx += (-side if side else 1) * ux * amp * bump
        dy += uy * amp * bump
  return dx, dy


def intensity(sample: Sample, frame: int) -> float:
  """Expression strength at a frame: 0 at rest, smooth ramp to 1 at the apex, back by offset."""
  if frame <= sample.onset or frame >= sample.offset:
    return 0.0
  if frame <= sample.apex:
    x = (frame - sample.onset) / max(sample.apex - sample.onset, 1)
  else:
    x = (sample.offset - frame) / max(sample.offset - sample.apex, 1)
  return float(np.sin(0.5 * np.pi * x) ** 2)


def render_clip(
  sample: Sample, seed: int, frames: list[int] | None = None
) -> dict[int, np.ndarray]:
  """uint8 grayscale frames (height, width) of a sample, keyed by frame number."""
  look = subject_look(sample.database, sample.subject, seed)
  rng = _rng(seed, 'clip', sample.database, sample.name)
  dx, dy = displacement(look, sample.emotion, rng.uniform(0.8, 1.25))
  yy, xx = np.mgrid[0 : look.height, 0 : look.width].astype(np.float32)
  out = {}
  for number in frames if frames is not None else range(sample.first, sample.last + 1):
    t = intensity(sample, number)
    jx, jy = rng.normal(0, 0.08, 2)
    map_x = (xx - t * dx - jx).astype(np.float32)
    map_y = (yy - t * dy - jy).astype(np.float32)
    image = cv2.remap(look.base, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    image += rng.normal(0, 1.5, image.shape).astype(np.float32)
    out[number] = np.clip(image, 0, 255).astype(np.uint8)
  return out


def _colour(gray: np.ndarray) -> np.ndarray:
  """A skin-tinted BGR image from a grayscale one."""
  return np.dstack([gray * 0.78, gray * 0.88, gray * 1.0]).clip(0, 255).astype(np.uint8)


def _write(path: Path, image: np.ndarray) -> None:
  if not cv2.imwrite(str(path), image):
    raise OSError(f'could not write {path}')


# ----------------------------------------------------------------------------- writers
AU = {
  'happiness': ('12', 'R12', '6+12'),
  'disgust': ('4+9', 'L10', '4+L10'),
  'repression': ('14', '17', '15+17'),
  'surprise': ('1+2', '1+2+26', '5+26'),
  'others': ('7', 'L2', '45'),
  'fear': ('4+7', '20'),
  'sadness': ('1+4+15', '15'),
  'anger': ('4+7', '4', '7+23'),
  'contempt': ('R14', 'L14'),
  'other': ('7', 'R2'),
  'negative': ('',),
  'positive': ('',),
}


def _action_units(sample: Sample, rng: np.random.Generator) -> str:
  return str(rng.choice(AU[sample.emotion.lower()]))


def write_casme2(out: Path, subjects: int, seed: int) -> list[Sample]:
  samples = plan('casme2', subjects, seed)
  root = out / 'CASME2_RAW_selected'
  wb = openpyxl.Workbook()
  ws = wb.active
  ws.title = 'Sheet1'
  ws.append(CASME2_HEADER)
  for i, s in enumerate(sorted(samples, key=lambda s: (s.subject, s.name))):
    rng = _rng(seed, 'au', s.name)
    au = 4 if i == 1 else _action_units(s, rng)  # one numeric cell, as real sheets have
    apex = s.apex_cell if s.apex_cell is not None else s.apex
    ws.append([s.subject[3:], s.name, None, s.onset, apex, s.offset, None, au, s.emotion])
  for s in samples:
    clip = root / s.subject / s.name
    clip.mkdir(parents=True, exist_ok=True)
    for number, gray in render_clip(s, seed).items():
      _write(clip / f'img{number}.jpg', _colour(gray))
  first = samples[0]
  (root / first.subject / first.name / 'Thumbs.db').write_bytes(b'\xd0\xcf\x11\xe0 not an image')
  (root / first.subject / '.DS_Store').write_bytes(b'\x00\x00\x00\x01Bud1')
  wb.save(out / CASME2_XLSX)
  return samples


SAMM_PREAMBLE = [
  'SAMM - Spontaneous Actions and Micro-Movements: micro-expression FACS codes (SYNTHETIC)',
  'Generated by datasets/synthetic.py for tests; no real person is shown.',
  None,
  'Columns: Subject, Filename, Inducement Code, Onset/Apex/Offset Frame, Duration, ...',
  'Frame numbers are absolute frame numbers of the 200 fps recordings.',
  'Action Units are FACS codes: L = left, R = right, A/B/C/D/E = intensity.',
  'Estimated Emotion is based on the AUs and the inducement.',
  'Objective Classes follow Davison et al. (2018).',
  None,
  'Notes column: free text.',
  'Inducement codes refer to the stimulus videos.',
  'Micro: movements shorter than 500 ms.',
  'Version 2',
]
OBJECTIVE = {
  'anger': 1,
  'contempt': 2,
  'disgust': 1,
  'fear': 3,
  'happiness': 4,
  'sadness': 6,
  'surprise': 5,
  'other': 7,
  'others': 7,
}


def write_samm(out: Path, subjects: int, seed: int) -> list[Sample]:
  samples = plan('samm', subjects, seed)
  root = out / 'SAMM'
  wb = openpyxl.Workbook()
  ws = wb.active
  ws.title = 'FACS_Codes'
  assert len(SAMM_PREAMBLE) == SAMM_PREAMBLE_ROWS
  for row, text in enumerate(SAMM_PREAMBLE, start=1):
    if text:
      ws.cell(row=row, column=1, value=text)
  for col, name in enumerate(SAMM_HEADER, start=1):
    ws.cell(row=SAMM_PREAMBLE_ROWS + 1, column=col, value=name)
  for i, s in enumerate(sorted(samples, key=lambda s: (s.subject, s.name))):
    rng = _rng(seed, 'au', s.name)
    subject_cell = int(s.subject) if i % 2 == 0 else s.subject
    apex = s.apex_cell if s.apex_cell is not None else s.apex
    ws.append(
      [
        subject_cell,
        s.name,
        int(s.name.split('_')[1]),
        s.onset,
        apex,
        s.offset,
        s.offset - s.onset + 1,
        'Micro - 1/2',
        _action_units(s, rng),
        s.emotion,
        OBJECTIVE[s.emotion.lower()],
        'Blink at onset' if i == 2 else None,
      ]
    )
  for i, s in enumerate(samples):
    clip = root / s.subject / s.name
    clip.mkdir(parents=True, exist_ok=True)
    digits = 4 if i == 1 else 5
    for number, gray in render_clip(s, seed).items():
      _write(clip / f'{s.subject}_{number:0{digits}d}.jpg', gray)
  wb.save(out / SAMM_XLSX)
  return samples


def write_smic(out: Path, subjects: int, seed: int) -> list[Sample]:
  samples = plan('smic', subjects, seed)
  root = out / 'SMIC_all_raw' / 'HS'
  for s in samples:
    clip = root / smic_folder_id(s.subject) / 'micro' / s.label / smic_folder_id(s.name)
    clip.mkdir(parents=True, exist_ok=True)
    for number, gray in render_clip(s, seed).items():
      _write(clip / f'image{number:06d}.bmp', _colour(gray))
  first = samples[0]
  (
    root
    / smic_folder_id(first.subject)
    / 'micro'
    / first.label
    / smic_folder_id(first.name)
    / 'Thumbs.db'
  ).write_bytes(b'\xd0\xcf\x11\xe0 not an image')
  non_micro = (
    root / smic_folder_id(first.subject) / 'non_micro' / f'{smic_folder_id(first.subject)}_no_01'
  )
  non_micro.mkdir(parents=True, exist_ok=True)
  rest = dataclasses.replace(first, name=f'{first.subject}_no_01', emotion='others')
  for number, gray in render_clip(rest, seed, list(range(first.first, first.first + 5))).items():
    _write(non_micro / f'image{number:06d}.bmp', _colour(gray))
  return samples


def write_flow_images(out: Path, subjects: int, seed: int, size: int = 28) -> list[Sample]:
  """CSV + one {sub}_{filename_o} .png per composite sample (RGB = u, v, strain, 0..255)."""
  png_dir = out / FLOW_PNG_DIR
  png_dir.mkdir(parents=True, exist_ok=True)
  samples = [s for db in ('casme2', 'samm', 'smic') for s in plan(db, subjects, seed) if s.label]
  with open(out / FLOW_CSV, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(FLOW_CSV_HEADER)
    for s in samples:
      frames = render_clip(s, seed, [s.onset, s.apex])
      # the frames are ~128 px; a 64 px TV-L1 grid is plenty for a 28 px image, and fast
      flow = flow_image(frames[s.onset], frames[s.apex], size=size, work_side=64)
      png_name = f'{s.subject}_{s.name} .png'
      _write(png_dir / png_name, to_uint8_rgb(flow)[..., ::-1])  # cv2 writes BGR
      apex_file = {
        'casme2': f'img{s.apex}.jpg',
        'samm': f'{s.subject}_{s.apex:05d}.jpg',
        'smic': f'image{s.apex:06d}.bmp',
      }[s.database]
      writer.writerow(
        [s.database, s.subject, s.name, LABELS[s.label], s.apex, apex_file, f'{s.subject}_{s.name}']
      )
  return samples


def to_uint8_rgb(flow: np.ndarray) -> np.ndarray:
  """(H, W, 3) float -> uint8 RGB, each channel min-max scaled to 0..255 (the STSTNet format)."""
  return encode_png(flow)


WRITERS = {
  'casme2': write_casme2,
  'samm': write_samm,
  'smic': write_smic,
  'flow_images': write_flow_images,
}


# Written beside each synthetic copy: a model card reads it to say that a dataset built from
# the copy is synthetic (datasets.card.is_synthetic).
MARKER = 'SYNTHETIC.txt'
MARKER_TEXT = (
  'Synthetic micro-expression data written by `python -m datasets.synthetic` (hfa_jax): drawn '
  'faces whose local motion depends on the emotion. Not a real database.\n'
)


def generate(database: str, out: str | Path, subjects: int = 4, seed: int = 0) -> Path:
  """Write one synthetic database (or all) under `out`; return the folder written.

  database: casme2, samm, smic, flow_images or all. The folder is out/<FOLDERS[database]>
  (out itself for 'all'), the --manual_dir of its builder.
  """
  if database not in (*DATABASES, 'all'):
    raise ValueError(f'unknown database {database!r}; use one of {DATABASES} or all')
  if subjects < 1:
    raise ValueError(f'subjects must be >= 1, got {subjects}')
  out = Path(out)
  for name in DATABASES if database == 'all' else (database,):
    folder = out / FOLDERS[name]
    folder.mkdir(parents=True, exist_ok=True)
    WRITERS[name](folder, subjects, seed)
    (folder / MARKER).write_text(MARKER_TEXT)
  if database == 'all':
    (out / MARKER).write_text(MARKER_TEXT)
  return out if database == 'all' else out / FOLDERS[database]


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument('--database', required=True, choices=(*DATABASES, 'all'))
  parser.add_argument('--out', required=True, help='folder to write into (created)')
  parser.add_argument('--subjects', type=int, default=4, help='subjects per database')
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  start = time.time()
  folder = generate(args.database, args.out, args.subjects, args.seed)
  names = DATABASES if args.database == 'all' else (args.database,)
  print(f'wrote {folder} in {time.time() - start:.1f} s')
  for name in names:
    samples = (
      [
        s
        for db in ('casme2', 'samm', 'smic')
        for s in plan(db, args.subjects, args.seed)
        if s.label
      ]
      if name == 'flow_images'
      else plan(name, args.subjects, args.seed)
    )
    outside = [f'{s.subject}/{s.name} ({s.emotion})' for s in samples if s.label is None]
    print(
      f'  {FOLDERS[name]}: {len(samples)} samples, '
      f'{len({s.subject for s in samples})} subjects; outside the composite: '
      f'{", ".join(outside) or "none"}'
    )
    for quirk in QUIRKS[name]:
      print(f'    quirk: {quirk}')


if __name__ == '__main__':
  main(sys.argv[1:])
