"""Train the deployable model: a recipe on EVERY subject of a dataset (no test subject),
written as a model folder (hfa_jax.trained) that experiments.predict and hfa_jax.load_model
read.

    python -m experiments.final_model                                    # synthetic database
    python -m experiments.final_model --dataset megc2019_flow_images \\
        --loso runs/loso-megc2019_flow_images-composite-32px-seed0      # the card cites its LOSO
    python -m experiments.final_model --dataset samm --out models/samm

Takes every setting of experiments.loso (the same recipe files and options; the recipe is
chosen the same way), trains one model for the recipe's epochs on all samples, and writes
--out (default runs/final-DATASET-CLASSES-SIZEpx-seedSEED...): weights/ (orbax), model.json and
README.md (the card: classes, input, preprocessing, the training data (dataset, its source
folder, real or synthetic, samples, subjects, what the build skipped), recipe, seed, versions,
and the expected accuracy), and for HFA-Net the original network's PyTorch state dict.

A final model has no test subject: its expected accuracy is the LOSO result of the same
model, dataset, classes, size and recipe, which --loso RUN copies onto the card from a
finished, whole run; a run that differs is refused, naming the difference (with --any_loso
it goes on the card as another run's result, never as the expected accuracy). Without
--loso the card says: not measured.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

import jax

from experiments import input_pipeline, messages, model_card, networks, options
from experiments.loso import USER_ERRORS, Terminated, exit_code, sigterm_stops, stopped
from experiments.options import UsageError
from experiments.run_log import EpochLog
from hfa_jax import trained
from hfa_jax.loso.callbacks import StopAtEpochEnd
from hfa_jax.loso.final import train_final

OWN = ('loso', 'any_loso')


def add_options(parser):
  parser.add_argument(
    '--loso',
    metavar='RUN',
    type=pathlib.Path,
    default=None,
    help='a finished, whole experiments.loso run of the same model, dataset, classes, size and '
    'recipe: its result is the expected accuracy on the card',
  )
  parser.add_argument(
    '--any_loso',
    action='store_true',
    help="accept a --loso run that differs: the card names it another run's result (and the "
    'differences), not the expected accuracy',
  )


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  parser, args = options.parse(argv, __doc__, 'python -m experiments.final_model', add_options)
  try:
    if getattr(args, 'resume', None):
      raise UsageError(
        '--resume continues a LOSO run; a stopped final model goes on when its own command is '
        "run again (the recipe's settings: the LOSO run's command, with final_model for loso)"
      )
    s = model_card.final_settings(options.settings_from_args(args, OWN))
    ignored = model_card.not_for_a_final_model(s)
    if ignored:
      raise UsageError(
        f"{', '.join(ignored)}: a final model trains on every subject with no test or "
        'validation subjects, so these settings would do nothing; leave them out'
      )
    s, _ = networks.resolve_dtype(s, jax.devices())  # the card's recipe names it
    loso = model_card.loso_of(args.loso, s, args.any_loso) if args.loso else None
  except UsageError as e:
    parser.error(str(e))
  progress = not getattr(args, 'no_progress', False)
  try:
    data = input_pipeline.load_dataset(s, progress=False)
    loso = model_card.with_data(loso, args.loso, data, args.any_loso)
    messages.describe(s, data, jax.devices(), protocol=False)
    model = networks.build_model(s, data.num_classes)
    log = None if progress else EpochLog(what='final model')
    state = s.out / 'state'  # its checkpoints while it trains
    with sigterm_stops():
      variables = train_final(
        data.arrays,
        s.training,
        model,
        progress,
        log,
        out_dir=state,
        run_record=dict(dataset=s.experiment.dataset, classes=s.experiment.classes, size=s.size),
        callbacks=(StopAtEpochEnd(),),
      )
    folder = trained.save_model(s.out, variables, model_card.model_card(s, data, loso))
    shutil.rmtree(state)
  except (ValueError, *(kind for kind, _ in USER_ERRORS)) as e:
    print(f'error: {e}', file=sys.stderr)
    return exit_code(e)
  except KeyboardInterrupt as e:  # Terminated (SIGTERM, once the epoch is saved) or Ctrl-C
    return stopped(isinstance(e, Terminated), kept='the last checkpoint is kept')
  print(
    f'final model in {folder}: {len(data.labels)} samples, every subject; load it with '
    f'hfa_jax.load_model({str(folder)!r}), predict with hfa_jax predict '
    f'--model {folder} INPUT...'
  )
  return 0


if __name__ == '__main__':
  sys.exit(main())
