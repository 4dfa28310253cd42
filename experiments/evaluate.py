"""Re-score a finished LOSO run from the fold models it kept, without training.

    python -m experiments.evaluate runs/loso-megc2019_flow_images-composite-32px-seed0
    python -m experiments.evaluate RUN --out DIR      # where predictions.csv goes
    python -m experiments.evaluate RUN --no_progress  # plain lines instead of a bar

Reads the run's settings (RUN/state/run.json) and data, loads each fold's saved weights
(RUN/state/models/FOLD), evaluates its test subjects again and pools the predictions as
the run did; prints the UF1 / UAR table and how the predictions compare with the run's
predictions.csv. Writes DIR/predictions.csv (default RUN/evaluation/); the run's own files
are never rewritten. The data must be those the run trained on (RUN/state/run.json's
fingerprint): a rebuilt dataset is refused, as is a damaged kept model, each in one line.
"""

from __future__ import annotations

import csv
import pathlib
import sys
import time

from datasets.load import DatasetNotBuiltError
from experiments import usage, networks, input_pipeline, options
from experiments.options import UsageError
from hfa_jax import report
from hfa_jax.loso.errors import PlanError, RunMismatchError
from hfa_jax.loso.rescore import DamagedModelError, MissingWeightsError, rescore
from tqdm.auto import tqdm


def compare(run_csv: pathlib.Path, new_csv: pathlib.Path) -> str:
  """How the new predictions compare with the run's, sample by sample (by subject and
  sample name): same classes, the largest probability difference (to the files' 6 decimals),
  and the samples only one of them has."""
  if not run_csv.is_file():
    return f'{run_csv} is missing: nothing to compare with'
  key = lambda r: (r.get('subject'), r.get('sample'))
  old, new = ({key(r): r for r in csv.DictReader(open(p))} for p in (run_csv, new_csv))
  both = [k for k in old if k in new]
  if not both:
    return f'{run_csv} and the new predictions share no sample: nothing to compare'
  same = sum(old[k]['predicted'] == new[k]['predicted'] for k in both)
  probs = [c for c in old[both[0]] if c.startswith('p_')]
  diff = max(abs(float(old[k][c]) - float(new[k][c])) for k in both for c in probs)
  differ = 'are the same' if diff == 0 else f'differ by at most {diff:.2g}'
  said = (
    f'the same predicted class as the run for {same} of {len(both)} samples; probabilities {differ}'
  )
  alone = [f'{len(old) - len(both)} only in the run', f'{len(new) - len(both)} only in the new']
  alone = [a for a in alone if not a.startswith('0 ')]
  return said + (f' (samples: {", ".join(alone)})' if alone else '')


def evaluate(run: pathlib.Path, out: pathlib.Path | None, progress: bool = True) -> dict:
  """Re-scores the run in `run`; writes predictions.csv under `out`; returns the record.
  `progress`: a bar over the fold models, else a line every 15 s."""
  s = options.saved_settings(run)
  say(f'reading the dataset of {run} ({s.experiment.dataset}, {s.size} px)')
  data = input_pipeline.load_dataset(s, progress=False)
  model = networks.build_model(s, data.num_classes)
  say('re-scoring its kept fold models (the first compiles the model)')
  on_fold = FoldLog(progress)
  try:
    result = rescore(
      run / 'state', data.arrays, s.training, model, s.experiment.subjects, on_fold
    ).pooled
  finally:
    on_fold.close()
  record = report.summary(result, data, dict(dataset=s.experiment.dataset, settings=s.values()))
  out = out or run / 'evaluation'
  out.mkdir(parents=True, exist_ok=True)
  report.write_predictions(out / 'predictions.csv', result, data)
  print(report.table(record))
  print(compare(run / 'predictions.csv', out / 'predictions.csv'))
  print(f'predictions in {out / "predictions.csv"}')
  return record


def say(text: str):
  print(text, flush=True)


class FoldLog:
  """After each fold model: a bar, or (without `progress`) a line at most every 15 s."""

  def __init__(self, progress: bool, every: float = 15.0):
    self.progress, self.bar = progress, None
    self.every, self.last = every, time.monotonic()

  def __call__(self, fold: str, done: int, total: int):
    if self.progress:
      if self.bar is None:
        self.bar = tqdm(total=total, unit='model', desc='re-scoring fold models', initial=done - 1)
      self.bar.update()
    elif time.monotonic() - self.last >= self.every or done == total:
      say(f're-scored {done} of {total} fold models (the last: {fold})')
      self.last = time.monotonic()

  def close(self):
    if self.bar is not None:
      self.bar.close()


def main(argv=None) -> int:
  p = usage.Parser(prog='python -m experiments.evaluate', description=__doc__.split('\n\n')[0])
  p.add_argument('run', type=pathlib.Path, help='the run folder (--out of experiments.loso)')
  p.add_argument(
    '--out', type=pathlib.Path, help='where predictions.csv goes (default RUN/evaluation)'
  )
  p.add_argument(
    '--no_progress',
    action='store_true',
    help='no progress bar: plain lines instead (what it reads, then a line every 15 s)',
  )
  args = p.parse_args(sys.argv[1:] if argv is None else argv)
  try:
    evaluate(args.run, args.out, not args.no_progress)
  except (
    UsageError,
    DatasetNotBuiltError,
    PlanError,
    MissingWeightsError,
    DamagedModelError,
    RunMismatchError,
  ) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
