"""Leave-one-subject-out (LOSO) training and evaluation of HFA-Net.

    python -m experiments.loso                         # synthetic database, quick CPU preset
    python -m experiments.loso --dataset samm          # a dataset built by `python -m datasets.build`
    python -m experiments.loso --dataset casme2 --classes native --epochs 60 --size 224
    python -m experiments.loso --resume runs/loso-samm-composite-224px-seed0

Settings: built-in defaults < the --config file's get_config() < command-line options
(--config NAME is experiments/configs/NAME.py; default `synthetic` for the synthetic
dataset, `real` otherwise). Running the same command again with the same --out
continues a stopped run; --resume OUT continues it with the settings saved in OUT.

Writes to --out: summary.json, predictions.csv, confusion.png, curves.png, config.json,
checkpoints/ (orbax) and folds/ (one file per finished fold).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import importlib.util
import json
import os
import pathlib
import platform
import shlex
import sys
import time

import numpy as np

DATASETS = ('synthetic', 'samm', 'casme2', 'smic', 'megc2019', 'megc2019_flow_images')
NATIVE_OK = ('samm', 'casme2', 'smic')
CONFIG_DIR = pathlib.Path(__file__).resolve().parent / 'configs'
COMPOSITE = ('negative', 'positive', 'surprise')

# Settings of the experiment (the training settings are hfa_jax.loso.LosoConfig's fields).
EXPERIMENT_DEFAULTS = dict(
    dataset='synthetic', data_dir=None, classes='composite', keep_emotions=None, size=None,
    subjects=None, out=None, synthetic_subjects=4, synthetic_seed=0,
    model='hfa_jax:HFANet')


class UsageError(Exception):
  """A bad option or setting; the message says which and why."""


# ----------------------------------------------------------------------- settings


def loso_fields() -> dict:
  from hfa_jax.loso import LosoConfig
  return {f.name: f.default for f in dataclasses.fields(LosoConfig)}


def default_settings() -> dict:
  return {**EXPERIMENT_DEFAULTS, **loso_fields()}


def load_config_file(name: str) -> dict:
  """get_config() of experiments/configs/NAME.py (or of a .py path)."""
  path = pathlib.Path(name)
  if path.suffix != '.py':
    path = CONFIG_DIR / f'{name}.py'
  if not path.is_file():
    known = ', '.join(sorted(p.stem for p in CONFIG_DIR.glob('*.py') if p.stem != '__init__'))
    raise UsageError(f'--config {name}: no file {path} (configs: {known})')
  spec = importlib.util.spec_from_file_location(f'_loso_config_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise UsageError(f'--config {path} has no get_config()')
  cfg = dict(module.get_config())
  unknown = set(cfg) - set(default_settings())
  if unknown:
    raise UsageError(f'--config {path}: unknown settings {sorted(unknown)}')
  return cfg


def _positive_int(text):
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
  return value


def _nonneg_float(text):
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
  if not value >= 0:
    raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
  return value


def _bool(text):
  value = {'true': True, '1': True, 'yes': True, 'false': False, '0': False, 'no': False}.get(
      text.strip().lower())
  if value is None:
    raise argparse.ArgumentTypeError(f'{text!r} is not true/false')
  return value


def _list(text):
  return [s for s in (t.strip() for t in text.split(',')) if s]


def make_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog='python -m experiments.loso', description=__doc__.split('\n\n')[0],
      epilog=__doc__.split('\n\n', 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
      argument_default=argparse.SUPPRESS)
  a = p.add_argument
  a('--config', help='experiments/configs/NAME.py or a path (default: synthetic / real)')
  a('--dataset', choices=DATASETS, help='default synthetic')
  a('--data_dir', help='where datasets are built (default $TFDS_DATA_DIR or '
    '~/tensorflow_datasets; for synthetic: ./synthetic_data)')
  a('--classes', choices=('composite', 'native'),
    help="'composite': negative/positive/surprise (MEGC2019); 'native': the database's "
    'emotions (samm, casme2, smic)')
  a('--keep_emotions', type=_list, help='native classes to keep, comma-separated (default all)')
  a('--size', type=_positive_int, help='input side, a multiple of 32; flows are resized to it')
  a('--subjects', type=_list, help='test only these subjects (comma-separated): part of a LOSO')
  a('--epochs', type=_positive_int)
  a('--batch_size', type=_positive_int)
  a('--steps_per_epoch', type=int, help='0: one pass over the largest training set')
  a('--lr', dest='learning_rate', type=float, help='peak learning rate')
  a('--schedule', choices=('cosine', 'constant'))
  a('--warmup_epochs', type=_nonneg_float)
  a('--optimizer', choices=('adamw', 'adam'))
  a('--weight_decay', type=_nonneg_float)
  a('--grad_clip', type=_nonneg_float, help='global-norm clipping, 0 off')
  a('--label_smoothing', type=_nonneg_float)
  a('--augment', help="'none', or a '+'-joined subset of flip, shift (a flip negates u)")
  a('--max_shift', type=int, help='pixels, with --augment shift')
  a('--seed', type=int)
  a('--folds_in_parallel', type=int, help='folds trained at once (0: all; rounded up to a '
    'multiple of the device count)')
  a('--precise_bn', type=int, help='evaluate with BatchNorm statistics recomputed on this '
    'many training samples (0: the running averages)')
  a('--eval_every_epoch', type=_bool, help='evaluate the test subject after every epoch '
    '(curves only; the result is still the last epoch) or only after the last: true/false')
  a('--eval_batch_size', type=_positive_int)
  a('--checkpoint_every', type=_positive_int, help='epochs between checkpoints')
  a('--select_best_epoch_by_test', action='store_true', default=argparse.SUPPRESS,
    help="NOT honest: pick each fold's epoch by its own test accuracy (reported as such)")
  a('--synthetic_subjects', type=_positive_int, help='subjects per synthetic database')
  a('--synthetic_seed', type=int, help='seed of the synthetic databases')
  a('--model', help="'module:Class' of a linen module taking num_classes, called as "
    "(x, train) (default hfa_jax:HFANet)")
  a('--out', help='output folder (default runs/loso-DATASET-CLASSES-SIZEpx-seedSEED)')
  a('--resume', metavar='OUT', help='continue the run in OUT with its saved settings')
  a('--no_progress', action='store_true', default=argparse.SUPPRESS, help='no progress bar')
  return p


def settings_from_args(args: argparse.Namespace) -> dict:
  """defaults < config file < explicit options (or the saved settings with --resume)."""
  given = {k: v for k, v in vars(args).items() if k not in ('config', 'resume', 'no_progress')}
  if getattr(args, 'resume', None):
    saved = pathlib.Path(args.resume) / 'config.json'
    if not saved.is_file():
      raise UsageError(f'--resume {args.resume}: no run there ({saved} is missing)')
    if given or getattr(args, 'config', None):
      raise UsageError('--resume takes the saved settings; give no other settings with it '
                       f'(got {", ".join("--" + k for k in given) or "--config"})')
    settings = json.loads(saved.read_text())['settings']
    settings['out'] = str(args.resume)
    return settings
  settings = default_settings()
  dataset = given.get('dataset', settings['dataset'])
  config_name = getattr(args, 'config', None) or ('synthetic' if dataset == 'synthetic'
                                                   else 'real')
  settings.update(load_config_file(config_name))
  settings.update(given)
  settings['config'] = config_name
  return settings


def check_settings(s: dict):
  """Raises UsageError for settings that cannot work; fills dataset-dependent defaults."""
  if s['dataset'] not in DATASETS:
    raise UsageError(f"dataset must be one of {', '.join(DATASETS)}, got {s['dataset']!r}")
  if s['classes'] not in ('composite', 'native'):
    raise UsageError(f"classes must be 'composite' or 'native', got {s['classes']!r}")
  if s['classes'] == 'native' and s['dataset'] not in NATIVE_OK:
    raise UsageError(f"--classes native applies to {', '.join(NATIVE_OK)} (each database has "
                     f"its own emotions); {s['dataset']} has the composite classes only")
  if s['keep_emotions'] and s['classes'] != 'native':
    raise UsageError('--keep_emotions needs --classes native')
  if s['size'] is None:
    s['size'] = 32 if s['dataset'] in ('synthetic', 'megc2019_flow_images') else 224
  if s['size'] % 32:
    raise UsageError(f"--size must be a multiple of 32 (HFA-Net's total stride), got {s['size']}")
  try:
    loso_config(s).validate()
  except (ValueError, TypeError) as e:
    raise UsageError(str(e)) from None
  make_model(s['model'], 3)
  if s['out'] is None:
    s['out'] = os.path.join('runs', f"loso-{s['dataset']}-{s['classes']}-{s['size']}px-"
                            f"seed{s['seed']}")
  return s


def make_model(spec: str, num_classes: int):
  """A model from 'module:Class' (imported from the working directory or sys.path)."""
  module_name, _, attr = spec.partition(':')
  try:
    module = importlib.import_module(module_name)
    factory = getattr(module, attr)
  except (ImportError, AttributeError, ValueError) as e:
    raise UsageError(f"--model {spec}: cannot import it ({e}); use 'module:Class'") from None
  return factory(num_classes=num_classes)


def loso_config(s: dict):
  from hfa_jax.loso import LosoConfig
  return LosoConfig(**{k: s[k] for k in loso_fields()})


def reproduce_command(s: dict) -> str:
  """The command line that reruns these settings (every setting explicit)."""
  flag = {'learning_rate': 'lr'}
  parts = ['python', '-m', 'experiments.loso']
  for key, value in s.items():
    if key in ('config',) or value is None:
      continue
    name = '--' + flag.get(key, key)
    if key == 'select_best_epoch_by_test':
      if value:
        parts.append(name)
    elif isinstance(value, bool):
      parts += [name, str(value).lower()]
    elif isinstance(value, (list, tuple)):
      parts += [name, ','.join(map(str, value))]
    else:
      parts += [name, str(value)]
  return shlex.join(parts)


# --------------------------------------------------------------------------- data


def _synthetic(s: dict):
  """Generate (once) the synthetic databases and build them with the megc2019 builder."""
  from datasets import build as build_cli
  from datasets import synthetic
  from datasets.load import DatasetNotBuiltError, load_arrays
  root = pathlib.Path(s['data_dir'] or 'synthetic_data')
  tag = f"{s['synthetic_subjects']}subjects-seed{s['synthetic_seed']}"
  manual, data_dir = root / f'manual-{tag}', root / f'tfds-{tag}'
  try:
    return load_arrays('megc2019', data_dir, s['size']), data_dir
  except DatasetNotBuiltError:
    pass
  done = manual / '.complete'
  if not done.exists():
    print(f'generating the synthetic databases in {manual}', flush=True)
    synthetic.generate('all', manual, s['synthetic_subjects'], s['synthetic_seed'])
    done.touch()
  print(f'building them with the megc2019 builder into {data_dir}', flush=True)
  code = build_cli.main(['megc2019', '--manual_dir', str(manual), '--data_dir', str(data_dir),
                         '--size', str(s['size'])])
  if code != 0:
    raise SystemExit(f'building the synthetic dataset failed (exit code {code})')
  return load_arrays('megc2019', data_dir, s['size']), data_dir


def resize(images: np.ndarray, size: int) -> np.ndarray:
  """(N, H, W, 3) -> (N, size, size, 3), bilinear (antialiased when shrinking)."""
  import jax
  if images.shape[1:3] == (size, size):
    return images
  return np.asarray(jax.image.resize(images, (len(images), size, size, images.shape[-1]),
                                     'bilinear'))


def load_dataset(s: dict) -> dict:
  """images, labels, subjects, samples, databases, class_names of the chosen samples."""
  from datasets.load import DatasetNotBuiltError, load_arrays, metadata
  if s['dataset'] == 'synthetic':
    data, data_dir = _synthetic(s)
    name = 'megc2019'
  else:
    name, data_dir = s['dataset'], s['data_dir']
    try:
      data = load_arrays(name, data_dir, s['size'])
    except DatasetNotBuiltError as first:
      try:   # the default stored size, resized on load
        data = load_arrays(name, data_dir)
      except DatasetNotBuiltError:
        raise first from None
  meta = metadata(name, data_dir, data['flow'].shape[1])
  if s['classes'] == 'composite':
    labels = data['composite_label'].astype(np.int64)
    names = list(meta.get('composite_classes') or COMPOSITE)
  else:
    labels = data['emotion'].astype(np.int64)
    names = list(meta.get('emotions') or [])
    if not names:
      raise UsageError(f'{name} has no emotion names in its metadata')
    if s['keep_emotions']:
      unknown = sorted(set(s['keep_emotions']) - set(names))
      if unknown:
        raise UsageError(f'--keep_emotions: unknown {unknown}; {name} has {names}')
      keep = [names.index(e) for e in s['keep_emotions']]
      labels = np.where(np.isin(labels, keep), labels, -1)
  flows = data['flow'].astype(np.float32)
  if name == 'megc2019_flow_images':
    # Channels min-max scaled to [0, 1] per image: mirroring the flow maps u to 1 - u, so
    # centre them on [-1, 1], where the augmentation's flip (negate u) is exact.
    flows = 2 * flows - 1
  chosen = labels >= 0
  present = sorted(set(labels[chosen].tolist()))           # compact to classes present
  remap = {c: i for i, c in enumerate(present)}
  return dict(
      images=resize(flows[chosen], s['size']),
      labels=np.array([remap[c] for c in labels[chosen]], np.int32),
      subjects=data['subject'][chosen], samples=data['sample'][chosen],
      databases=data['database'][chosen], class_names=[names[c] for c in present],
      dropped=int((~chosen).sum()), source=name)


# ------------------------------------------------------------------------ outputs


def versions() -> dict:
  import importlib.metadata as md
  out = {'python': platform.python_version()}
  for pkg in ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy',
              'tensorflow-datasets'):
    try:
      out[pkg] = md.version(pkg)
    except md.PackageNotFoundError:
      out[pkg] = None
  return out


def summarize(result: dict, data: dict) -> dict:
  from hfa_jax import metrics
  pred = result['predictions']
  c = result['num_classes']
  dbs = data['databases'][pred['index']]
  per_db = {db: metrics.summarize(pred['label'][dbs == db], pred['pred'][dbs == db], c)
            for db in sorted(set(dbs.tolist()))}
  return dict(pooled=result['metrics'], per_database=per_db)


def write_predictions(path, result, data):
  pred = result['predictions']
  names = data['class_names']
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['subject', 'sample', 'database', 'true', 'predicted', 'epoch'] +
               [f'p_{n}' for n in names])
    for k, i in enumerate(pred['index']):
      w.writerow([data['subjects'][i], data['samples'][i], data['databases'][i],
                  names[pred['label'][k]], names[pred['pred'][k]], int(pred['epoch'][k])] +
                 [f'{p:.6f}' for p in pred['probs'][k]])


def plot_confusion(path, cm, names, title):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  cm = np.asarray(cm)
  fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2.5, 1.2 * len(names) + 2))
  rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
  ax.imshow(rows, cmap='Blues', vmin=0, vmax=1)
  for i in range(len(names)):
    for j in range(len(names)):
      ax.text(j, i, f'{cm[i, j]}', ha='center', va='center',
              color='white' if rows[i, j] > 0.5 else 'black')
  ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel='predicted',
         ylabel='true', title=title)
  ax.set_xticklabels(names, rotation=45, ha='right')
  ax.set_yticklabels(names)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_curves(path, history, honest: bool):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  from matplotlib.ticker import MaxNLocator
  fig, axes = plt.subplots(1, 3, figsize=(14, 4))
  keys = (('train_loss', 'training loss'), ('train_accuracy', 'training accuracy'),
          ('test_accuracy', 'test-subject accuracy' + ('' if honest else ' (used to pick epochs)')))
  for ax, (key, label) in zip(axes, keys):
    curves = np.array([h[key] for h in history.values()], np.float64)   # NaN: not evaluated
    epochs = np.arange(1, curves.shape[1] + 1)
    for c in curves:
      ax.plot(epochs, c, color='0.75', lw=0.8, marker='.')
    finite = np.isfinite(curves)        # epochs nobody evaluated stay NaN (no warning)
    mean = np.where(finite.any(0), np.where(finite, curves, 0).sum(0) / np.maximum(
        finite.sum(0), 1), np.nan)
    ax.plot(epochs, mean, color='C0', lw=2, marker='o', label='mean over folds')
    ax.set(xlabel='epoch', title=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def table(summary: dict, header: str) -> str:
  rows = [('all', summary['pooled'])] + list(summary['per_database'].items()) \
      if len(summary['per_database']) > 1 else [('all', summary['pooled'])]
  lines = [header, f"{'':12s} {'n':>5s} {'UF1':>7s} {'UAR':>7s} {'acc':>7s}"]
  for name, m in rows:
    lines.append(f"{name:12s} {m['n']:5d} {m['uf1']:7.4f} {m['uar']:7.4f} {m['accuracy']:7.4f}")
  return '\n'.join(lines)


# --------------------------------------------------------------------------- main


def run(s: dict, progress: bool = True, argv=None) -> dict:
  """Runs the LOSO of settings `s` and writes every output; returns the summary."""
  import jax
  from hfa_jax.loso import run_loso
  start = time.time()
  out = pathlib.Path(s['out'])
  saved = out / 'config.json'
  if saved.is_file():
    old = json.loads(saved.read_text())['settings']
    diff = {k for k in set(old) | set(s) if k not in ('out', 'config') and old.get(k) != s.get(k)}
    if diff:
      lines = '\n'.join(f'  {k}: saved {old.get(k)!r}, now {s.get(k)!r}' for k in sorted(diff))
      raise UsageError(f'{out} holds a run with other settings:\n{lines}\nRerun with the same '
                       f'settings (or --resume {out}) to continue it, or pick another --out.')
    print(f'continuing the run in {out}', flush=True)
  data = load_dataset(s)
  out.mkdir(parents=True, exist_ok=True)
  if not saved.is_file():
    saved.write_text(json.dumps(dict(settings=s, command=reproduce_command(s)), indent=1))
  names = data['class_names']
  everyone = sorted(set(data['subjects'].tolist()))
  unknown = [x for x in s['subjects'] or [] if x not in everyone]
  if unknown:
    raise UsageError(f'--subjects: unknown {unknown}; the data has {everyone}')
  n_subj = len(everyone)
  print(f"{data['source']}: {len(data['labels'])} samples, {n_subj} subjects, classes "
        f"{names} ({np.bincount(data['labels'], minlength=len(names)).tolist()})"
        + (f"; {data['dropped']} samples outside these classes left out" if data['dropped']
           else ''), flush=True)
  print(f'{jax.device_count()} {jax.devices()[0].device_kind} device(s); output in {out}',
        flush=True)
  config = loso_config(s)
  model = make_model(s['model'], len(names))
  result = run_loso(data['images'], data['labels'], data['subjects'], config, model,
                    num_classes=len(names), only_subjects=s['subjects'],
                    out_dir=out / 'state', progress=progress)
  summary = summarize(result, data)
  best = result['select_best_epoch_by_test']
  protocol = ("BEST EPOCH PER FOLD SELECTED BY ITS OWN TEST ACCURACY (optimistic, not "
              "comparable to honest results)" if best else
              'each fold evaluated after its last epoch (honest)')
  per_subject = result['per_subject']
  full = dict(
      dataset=s['dataset'], classes=names, protocol=protocol,
      select_best_epoch_by_test=best, uf1=summary['pooled']['uf1'],
      uar=summary['pooled']['uar'], accuracy=summary['pooled']['accuracy'],
      pooled=summary['pooled'], per_database=summary['per_database'],
      per_subject=per_subject, selected_epoch=result['selected_epoch'],
      n_samples=int(len(result['predictions']['index'])), n_folds=len(per_subject),
      settings=s, seed=s['seed'], steps_per_epoch=result['steps_per_epoch'],
      versions=versions(),
      devices=dict(platform=jax.devices()[0].platform, kind=jax.devices()[0].device_kind,
                   count=jax.device_count(), processes=jax.process_count()),
      wall_time_seconds=round(time.time() - start, 1),
      finished=datetime.datetime.now().isoformat(timespec='seconds'),
      command=reproduce_command(s), argv=list(sys.argv if argv is None else argv))
  if jax.process_index() == 0:
    (out / 'summary.json').write_text(json.dumps(full, indent=1))
    write_predictions(out / 'predictions.csv', result, data)
    title = (f"UF1 {full['uf1']:.3f}  UAR {full['uar']:.3f}" + ('  (best epoch by test!)'
                                                               if best else ''))
    plot_confusion(out / 'confusion.png', summary['pooled']['confusion'], names, title)
    plot_curves(out / 'curves.png', result['history'], honest=not best)
  header = (f"LOSO {s['dataset']} ({s['classes']}: {', '.join(names)}), {full['n_folds']} "
            f"folds, {full['n_samples']} test samples; {protocol}")
  print('\n' + table(summary, header))
  print(f"wall time {full['wall_time_seconds']:.0f} s; results in {out}")
  return full


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  parser = make_parser()
  args = parser.parse_args(argv)
  try:
    s = check_settings(settings_from_args(args))
  except UsageError as e:
    parser.error(str(e))
  _enable_compilation_cache()
  try:
    run(s, progress=not getattr(args, 'no_progress', False),
        argv=['python', '-m', 'experiments.loso', *argv])
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  except FileNotFoundError as e:
    from datasets.load import DatasetNotBuiltError
    if isinstance(e, DatasetNotBuiltError):
      print(f'error: {e}', file=sys.stderr)
      return 2
    raise
  except KeyboardInterrupt:
    print(f"\nstopped. Run the same command again (or --resume {s['out']}) to continue; "
          'finished folds and the last checkpoint are kept.', file=sys.stderr)
    return 130
  return 0


def _enable_compilation_cache():
  """Persistent XLA cache: a rerun (or a resume) skips the minutes of compilation."""
  import jax
  from hfa_jax.kernels import cache_root
  if os.environ.get('JAX_COMPILATION_CACHE_DIR') is None:
    jax.config.update('jax_compilation_cache_dir', str(cache_root() / 'xla'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 2.0)


if __name__ == '__main__':
  from hfa_jax import allocator
  allocator.restart_with_retained_memory()   # glibc keeps freed memory: fewer page faults
  sys.exit(main())
