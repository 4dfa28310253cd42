"""What a trained model says about your clips.

    python -m experiments.predict --model DIR INPUT [INPUT ...] [--out FILE.csv|FILE.json]
    python -m experiments.predict --model DIR --benchmark 16

DIR is a model folder (`python -m experiments.final_model` writes one). Each INPUT is one of:
  ONSET,APEX  an onset and an apex frame, two files separated by a comma (no space);
  FOLDER      a clip's frames, numbered in their names (img46.jpg, 006_05562.jpg,
              image012345.bmp): the first is the onset, the apex is picked as the model's
              dataset picked it for clips without an annotated apex (the middle frame by default);
  VIDEO       .avi .mp4 .mov .mkv .webm .m4v .mpg .mpeg: its frames in order, as a folder;
  FILE.png    an STSTNet-format flow image (RGB = u, v, optical strain, 0..255) of the side
              the model's flow images had (28 px; --any_side resizes another), for models
              trained on flow images.
The inputs are made into the model's inputs exactly as its training data was made (its card's
preprocessing: face crop, flow, sides, value range). Prints first what the model was trained
on (SYNTHETIC for a model of the synthetic data), then one row per input: the predicted
class, every class's probability, the apex frame used (a video's frames count from 0) and
its flags (e.g. the whole frame used where no face was found). An input the model cannot
judge gets one line saying why, and the others are still predicted: one that cannot be read,
one without motion (the apex is the onset frame, or the flow is below the floor measured on
the real data's quietest samples), a flow image of another side, or a flow unlike every
training image (hfa_jax.input_checks; --unlike_training predicts it anyway, flagged).
Exit code: 0 all predicted, 1 some could not be, 2 usage errors (e.g. DIR is not a model),
130 / 143 stopped by Ctrl-C / SIGTERM (the flow workers end with it).
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import signal
import sys
import tempfile
import time

import cv2
import flax
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
  p.add_argument(
    '--any_side',
    action='store_true',
    help="resize a flow image whose side is not that of the model's flow images (else refused)",
  )
  p.add_argument(
    '--unlike_training',
    action='store_true',
    help='predict an input whose flow is unlike every training image (else refused), flagged',
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


class Terminated(KeyboardInterrupt):
  """SIGTERM: stops the command as Ctrl-C does."""


def main(argv=None) -> int:
  parser = make_parser()
  args = parser.parse_args(argv)
  if not args.inputs and not args.benchmark:
    parser.error('give at least one INPUT (or --benchmark N)')
  if args.out and pathlib.Path(args.out).suffix.lower() not in ('.csv', '.json'):
    parser.error(f'--out {args.out}: write a .csv or a .json file')
  previous = signal.signal(signal.SIGTERM, _terminate)
  try:
    return run(args)
  except KeyboardInterrupt as e:
    by = ' by SIGTERM' if isinstance(e, Terminated) else ''
    print(f'\nstopped{by}; nothing was written.', file=sys.stderr)
    return 143 if isinstance(e, Terminated) else 130
  finally:
    signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame):
  raise Terminated()


def run(args) -> int:
  """Predicts (or times) as the parsed options `args` say; the exit code."""
  try:
    predict.options(trained.read_card(args.model).get('preprocessing'))
    model, variables, card = trained.load_model(args.model)
  except (ValueError, ImportError, AttributeError) as e:  # ModelFolderError, CardError, ...
    where = '' if str(args.model) in str(e) else f'--model {args.model}: '
    print(f'error: {where}{e}', file=sys.stderr)
    return 2
  if args.benchmark:
    return run_benchmark(model, variables, card, args.benchmark, args.workers)
  about = header(card)
  print(about, flush=True)
  workers = args.workers or (default_workers() if len(args.inputs) >= 8 else 1)
  batch = predict.model_inputs(
    args.inputs,
    card['preprocessing'],
    face_crop=FACE_CROP[args.face_crop],
    no_face=args.no_face,
    workers=workers,
    statistics=card.get('input_statistics'),
    any_side=args.any_side,
    unlike='flag' if args.unlike_training else 'refuse',
    progress=len(args.inputs) >= 8,
  )
  try:
    logits = predict.logits(
      model, variables, batch.images, args.batch_size, **predict.as_trained(card)
    )
  except flax.errors.ScopeParamShapeError as e:
    print(f'error: the weights in {args.model} do not fit its card ({e})', file=sys.stderr)
    return 2
  probs = predict.probabilities(logits)
  for note in batch.notes:
    print(f'note: {note}')
  rows = table_rows(batch, probs, card['class_names'])
  print(format_table(rows, card['class_names']))
  for text, reason in batch.failed:
    print(f'cannot predict {text}: {reason}', file=sys.stderr)
  if args.out:
    write(args.out, rows, batch.failed, card['class_names'], [about, *batch.notes])
    print(f'written to {args.out}')
  return 1 if batch.failed else 0


def header(card: dict) -> str:
  """The model and its training data, once, above the predictions."""
  data = card.get('training_data')
  if not data:
    line = f"model {card['model']}: its card does not say what it was trained on"
  else:
    line = f'model: {trained.trained_on(card)}'
  if data and data.get('synthetic'):
    line = f'{trained.SYNTHETIC}. {line}'
  if not card.get('input_statistics'):
    line += (
      '\n(its card records no statistics of the training images, so inputs unlike them are '
      'not recognised; the final models of this version record them)'
    )
  return line


def table_rows(batch: predict.Batch, probs: np.ndarray, class_names: list[str]) -> list[dict]:
  """One dict per predicted input: input, predicted, probabilities {class: p}, apex, flags."""
  flags = batch.flags or [()] * len(batch.inputs)
  return [
    dict(
      input=text,
      predicted=class_names[int(np.argmax(p))],
      probabilities={name: round(float(v), 6) for name, v in zip(class_names, p)},
      apex=apex or '',
      flags='; '.join(flag),
    )
    for text, p, apex, flag in zip(batch.inputs, probs, batch.apex, flags)
  ]


def format_table(rows: list[dict], class_names: list[str]) -> str:
  """The rows as aligned columns (the apex frame's file name only)."""
  if not rows:
    return 'no input could be predicted'
  columns = ['input', 'predicted', *class_names, 'apex'] + (
    ['flags'] if any(r['flags'] for r in rows) else []
  )
  cells = [
    [r['input'], r['predicted'], *(f"{r['probabilities'][c]:.3f}" for c in class_names)]
    + [pathlib.Path(r['apex']).name]  # a frame's file name, or 'frame 12 of 25' of a video
    + ([r['flags']] if 'flags' in columns else [])
    for r in rows
  ]
  widths = [max(len(str(x)) for x in col) for col in zip(columns, *cells)]
  line = lambda values: '  '.join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()
  return '\n'.join([line(columns), *(line(c) for c in cells)])


def write(
  path: str,
  rows: list[dict],
  failed: list[tuple[str, str]],
  class_names: list[str],
  notes: list[str] = (),
):
  """The predictions (and the inputs that failed, with their reasons) as CSV or JSON, with
  what was printed above and below them (`notes`: the model line, a SYNTHETIC warning, the
  batch's notes): the JSON's 'notes', the CSV's 'notes' column of every prediction."""
  out = pathlib.Path(path)
  out.parent.mkdir(parents=True, exist_ok=True)
  notes = [n for note in notes for n in note.splitlines() if n]
  if out.suffix.lower() == '.json':
    failures = [dict(input=t, error=r) for t, r in failed]
    record = dict(notes=notes, class_names=class_names, predictions=rows, failed=failures)
    out.write_text(json.dumps(record, indent=1))
    return
  with open(out, 'w', newline='') as f:
    columns = ['input', 'predicted', *class_names, 'apex', 'flags', 'notes', 'error']
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(
      {k: v for k, v in r.items() if k != 'probabilities'}
      | r['probabilities']
      | dict(notes='; '.join(notes))
      for r in rows
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
