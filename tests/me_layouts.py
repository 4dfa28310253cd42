"""Tiny hand-made database copies in the real layouts, with their quirks, for builder tests.

Each writer takes explicit rows so that a test states exactly the quirk it checks. Frames are
48x48 textured images; the apex frame is the onset shifted by a pixel or two.
"""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import openpyxl


def texture(seed: int, side: int = 48) -> np.ndarray:
  rng = np.random.default_rng(seed)
  image = cv2.GaussianBlur(rng.uniform(0, 255, (side, side)).astype(np.float32), (0, 0), 2)
  image = (image - image.min()) / (np.ptp(image) + 1e-6) * 255
  return image.astype(np.uint8)


def write_clip(
  folder: pathlib.Path, numbers, name: str = 'img{n}.jpg', apex=None, seed: int = 0, shift: int = 2
) -> None:
  """Frames `numbers` of one clip; frames from `apex` on are shifted right by `shift` px."""
  folder.mkdir(parents=True, exist_ok=True)
  base = texture(seed)
  for n in numbers:
    image = np.roll(base, shift, axis=1) if apex is not None and n >= apex else base
    cv2.imwrite(str(folder / name.format(n=n)), image)


def write_sheet(path: pathlib.Path, header, rows, preamble=()) -> None:
  book = openpyxl.Workbook()
  ws = book.active
  for line in preamble:
    ws.append(list(line))
  ws.append(list(header))
  for row in rows:
    ws.append(list(row))
  path.parent.mkdir(parents=True, exist_ok=True)
  book.save(path)


CASME2_HEADER = (
  'Subject',
  'Filename',
  None,
  'OnsetFrame',
  'ApexFrame',
  'OffsetFrame',
  None,
  'Action Units',
  'Estimated Emotion',
)
SAMM_HEADER = (
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
)


def casme2(
  root: pathlib.Path,
  rows,
  *,
  folder='CASME2_RAW_selected',
  nested=False,
  cropped=False,
  sheet='CASME2-coding-20140508.xlsx',
  frames=None,
) -> pathlib.Path:
  """rows: (subject cell, filename, onset, apex, offset, aus, emotion).
  frames: {filename: numbers on disk} overriding onset..offset."""
  top = root / folder
  data = top / folder if nested else top
  name = 'reg_img{n}.jpg' if cropped else 'img{n}.jpg'
  for i, (subject, filename, onset, apex, offset, _, _) in enumerate(rows):
    sub = subject if str(subject).startswith('sub') else f'sub{int(subject):02d}'
    numbers = (frames or {}).get(filename, range(int(onset), int(offset) + 1))
    apex_n = apex if isinstance(apex, int) else None
    write_clip(data / sub / filename, numbers, name, apex_n, seed=i)
    (data / sub / filename / 'Thumbs.db').write_bytes(b'junk')
  write_sheet(
    top / sheet,
    CASME2_HEADER,
    [(s, f, None, on, ap, off, None, au, em) for s, f, on, ap, off, au, em in rows],
  )
  return root


def samm(
  root: pathlib.Path, rows, *, folder='SAMM', sheet='SAMM_Micro_FACS_Codes_v2.xlsx', frames=None
) -> pathlib.Path:
  """rows: (subject cell, filename, onset, apex, offset, aus, emotion)."""
  top = root / folder
  for i, (subject, filename, onset, apex, offset, _, _) in enumerate(rows):
    sub = f'{int(subject):03d}'
    numbers = (frames or {}).get(filename, range(int(onset), int(offset) + 1))
    apex_n = apex if isinstance(apex, int) else None
    write_clip(top / sub / filename, numbers, sub + '_{n:05d}.jpg', apex_n, seed=100 + i)
  preamble = [('SAMM micro-movement FACS codes',)] + [(f'note {i}',) for i in range(12)]
  write_sheet(
    top / sheet,
    SAMM_HEADER,
    [
      (s, f, '1', on, ap, off, None, 'Micro - 1/2', au, em, 1, None)
      for s, f, on, ap, off, au, em in rows
    ],
    preamble,
  )
  return root


def smic(root: pathlib.Path, clips, *, folder='SMIC_all_cropped') -> pathlib.Path:
  """clips: (subject number, label folder, clip name, number of frames)."""
  for i, (subject, label, clip, count) in enumerate(clips):
    start = 1000 * (i + 1)
    numbers = range(start, start + count)
    write_clip(
      root / folder / 'HS' / f's{subject}' / 'micro' / label / clip,
      numbers,
      'image{n:06d}.bmp',
      start + count // 2,
      seed=200 + i,
    )
  return root


def flow_images(root: pathlib.Path, rows, *, csv_name='combined_3class.csv') -> pathlib.Path:
  """rows: (dataset, sub, filename_o, label, apex); writes 28x28 PNGs named `{sub}_{f} .png`."""
  images = root / 'STSNet_whole_norm_u_v_os'
  images.mkdir(parents=True, exist_ok=True)
  lines = ['dataset,sub,filename_o,label,apex,imagename,sub_filename']
  for i, (dataset, sub, filename, label, apex) in enumerate(rows):
    image = np.stack([texture(300 + i, 28)] * 3, -1)
    image[..., 2] = 40 * label  # BGR on disk: R = u
    cv2.imwrite(str(images / f'{sub}_{filename} .png'), image)
    lines.append(f'{dataset},{sub},{filename},{label},{apex},{sub}_{filename},{sub}_{filename}')
  (root / csv_name).write_text('\n'.join(lines) + '\n')
  return root
