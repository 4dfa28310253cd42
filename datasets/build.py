"""Build one micro-expression dataset from a licensed copy (run from the repository root).

    python -m datasets.build NAME --manual_dir DIR [--data_dir DIR] [--size N] [--workers N]
                             [--on_error skip|stop] [--apex middle|max_motion]
                             [--missing_apex skip|middle] [--overwrite]

NAME: casme2, samm, smic, megc2019, megc2019_flow_images. The dataset is written to
DATA_DIR/NAME/size_N[_options]/VERSION/ (array_record files, readable without TensorFlow by
`datasets.load.load_arrays`). Bad samples are skipped and listed (--on_error skip, default) or
stop the build at the first one (--on_error stop). An interrupted or stopped build leaves no
partial dataset and keeps every dataset already built; running the same command again resumes
with the flows already computed (cached under DATA_DIR/.flow_cache/ until the build succeeds).
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys

from datasets.common import flows, registry
from datasets.common.report import skipped_count


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(
    prog='python -m datasets.build',
    description=__doc__.split('\n\n')[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument('name', choices=registry.NAMES)
  p.add_argument('--manual_dir', required=True, help='folder holding your copy of the database')
  p.add_argument(
    '--data_dir',
    default=None,
    help='where to write the dataset (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)',
  )
  p.add_argument(
    '--size',
    type=int,
    default=None,
    help='side of the stored flow images (default 224; 28 for megc2019_flow_images)',
  )
  p.add_argument(
    '--workers',
    type=int,
    default=None,
    help=f'flow-extraction processes (default: all {flows.default_workers()} cores)',
  )
  p.add_argument(
    '--on_error',
    choices=('skip', 'stop'),
    default='skip',
    help='bad sample: skip it and list it in the summary, or stop at the first',
  )
  p.add_argument(
    '--apex',
    choices=('middle', 'max_motion'),
    default='middle',
    help='SMIC apex strategy (smic, megc2019)',
  )
  p.add_argument(
    '--missing_apex',
    choices=('skip', 'middle'),
    default='skip',
    help="'/' apex: treat as a bad sample, or use the middle frame of "
    'onset..offset (casme2, samm, megc2019)',
  )
  p.add_argument(
    '--overwrite',
    action='store_true',
    help='rebuild an existing dataset (the old one is kept until the new one is done)',
  )
  p.add_argument('--no_progress', action='store_true', help='no progress bar')
  args = p.parse_args(argv)
  # Which builders take an option: those with a predefined config using it (BUILDER_CONFIGS).
  for option, default in (('apex', 'middle'), ('missing_apex', 'skip')):
    if getattr(args, option) != default:
      takers = registry.with_option(option, default)
      if args.name not in takers:
        p.error(f'--{option} applies to {", ".join(takers)} only')
  if args.size is not None and args.size < 8:
    p.error('--size must be at least 8')
  return args


def make_builder(args: argparse.Namespace):
  import tensorflow_datasets as tfds
  from datasets.common import builder as base

  cls = registry.builder_class(args.name)
  config = base.select_config(cls, args.size, args.apex, args.missing_apex)
  return cls(
    data_dir=args.data_dir or base.default_data_dir(),
    config=config,
    file_format=tfds.core.FileFormat.ARRAY_RECORD,
    on_error=args.on_error,
    workers=args.workers,
    progress=not args.no_progress,
  )


def _remove_stale(builder) -> None:
  """Temp folders of builds killed before TFDS could clean up (never a finished dataset)."""
  for stale in builder.data_path.parent.glob(f'incomplete.*_{builder.data_path.name}'):
    shutil.rmtree(stale, ignore_errors=True)


def build(args: argparse.Namespace) -> int:
  """Build; return the exit code (0 built or already there, 1 stopped, 2 bad manual folder)."""
  builder = make_builder(args)
  target = pathlib.Path(builder.data_path)
  name = f'{args.name}/{builder.builder_config.name}'
  backup = target.parent / f'previous_{target.name}'
  if _restore_previous(target, backup, name):
    builder = make_builder(args)  # reads the restored info
  if (target / 'dataset_info.json').exists() and not args.overwrite:
    meta = builder.info.metadata or {}
    print(
      f'{name} is already built at {target} ({meta.get("num_examples", "?")} examples, '
      f'{skipped_count(meta.get("skipped", []))} samples skipped). Pass --overwrite to rebuild it.'
    )
    return 0
  _remove_stale(builder)
  if target.exists():  # --overwrite, or a version folder without dataset_info.json
    shutil.rmtree(backup, ignore_errors=True)
    target.rename(backup)
  code = None
  try:
    code = _download_and_prepare(builder, args, name)
  finally:
    if backup.exists():
      if code == 0:
        shutil.rmtree(backup, ignore_errors=True)
      elif not target.exists():
        backup.rename(target)  # the previous build stays in place
  if code != 0:
    return code
  builder.remove_cache()
  print(builder.report.format())
  print(f'written to {target}')
  return 0


def _restore_previous(target: pathlib.Path, backup: pathlib.Path, name: str) -> bool:
  """After an --overwrite killed before it finished: put the previous build (set aside in
  `backup`) back in place if the new one is not done; True if it was put back."""
  if not backup.exists():
    return False
  if (target / 'dataset_info.json').exists():
    shutil.rmtree(backup, ignore_errors=True)  # killed after the new one was done
    return False
  if not (backup / 'dataset_info.json').exists():
    return False
  shutil.rmtree(target, ignore_errors=True)
  backup.rename(target)
  print(
    f'{name}: restored the previous build, left aside by an --overwrite that did not finish',
    flush=True,
  )
  return True


def _download_and_prepare(builder, args: argparse.Namespace, name: str) -> int:
  """Run the TFDS build; 0 if done, else the exit code, the reason printed to stderr."""
  import tensorflow_datasets as tfds
  from datasets.common.builder import BuildStopped
  from datasets.common.layout import ManualDirError

  tfds.disable_progress_bar()
  try:
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
        manual_dir=str(pathlib.Path(args.manual_dir).expanduser())
      )
    )
  except ManualDirError as e:
    print(f'\n{args.name}: unusable manual folder {args.manual_dir}\n{e}', file=sys.stderr)
    return 2
  except BuildStopped as e:
    if builder.report.skipped:
      print(builder.report.format(), file=sys.stderr)
    print(f'\n{e}', file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    print(
      f'\n{name}: interrupted; nothing was written. Run the same command again: the '
      f'flows computed so far are cached in {builder.cache_dir}.',
      file=sys.stderr,
    )
    return 130
  return 0


def main(argv=None) -> int:
  return build(parse_args(argv))


if __name__ == '__main__':
  sys.exit(main())
