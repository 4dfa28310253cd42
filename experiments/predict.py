"""What a trained model says about your clips.

    python -m experiments.predict --model DIR INPUT [INPUT ...] [--out FILE.csv|FILE.json]
    python -m experiments.predict --model DIR --benchmark 16

DIR is a model folder (`python -m experiments.final_model` writes one). Each INPUT is one of:
  ONSET,APEX  an onset and an apex frame, two files separated by a comma (no space);
  FOLDER      a clip's frames, numbered in their names (img46.jpg, 006_05562.jpg,
              image012345.bmp): the first is the onset, the apex is picked as the model's
              dataset picked it for clips without an annotated apex (the middle frame by default);
  VIDEO       .avi .mp4 .mov .mkv .webm .m4v .mpg .mpeg: its frames in order, as a folder;
  FILE.png    an STSTNet-format flow image (RGB = u, v, optical strain, 0..255), for models
              trained on flow images.
The inputs are made into the model's inputs exactly as its training data was made (its card's
preprocessing: face crop, flow, sides, value range). Prints one row per input: the predicted
class, every class's probability and the apex frame used (a video's frames count from 0); an
input that cannot be read gets one line saying why, and the others are still predicted.
Exit code: 0 all predicted, 1 some could not be, 2 usage errors (e.g. DIR is not a model).
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import sys
import tempfile
import time

import cv2
import numpy as np

from datasets.common.flows import default_workers
from hfa_jax import predict, preprocess, preprocessing_spec, trained
from hfa_jax.preprocess import benchmark as flow_benchmark

FACE_CROP = {'card': None, 'yes': True, 'no': False}


def make_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
    prog='python -m experiments.predict',
    description=__doc__.split('\n\n', 1)[1],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument(
    'inputs', nargs='*', metavar='INPUT', help='ONSET,APEX | FOLDER | VIDEO | FILE.png'
  )
  p.add_argument('--model', required=True, metavar='DIR', help='a model folder')
  p.add_argument(
    '--out', metavar='FILE', help='also write the predictions to FILE.csv or FILE.json'
  )
  p.add_argument(
    '--face_crop',
    choices=tuple(FACE_CROP),
    default='card',
    help='detect and crop the face: as the training data did (card), always (yes: whole '
    'frames given to a model trained on cropped faces), never (no: frames already face crops)',
  )
  p.add_argument(
    '--no_face',
    choices=predict.NO_FACE,
    default='error',
    help='when no face is found: refuse the input (error), or use the whole frame as the '
    'dataset builds do (full_frame)',
  )
  p.add_argument('--workers', type=int, default=0, help='flow processes (default: by inputs)')
  p.add_argument('--batch_size', type=int, default=64, help='inputs per model call')
  p.add_argument(
    '--benchmark',
    type=int,
    metavar='N',
    help='time N clips from frames (640x480 JPEG pairs) and N flow-image PNGs instead',
  )
  return p


def main(argv=None) -> int:
  parser = make_parser()
  args = parser.parse_args(argv)
  if not args.inputs and not args.benchmark:
    parser.error('give at least one INPUT (or --benchmark N)')
  if args.out and pathlib.Path(args.out).suffix.lower() not in ('.csv', '.json'):
    parser.error(f'--out {args.out}: write a .csv or a .json file')
  try:
    predict.options(trained.read_card(args.model).get('preprocessing'))
    model, variables, card = trained.load_model(args.model)
  except (ValueError, ImportError, AttributeError) as e:  # ModelFolderError, CardError, ...
    where = '' if str(args.model) in str(e) else f'--model {args.model}: '
    print(f'error: {where}{e}', file=sys.stderr)
    return 2
  if args.benchmark:
    return run_benchmark(model, variables, card, args.benchmark, args.workers)
  workers = args.workers or (default_workers() if len(args.inputs) >= 8 else 1)
  batch = predict.model_inputs(
    args.inputs,
    card['preprocessing'],
    face_crop=FACE_CROP[args.face_crop],
    no_face=args.no_face,
    workers=workers,
  )
  test_flip = bool(card['input'].get('test_flip'))
  flow_norm = card['input'].get('flow_norm', 'none')
  probs = predict.probabilities(
    predict.logits(model, variables, batch.images, args.batch_size, test_flip, flow_norm)
  )
  for note in batch.notes:
    print(f'note: {note}')
  rows = table_rows(batch, probs, card['class_names'])
  print(format_table(rows, card['class_names']))
  for text, reason in batch.failed:
    print(f'cannot predict {text}: {reason}', file=sys.stderr)
  if args.out:
    write(args.out, rows, batch.failed, card['class_names'])
    print(f'written to {args.out}')
  return 1 if batch.failed else 0


def table_rows(batch: predict.Batch, probs: np.ndarray, class_names: list[str]) -> list[dict]:
  """One dict per predicted input: input, predicted, probabilities {class: p}, apex."""
  return [
    dict(
      input=text,
      predicted=class_names[int(np.argmax(p))],
      probabilities={name: round(float(v), 6) for name, v in zip(class_names, p)},
      apex=apex or '',
    )
    for text, p, apex in zip(batch.inputs, probs, batch.apex)
  ]


def format_table(rows: list[dict], class_names: list[str]) -> str:
  """The rows as aligned columns (the apex frame's file name only)."""
  if not rows:
    return 'no input could be predicted'
  columns = ['input', 'predicted', *class_names, 'apex']
  cells = [
    [r['input'], r['predicted'], *(f"{r['probabilities'][c]:.3f}" for c in class_names)]
    + [pathlib.Path(r['apex']).name]  # a frame's file name, or 'frame 12 of 25' of a video
    for r in rows
  ]
  widths = [max(len(str(x)) for x in col) for col in zip(columns, *cells)]
  line = lambda values: '  '.join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()
  return '\n'.join([line(columns), *(line(c) for c in cells)])


def write(path: str, rows: list[dict], failed: list[tuple[str, str]], class_names: list[str]):
  """The predictions (and the inputs that failed, with their reasons) as CSV or JSON."""
  out = pathlib.Path(path)
  out.parent.mkdir(parents=True, exist_ok=True)
  if out.suffix.lower() == '.json':
    failures = [dict(input=t, error=r) for t, r in failed]
    out.write_text(
      json.dumps(dict(class_names=class_names, predictions=rows, failed=failures), indent=1)
    )
    return
  with open(out, 'w', newline='') as f:
    writer = csv.DictWriter(f, ['input', 'predicted', *class_names, 'apex', 'error'])
    writer.writeheader()
    writer.writerows(
      {k: v for k, v in r.items() if k != 'probabilities'} | r['probabilities'] for r in rows
    )
    writer.writerows(dict(input=t, error=r) for t, r in failed)


def run_benchmark(model, variables, card: dict, n: int, workers: int) -> int:
  """Prints clips/s from frames (onset/apex 640x480 JPEG pairs, the model's preprocessing,
  faces searched for) and flow images/s (28x28 PNGs), each through model_inputs and logits."""
  pre = card['preprocessing']
  png_pre = preprocessing_spec.preprocessing(
    'flow_images',
    dataset='megc2019_flow_images',
    config='size_28',
    stored_side=preprocess.PNG_SIDE,
    side=pre['side'],
  )
  workers = workers or 1
  with tempfile.TemporaryDirectory(prefix='hfa_jax_predict_bench_') as folder:
    pairs = flow_benchmark.make_pairs(pathlib.Path(folder), n)
    clips = [f'{onset},{apex}' for onset, apex in pairs]
    pngs = write_flow_pngs(pathlib.Path(folder), n)
    for what, inputs, p in (('clips from frames', clips, pre), ('flow images', pngs, png_pre)):
      rate = _rate(model, variables, inputs, p, workers)
      print(f'{what}: {rate:.2f}/s ({n} inputs, {workers} worker(s), side {pre["side"]})')
  return 0


def write_flow_pngs(folder: pathlib.Path, n: int) -> list[str]:
  """n random STSTNet-format flow images (28x28 RGB PNG) in `folder`."""
  rng = np.random.default_rng(0)
  paths = []
  for i in range(n):
    flow = rng.normal(size=(preprocess.PNG_SIDE, preprocess.PNG_SIDE, 3)).astype(np.float32)
    path = folder / f'flow_{i}.png'
    cv2.imwrite(str(path), preprocess.encode_png(flow)[..., ::-1])
    paths.append(str(path))
  return paths


def _rate(model, variables, inputs: list[str], pre: dict, workers: int) -> float:
  """Inputs per second of model_inputs + logits (the model compiled beforehand)."""
  side = pre['side']
  predict.logits(model, variables, np.zeros((len(inputs), side, side, 3), np.float32))
  start = time.perf_counter()
  batch = predict.model_inputs(inputs, pre, no_face='full_frame', workers=workers)
  out = predict.logits(model, variables, batch.images)
  elapsed = time.perf_counter() - start
  assert len(out) == len(inputs), 'some benchmark inputs failed'
  return len(inputs) / elapsed


if __name__ == '__main__':
  sys.exit(main())
