"""card['preprocessing']: how a model's training data made its inputs, as a model card records
it, so that predict (hfa_jax.predict) makes a new clip's inputs the same way.

    pre = preprocessing('frames', dataset='samm', config='size_224', stored_side=224, side=224,
                        face_crop_by_database={'samm': True})
    pre['description']                            # in words, for the card's README

`datasets.card.preprocessing_card` fills it for a model trained on a built dataset.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from hfa_jax import preprocess

VERSION = 1  # of card['preprocessing']
KINDS = ('frames', 'flow_images')


def flow_settings() -> dict:
  """This version's flow computation, as a card records it (compared when predicting)."""
  return dict(
    function='hfa_jax.preprocess.flow_for_clip',
    work_side=preprocess.WORK_SIDE,
    tvl1=dataclasses.asdict(preprocess.TVL1()),
    normalisation=preprocess.NORMALISATION,
  )


def preprocessing(
  kind: str,
  *,
  dataset: str,
  config: str,
  stored_side: int,
  side: int,
  apex: str = 'middle',
  missing_apex: str = 'skip',
  face_crop_by_database: dict[str, bool] | None = None,
) -> dict:
  """card['preprocessing'] of a model trained on `dataset` (`config`, stored at `stored_side`
  px) at input side `side`. kind 'frames': flows this project computed from frames, the face
  detected and cropped in the databases whose value in `face_crop_by_database` is True;
  'flow_images': STSTNet-format PNGs made elsewhere. `apex`: the strategy of clips without an
  annotated apex."""
  if kind not in KINDS:
    raise ValueError(f'kind must be one of {KINDS}, not {kind!r}')
  crops = dict(face_crop_by_database or {})
  card = dict(
    version=VERSION,
    kind=kind,
    dataset=dataset,
    dataset_config=config,
    stored_side=int(stored_side),
    side=int(side),
    apex=apex,
    missing_apex=missing_apex,
    # frames: detect and crop the face (any database of the training data did); flow images:
    # the faces of the frames given instead of PNGs are detected
    face_crop=any(crops.values()) if kind == 'frames' else True,
    face_crop_by_database=crops,
    no_face_in_training='whole frame used (noted in the build)',
    flow=flow_settings() | dict(size=int(stored_side) if kind == 'frames' else preprocess.PNG_SIDE),
    value_range=(
      'u, v in [-1, 1], optical strain in [0, 1]'
      if kind == 'frames'
      else 'u, v, optical strain in [-1, 1] (PNG 0..255 / 255 * 2 - 1)'
    ),
    resize=f'bilinear (antialiased when shrinking), {stored_side} -> {side} px',
  )
  card['description'] = describe(card)
  return card


def describe(pre: dict) -> str:
  """card['preprocessing'] in words."""
  size = f"{pre['stored_side']} px as {pre['dataset']} ({pre['dataset_config']}) stores them"
  resized = f"resized bilinearly to the model's {pre['side']} px"
  if pre['kind'] == 'flow_images':
    return (
      'STSTNet-format flow images (RGB PNG = u, v, optical strain, each channel min-max scaled '
      'to 0..255 per image; made outside this project, 28x28 in the MEGC2019 release): scaled to '
      f'0..1 at {size}, mapped to -1..1, {resized}. PNGs are taken as they are; from frames, '
      "predict makes such an image with this project's TV-L1 flow (faces detected), which is "
      "not the images' makers' flow."
    )
  crops = pre['face_crop_by_database']
  detected = sorted(db for db, crop in crops.items() if crop)
  whole = sorted(db for db, crop in crops.items() if not crop)
  if not whole:
    face = 'the face detected on the onset frame (OpenCV Haar cascade) crops both frames'
  elif not detected:
    face = "frames used whole (the databases' cropped releases: give face crops)"
  else:
    face = (
      f"faces detected and cropped for {', '.join(detected)}, the cropped releases of "
      f"{', '.join(whole)} used whole (predict detects faces)"
    )
  return (
    f'Flow images this project computes from an onset and an apex frame: {face}; TV-L1 '
    f"optical flow on a {pre['flow']['work_side']} px grid (hfa_jax.preprocess.flow_for_clip), "
    f'optical strain, per-sample normalisation ({pre["value_range"]}), at {size}; {resized}. '
    f"Clips without an annotated apex: apex by {pre['apex']!r}."
  )


def notes(pre: dict, face_crop: bool, from_frames: Sequence[str]) -> list[str]:
  """What the user should know about how predict made these inputs (`from_frames`: those made
  from frames; `face_crop`: whether it detected faces) for a model of card['preprocessing']
  `pre`."""
  out = []
  recorded = {k: pre.get('flow', {}).get(k) for k in flow_settings()}
  if from_frames and recorded != flow_settings():
    changed = [k for k, v in flow_settings().items() if recorded[k] != v]
    out.append(
      f"the model's card records other flow settings ({', '.join(changed)}) than this hfa_jax "
      "uses: inputs made from frames differ from the model's training data"
    )
  if from_frames and pre['kind'] == 'flow_images':
    out.append(
      f'{len(from_frames)} input(s) made from frames: this model was trained on STSTNet-format '
      "flow images made outside this project; predict made them with this project's TV-L1 "
      f'flow ({preprocess.PNG_SIDE} px, min-max scaled as those PNGs are), so its preprocessing '
      "differs from the training data's"
    )
  crops = pre.get('face_crop_by_database') or {}
  if from_frames and pre['kind'] == 'frames' and not face_crop:
    out.append(
      "frames were used whole: the model was trained on the databases' cropped faces. Give "
      'frames cropped to the face, or detect the face with --face_crop yes'
    )
  elif from_frames and pre['kind'] == 'frames' and len(set(crops.values())) > 1:
    out.append(
      'faces were detected and cropped: the model was trained on detected faces of '
      f"{', '.join(d for d, c in crops.items() if c)} and on the cropped releases of "
      f"{', '.join(d for d, c in crops.items() if not c)} (--face_crop no for face crops)"
    )
  return out
