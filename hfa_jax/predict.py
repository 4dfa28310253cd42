"""What a trained model says about a clip: inputs -> the model's inputs -> class probabilities.

    from hfa_jax import load_model, predict
    model, variables, card = load_model(DIR)
    batch = predict.model_inputs(['on.jpg,apex.jpg', 'clip/', 'clip.avi'], card['preprocessing'],
                                 statistics=card.get('input_statistics'))
    logits = predict.logits(model, variables, batch.images, **predict.as_trained(card))
    probs = predict.probabilities(logits)                  # (N, C)
    batch.failed                                  # [(input, why it is not predicted)]

An input (a string) is one of:
  ONSET,APEX  two frame files separated by a comma;
  FOLDER      a clip's frames (files numbered as the databases number them: img46.jpg,
              006_05562.jpg, image012345.bmp): onset the first, apex picked as the model's
              dataset picked unannotated apexes (`preprocessing['apex']`, 'middle': (n-1)//2);
  VIDEO       .avi .mp4 .mov ... : its frames in order, then as a folder;
  FILE.png    an STSTNet-format flow image (RGB = u, v, optical strain, 0..255), of the side
              the model's flow images had (28 px; `any_side` resizes another).
A path that exists is taken as it is, so a file whose name holds a comma is not read as a pair.

What the model cannot judge is refused with the reason (hfa_jax.input_checks): no motion (the
apex is the onset frame, or the flow is below the floor), a flow image of another side, or,
with the card's `input_statistics`, a flow unlike every training image (`unlike='flag'`
predicts it anyway, flagged). A whole frame used where no face was found is flagged.

card['preprocessing'] (hfa_jax.preprocessing_spec; `datasets.card.preprocessing_card` fills it
for a model trained on a built dataset) says how that dataset made its samples, and the same library
functions, in the same order, make the model's inputs here:
  kind 'frames'       flow_for_clip(onset, apex | frames + apex strategy, size=stored_side,
                      face_crop) -> model_input.resize(side);
  kind 'flow_images'  read_flow_png -> png_flow(stored_side) -> flow_images_signed -> resize(side);
                      from frames: flow_for_clip(size=PNG_SIDE, face_crop) -> encode_png -> the
                      same, which is this project's flow, not the images' makers' (a note says so).
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from hfa_jax import input_checks, preprocess, preprocessing_spec
from hfa_jax.model_input import flow_images_signed, resize
from hfa_jax.predict_io import InputError, run_in_workers, write_video_frames
from hfa_jax.preprocessing_spec import KINDS, VERSION

NO_FACE = ('error', 'full_frame')
UNLIKE = ('refuse', 'flag')
VIDEO_SUFFIXES = frozenset({'.avi', '.mp4', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg'})
FRAME_INPUTS = ('pair', 'folder', 'video')
USAGE = (
  'give ONSET,APEX (two frame files separated by a comma), a folder of frames, a video or '
  'an STSTNet-format flow-image PNG'
)


class CardError(ValueError):
  """A model card whose `preprocessing` this version cannot follow."""


@dataclasses.dataclass(frozen=True)
class Options:
  """How to make a model's inputs: from its card, with the user's overrides."""

  kind: str
  stored_side: int
  side: int
  apex: str = 'middle'
  face_crop: bool = True
  no_face: str = 'error'  # or 'full_frame', as the builds do
  png_side: int = preprocess.PNG_SIDE  # the side of the flow images the model was trained on
  any_side: bool = False  # resize a flow image of another side instead of refusing it


def options(
  pre: dict | None,
  *,
  face_crop: bool | None = None,
  no_face: str = 'error',
  any_side: bool = False,
) -> Options:
  """Options from card['preprocessing']; CardError if this version cannot follow it."""
  if not pre:
    raise CardError(
      "the model card has no 'preprocessing': it does not say how its inputs were made "
      '(save the model with `hfa_jax final_model`)'
    )
  if pre.get('version', 0) > VERSION or pre.get('kind') not in KINDS:
    raise CardError(
      f"the model card's preprocessing (version {pre.get('version')}, kind "
      f"{pre.get('kind')!r}) is not one this hfa_jax follows (version <= {VERSION}, kinds "
      f'{", ".join(KINDS)}); a newer hfa_jax may'
    )
  if no_face not in NO_FACE:
    raise ValueError(f'no_face must be one of {NO_FACE}, not {no_face!r}')
  return Options(
    kind=pre['kind'],
    stored_side=int(pre['stored_side']),
    side=int(pre['side']),
    apex=pre.get('apex', 'middle'),
    face_crop=pre['face_crop'] if face_crop is None else face_crop,
    no_face=no_face,
    png_side=int((pre.get('flow') or {}).get('size') or preprocess.PNG_SIDE),
    any_side=any_side,
  )


@dataclasses.dataclass(frozen=True)
class Clip:
  """One input: `kind` 'pair' (onset, apex), 'folder', 'video' or 'flow_image', and its paths."""

  text: str
  kind: str
  paths: tuple[str, ...]


def parse_input(text: str) -> Clip:
  """The input `text` names (see the module docstring); InputError if it names none."""
  path = Path(text)
  if path.is_dir():
    return Clip(text, 'folder', (text,))
  if path.is_file():
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
      return Clip(text, 'video', (text,))
    if suffix == '.png':
      return Clip(text, 'flow_image', (text,))
    raise InputError(f'one {suffix or "extensionless"} file is not a clip; {USAGE}')
  parts = text.split(',')
  if len(parts) == 2 and all(p.strip() for p in parts):
    return Clip(text, 'pair', tuple(p.strip() for p in parts))
  if len(parts) > 2:
    raise InputError(f'{len(parts)} comma-separated paths; {USAGE}')
  raise InputError(f'no such file or folder; {USAGE}')


@dataclasses.dataclass(frozen=True)
class Stored:
  """One input's flow as its dataset stores it: float32 (stored_side, stored_side, 3)
  (flow images 0..1), the apex frame used (None for a flow image), and what the user should
  know about it (`flags`: e.g. the whole frame used)."""

  flow: np.ndarray
  apex: str | None
  flags: tuple[str, ...] = ()


def stored_flow(clip: Clip, opts: Options) -> Stored:
  """The flow of one input as the model's dataset stores it (InputError, PreprocessError)."""
  if clip.kind == 'flow_image':
    if opts.kind != 'flow_images':
      raise InputError(
        'a flow-image PNG, but this model was trained on flows this project computes from '
        'frames; give ONSET,APEX, a folder of frames or a video'
      )
    rgb = preprocess.read_flow_png(clip.paths[0])
    if rgb.shape[0] != rgb.shape[1]:
      raise InputError(
        f'a {rgb.shape[1]}x{rgb.shape[0]} image is not a flow image: STSTNet-format flow '
        'images are square (28x28 in the MEGC2019 release)'
      )
    if rgb.shape[0] != opts.png_side and not opts.any_side:
      raise InputError(
        f'a {rgb.shape[0]}x{rgb.shape[0]} image: this model was trained on '
        f'{opts.png_side}x{opts.png_side} STSTNet-format flow images; give one of that side, '
        'or --any_side to resize it'
      )
    resized = ()
    if rgb.shape[0] != opts.png_side:
      resized = (f'resized from {rgb.shape[0]} px (--any_side; trained on {opts.png_side} px)',)
    return Stored(preprocess.png_flow(rgb, opts.stored_side), None, resized)
  if clip.kind != 'video':
    return _from_frames(clip, opts)
  with tempfile.TemporaryDirectory(prefix='hfa_jax_video_') as folder:
    count = write_video_frames(clip.paths[0], Path(folder))
    stored = _from_frames(Clip(clip.text, 'folder', (folder,)), opts)
    apex = f'frame {preprocess.frame_number(stored.apex)} of {count}'
    return dataclasses.replace(stored, apex=apex)


def _frame_paths(clip: Clip) -> tuple[str, str | None, tuple[str, ...]]:
  """(onset, apex or None, the clip's frames when the apex is to be picked)."""
  if clip.kind == 'pair':
    return clip.paths[0], clip.paths[1], ()
  frames = tuple(str(f.path) for f in preprocess.list_frames(clip.paths[0]))
  if len(frames) < 2:
    raise InputError(f'{len(frames)} frame; a clip needs at least 2 (onset and apex)')
  return frames[0], None, frames


def _from_frames(clip: Clip, opts: Options) -> Stored:
  """The builders' flow_for_clip with the dataset's settings; a flow-image model's input is
  made in the STSTNet format (encode_png) at PNG_SIDE, then read as a PNG is."""
  onset, apex, frames = _frame_paths(clip)
  out = preprocess.flow_for_clip(
    onset,
    apex,
    clip_frames=frames or None,
    apex_strategy=opts.apex,
    size=opts.stored_side if opts.kind == 'frames' else preprocess.PNG_SIDE,
    face_crop=opts.face_crop,
  )
  if Path(out['apex_path']).resolve() == Path(onset).resolve():
    raise InputError(
      'no motion: the apex is the onset frame itself'
      + ('' if apex else f" (the {opts.apex!r} apex of a {len(frames)}-frame clip)")
      + '; give an onset and an apex that differ (ONSET,APEX, or a longer clip)'
    )
  if out['face_found'] is False and opts.no_face == 'error':
    raise InputError(
      f'no face found in {onset} (the model was trained on face crops): give frames cropped '
      'to the face with --face_crop no, or use the whole frame as the builds do with '
      '--no_face full_frame'
    )
  flags = ('whole frame: no face found',) if out['face_found'] is False else ()
  numbers = [preprocess.frame_number(p) for p in (onset, apex)] if apex else []
  if numbers and None not in numbers and numbers[1] < numbers[0]:
    flags += (f'apex frame {numbers[1]} before onset frame {numbers[0]}: ONSET,APEX reversed?',)
  flow = np.asarray(out['flow'], dtype=np.float32)
  if opts.kind == 'flow_images':
    flow = preprocess.png_flow(preprocess.encode_png(flow), opts.stored_side)
  return Stored(flow, out['apex_path'], flags)


def prepare(text: str, opts: Options) -> Stored | str:
  """stored_flow of one input, or why it cannot be predicted (a top-level function for
  worker processes)."""
  try:
    return stored_flow(parse_input(text), opts)
  except (InputError, preprocess.PreprocessError, OSError) as error:
    return str(error)
  except cv2.error as error:
    return f'OpenCV failed on it: {str(error).strip().splitlines()[-1]}'


@dataclasses.dataclass
class Batch:
  """The model's inputs for the inputs it can judge, in the order given."""

  inputs: list[str]
  images: np.ndarray  # (N, side, side, 3) float32
  apex: list[str | None]  # the apex frame used per input (None for a flow image)
  failed: list[tuple[str, str]]  # (input, reason): unreadable, or not for this model to judge
  notes: list[str]
  flags: list[tuple[str, ...]] = dataclasses.field(default_factory=list)  # per input


def model_inputs(
  texts: Sequence[str],
  pre: dict,
  *,
  face_crop: bool | None = None,
  no_face: str = 'error',
  workers: int = 1,
  statistics: dict | None = None,
  any_side: bool = False,
  unlike: str = 'refuse',
  progress: bool = False,
) -> Batch:
  """The model's inputs (N, side, side, 3) from the input strings, made as card['preprocessing']
  `pre` says (face_crop: override its face detection; no_face: 'error' or 'full_frame');
  `workers` processes compute the flows (`progress`: a bar on stderr). What the model cannot
  judge is refused (see the module docstring): `statistics`, card['input_statistics'], the
  training data's ranges; `unlike` 'flag' predicts an input outside them, flagged; `any_side`
  resizes a flow image of another side. CardError if `pre` cannot be followed."""
  if unlike not in UNLIKE:
    raise ValueError(f'unlike must be one of {UNLIKE}, not {unlike!r}')
  opts = options(pre, face_crop=face_crop, no_face=no_face, any_side=any_side)
  results = run_in_workers(prepare, list(texts), opts, workers, _pooled(texts), progress)
  good = [(t, r) for t, r in zip(texts, results) if isinstance(r, Stored)]
  failed = [(t, r) for t, r in zip(texts, results) if isinstance(r, str)]
  images = _images([r.flow for _, r in good], opts)
  stats = input_checks.statistics(images)
  keep = []
  for i, (text, stored) in enumerate(good):
    judged = judge(input_checks.one(stats, i), statistics, unlike)
    if isinstance(judged, str):
      failed.append((text, judged))
    else:
      keep.append(i)
      good[i] = (text, dataclasses.replace(stored, flags=stored.flags + judged))
  good = [good[i] for i in keep]
  failed.sort(key=lambda f: list(texts).index(f[0]))
  from_frames = [t for t, _ in good if _input_kind(t) in FRAME_INPUTS]
  return Batch(
    inputs=[t for t, _ in good],
    images=images[keep],
    apex=[r.apex for _, r in good],
    failed=failed,
    notes=preprocessing_spec.notes(pre, opts.face_crop, from_frames),
    flags=[r.flags for _, r in good],
  )


def judge(stats: dict, trained: dict | None, unlike: str = 'refuse') -> str | tuple[str, ...]:
  """Why the model cannot judge an input of these statistics (input_checks), or its flags."""
  still = input_checks.no_motion(stats)
  if still:
    return still
  outside = input_checks.unlike(stats, trained)
  if not outside:
    return ()
  why = 'unlike every training image: ' + '; '.join(outside)
  if unlike == 'flag':
    return (why,)
  return f'{why} (not a flow the model has seen; --unlike_training predicts it anyway, flagged)'


def _images(flows: list, opts: Options) -> np.ndarray:
  """The stored flows as the model's inputs (N, side, side, 3): value range, then side."""
  if not flows:
    return np.zeros((0, opts.side, opts.side, 3), np.float32)
  stored = np.stack(flows)
  if opts.kind == 'flow_images':
    stored = flow_images_signed(stored)
  return resize(stored, opts.side)


def _input_kind(text: str) -> str | None:
  try:
    return parse_input(text).kind
  except InputError:
    return None


def _pooled(texts: Sequence[str]) -> list[int]:
  """The inputs whose flows are worth a worker process (reading a flow-image PNG is cheaper
  than starting one)."""
  return [i for i, t in enumerate(texts) if _input_kind(t) in FRAME_INPUTS]


def as_trained(card: dict) -> dict:
  """The evaluation settings of a model's card (test_flip, flow_norm) for `logits`: its LOSO
  evaluated its test subjects so, and its expected accuracy is of that."""
  inp = card.get('input') or {}
  return dict(test_flip=bool(inp.get('test_flip')), flow_norm=inp.get('flow_norm', 'none'))


def logits(
  model,
  variables: dict,
  images: np.ndarray,
  batch_size: int = 64,
  test_flip: bool = False,
  flow_norm: str = 'none',
  pad: bool = False,
) -> np.ndarray:
  """model.apply(variables, images, train=False) in batches of `batch_size` (the last one
  padded, so that one program serves every batch; fewer images padded to a power of two, or
  with `pad` to `batch_size`, so that calls with other counts share one program): (N, S, S, 3)
  -> (N, C) float32. With
  `test_flip`, each image's logits averaged with its mirror's (u negated), as the LOSO
  evaluates a recipe that sets test_flip; with flow_norm 'median' or 'centre', each image
  normalised first, as the LOSO does a recipe that sets it (both: hfa_jax.evaluation)."""
  n = len(images)
  if n == 0:
    return np.zeros((0, getattr(model, 'num_classes', 0)), np.float32)
  apply = _jitted_apply(model, test_flip, flow_norm)
  size = batch_size if pad else min(batch_size, 1 << (n - 1).bit_length())
  out = []
  for start in range(0, n, size):
    chunk = np.asarray(images[start : start + size], np.float32)
    real = len(chunk)
    if real < size:
      chunk = np.concatenate([chunk, np.zeros((size - real, *chunk.shape[1:]), np.float32)])
    out.append(np.asarray(apply(variables, chunk), np.float32)[:real])
  return np.concatenate(out)


@functools.lru_cache(maxsize=4)
def _jitted_apply(model, test_flip: bool, flow_norm: str):
  import jax

  from hfa_jax import evaluation

  def apply(variables, x):
    x = evaluation.model_input(x, flow_norm)
    return evaluation.scored_logits(lambda x: model.apply(variables, x, train=False), x, test_flip)

  return jax.jit(apply)


def probabilities(logits_: np.ndarray) -> np.ndarray:
  """Softmax over the classes: (N, C) -> (N, C) float32, rows summing to 1."""
  from hfa_jax.evaluation import softmax

  return softmax(logits_).astype(np.float32)
