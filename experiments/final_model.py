"""Train the deployable model: a recipe on EVERY subject of a dataset (no test subject),
written as a model folder (hfa_jax.trained) that experiments.predict and hfa_jax.load_model
read.

    python -m experiments.final_model                                    # synthetic database
    python -m experiments.final_model --dataset megc2019_flow_images \\
        --loso runs/loso-megc2019_flow_images-composite-32px-seed0      # the card cites its LOSO
    python -m experiments.final_model --dataset samm --out models/samm

Takes every setting of experiments.loso (the same recipe files and options; the recipe is
chosen the same way), trains one model for the recipe's epochs on all samples, and writes
--out (default runs/final-DATASET-CLASSES-SIZEpx-seedSEED): weights/ (orbax), model.json and
README.md (the card: classes, input, preprocessing, data, recipe, seed, versions, and the
LOSO result of the same recipe with --loso RUN), and for HFA-Net the original network's
PyTorch state dict. A final model has no test subject: its expected accuracy is the LOSO
result of the same recipe.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import sys

import jax
import numpy as np

from datasets.card import preprocessing_card
from datasets.load import DatasetNotBuiltError
from experiments import networks, input_pipeline, messages, options
from experiments.options import Settings, UsageError
from hfa_jax import trained
from hfa_jax.environment import cpu_model, versions
from hfa_jax.loso.final import train_final
from hfa_jax.loso.store import differences

OWN = ('loso',)


def add_options(parser):
  parser.add_argument(
    '--loso',
    metavar='RUN',
    type=pathlib.Path,
    default=None,
    help="a finished experiments.loso run of the same recipe: its result goes on the card",
  )


def loso_result(run: pathlib.Path, s: Settings) -> dict:
  """The card's 'loso': the result of RUN and whether its recipe is this one."""
  summary_path = run / 'summary.json'
  if not summary_path.is_file():
    raise UsageError(f'--loso {run}: no finished run there ({summary_path} is missing)')
  summary = json.loads(summary_path.read_text())
  saved = options.saved_settings(run) if options.saved_record(run) else None
  diff = differences(saved.training.identity(), s.training.identity()) if saved else ['?']
  if diff:
    messages.say(f'WARNING: the --loso run used another recipe: {"; ".join(diff)}')
  keys = ('uf1', 'uar', 'accuracy', 'protocol', 'n_samples', 'subjects_covered', 'partial')
  return {k: summary.get(k) for k in keys} | dict(run=str(run), same_recipe=not diff)


def card(s: Settings, data, loso: dict | None) -> dict:
  """The model card (model.json) of a final model trained with `s` on `data`."""
  e, config = s.experiment, s.training
  name = 'megc2019' if e.dataset_name == 'synthetic' else e.dataset_name
  pre = preprocessing_card(name, e.dataset_config, data.stored_size, s.size, data.data_dir)
  subjects = sorted(set(data.subjects.tolist()))
  counts = np.bincount(data.labels, minlength=data.num_classes).tolist()
  return dict(
    title=f'{e.model} trained on {e.dataset}, every subject',
    model=e.model,
    num_classes=data.num_classes,
    class_names=list(data.class_names),
    input=dict(
      side=s.size,
      channels=['u', 'v', 'strain'],
      test_flip=config.test_flip,
      flow_norm=config.flow_norm,
      description=pre.get('value_range', ''),
    ),
    preprocessing=pre,
    training_data=dict(
      dataset=e.dataset,
      classes=e.classes,
      samples=len(data.labels),
      subjects=len(subjects),
      per_class=dict(zip(data.class_names, counts)),
      skipped_by_build=len(data.skipped),
    ),
    recipe=config.identity(),
    recipe_file=s.recipe,
    seed=config.seed,
    versions=versions(),
    trained_on=dict(
      cpu=cpu_model(), device=jax.devices()[0].device_kind, date=datetime.date.today().isoformat()
    ),
    command=s.command().replace('experiments.loso', 'experiments.final_model'),
    loso=loso,
  )


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  parser, args = options.parse(argv, __doc__, 'python -m experiments.final_model', add_options)
  try:
    s = options.settings_from_args(args, OWN)
    if s.experiment.out is None:
      s = Settings(
        s.experiment,
        s.training,
        s.recipe,
        s.size,
        s.size_reason,
        pathlib.Path(str(s.out).replace('runs/loso-', 'runs/final-', 1)),
      )
    s, _ = networks.resolve_dtype(s, jax.devices())  # the card's recipe names it
    loso = loso_result(args.loso, s) if args.loso else None
  except UsageError as e:
    parser.error(str(e))
  try:
    data = input_pipeline.load_dataset(s, progress=False)
    messages.describe(s, data, jax.devices(), protocol=False)
    model = networks.build_model(s, data.num_classes)
    progress = not getattr(args, 'no_progress', False)
    variables = train_final(data.arrays, s.training, model, progress)
    folder = trained.save_model(s.out, variables, card(s, data, loso))
  except (UsageError, DatasetNotBuiltError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(
    f'final model in {folder}: {len(data.labels)} samples, every subject; load it with '
    f'hfa_jax.load_model({str(folder)!r}), predict with python -m experiments.predict '
    f'--model {folder} INPUT...'
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
