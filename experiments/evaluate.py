"""Re-score a finished LOSO run from the fold models it kept, without training.

    python -m experiments.evaluate runs/loso-megc2019_flow_images-composite-32px-seed0
    python -m experiments.evaluate RUN --out DIR      # where predictions.csv goes

Reads the run's settings (RUN/state/run.json) and data, loads each fold's saved weights
(RUN/state/models/FOLD), evaluates its test subjects again and pools the predictions as
the run did; prints the UF1 / UAR table and how the predictions compare with the run's
predictions.csv. Writes DIR/predictions.csv (default RUN/evaluation/); the run's own files
are never rewritten.
"""

from __future__ import annotations

import csv
import pathlib
import sys


from datasets.load import DatasetNotBuiltError
from experiments import usage, networks, input_pipeline, options
from experiments.options import UsageError
from hfa_jax import report
from hfa_jax.loso.errors import PlanError
from hfa_jax.loso.rescore import MissingWeightsError, rescore


def compare(run_csv: pathlib.Path, new_csv: pathlib.Path) -> str:
  """How the new predictions compare with the run's: same classes, largest difference."""
  if not run_csv.is_file():
    return f'{run_csv} is missing: nothing to compare with'
  old, new = (list(csv.DictReader(open(p))) for p in (run_csv, new_csv))
  same = sum(a['predicted'] == b['predicted'] for a, b in zip(old, new))
  probs = [k for k in old[0] if k.startswith('p_')]
  diff = max(abs(float(a[k]) - float(b[k])) for a, b in zip(old, new) for k in probs)
  return (
    f'the same predicted class as the run for {same} of {len(old)} samples; '
    f'class probabilities differ by at most {diff:.2g}'
  )


def evaluate(run: pathlib.Path, out: pathlib.Path | None) -> dict:
  """Re-scores the run in `run`; writes predictions.csv under `out`; returns the record."""
  s = options.saved_settings(run)
  data = input_pipeline.load_dataset(s, progress=False)
  model = networks.build_model(s, data.num_classes)
  result = rescore(run / 'state', data.arrays, s.training, model, s.experiment.subjects).pooled
  record = report.summary(result, data, dict(dataset=s.experiment.dataset, settings=s.values()))
  out = out or run / 'evaluation'
  out.mkdir(parents=True, exist_ok=True)
  report.write_predictions(out / 'predictions.csv', result, data)
  print(report.table(record))
  print(compare(run / 'predictions.csv', out / 'predictions.csv'))
  print(f'predictions in {out / "predictions.csv"}')
  return record


def main(argv=None) -> int:
  p = usage.Parser(prog='python -m experiments.evaluate', description=__doc__.split('\n\n')[0])
  p.add_argument('run', type=pathlib.Path, help='the run folder (--out of experiments.loso)')
  p.add_argument(
    '--out', type=pathlib.Path, help='where predictions.csv goes (default RUN/evaluation)'
  )
  args = p.parse_args(sys.argv[1:] if argv is None else argv)
  try:
    evaluate(args.run, args.out)
  except (UsageError, DatasetNotBuiltError, PlanError, MissingWeightsError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
