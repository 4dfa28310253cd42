"""What a LOSO run writes: the summary, every prediction, the plots and the printed table.

    result = run_loso(images, labels, subjects, config, strata=databases, out_dir=out / 'state')
    summary = report.write(out, result, data, extra=dict(settings=..., command=...))
    print(report.table(summary))

`result` is run_loso's pooled result (`LosoResult.pool()`, a dict); `data` the input
pipeline's datasets.load.TrainingData (class_names, subjects, samples, databases, source;
`skipped`, the samples the build left out, is listed in the summary).
A run that tested fewer subjects than the data has (`--subjects`, part of a LOSO) is marked
partial in the summary (subjects_covered, subjects_total, partial) and in the table.
"""

from __future__ import annotations

import csv
import pathlib

import numpy as np

from hfa_jax import metrics
from hfa_jax.loso.plan import natural_key
from hfa_jax.files import write_json


def summary(result: dict, data: dict, extra: dict | None = None) -> dict:
  """The JSON-friendly record of a run: metrics pooled, per database, per subject; protocol."""
  pred = result['predictions']
  dbs = np.asarray(data.databases)[pred['index']]
  pooled = result['metrics']
  tested, everyone = set(result['per_subject']), set(np.asarray(data.subjects).tolist())
  out = dict(
    dataset=data.source,
    source=data.source,
    protocol=result['protocol'],
    select_epoch=result['select_epoch'],
    # best_test picks each fold's epoch by its own test subject: not an honest estimate
    honest=result['select_epoch'] != 'best_test',
    classes=list(data.class_names),
    uf1=pooled['uf1'],
    uar=pooled['uar'],
    accuracy=pooled['accuracy'],
    pooled=pooled,
    per_database=metrics.by_group(pred['label'], pred['pred'], dbs, result['num_classes']),
    per_subject=result['per_subject'],
    per_subject_convention=(
      'UF1 over the classes true or predicted for the subject (a '
      'class predicted but absent counts F1 0); UAR over the classes '
      'true for it'
    ),
    selected_epoch=result['selected_epoch'],
    n_samples=int(len(pred['index'])),
    n_folds=len(result['selected_epoch']),
    steps_per_epoch=result['steps_per_epoch'],
    skipped_by_build=list(data.skipped or []),
    subjects_covered=len(tested),
    subjects_total=len(everyone | tested),
    partial=bool(everyone - tested),
    subjects_not_tested=sorted(everyone - tested, key=natural_key),
  )
  out.update(extra or {})
  return out


def coverage(record: dict) -> str:
  """'40/40' or '2/68 (partial)': the subjects a run tested, of those its data has."""
  covered = record.get('subjects_covered', len(record.get('per_subject') or {}))
  total = record.get('subjects_total')
  partial = record.get('partial', bool((record.get('settings') or {}).get('subjects')))
  return f'{covered}/{total if total is not None else "?"}' + (' (partial)' if partial else '')


def write(out: str | pathlib.Path, result: dict, data: dict, extra: dict | None = None) -> dict:
  """Writes summary.json, predictions.csv, confusion.png and curves.png into `out`."""
  out = pathlib.Path(out)
  record = summary(result, data, extra)
  write_json(out / 'summary.json', record)
  write_predictions(out / 'predictions.csv', result, data)
  honest = result['select_epoch'] != 'best_test'
  part = (
    f"  (partial: {record['subjects_covered']} of {record['subjects_total']} subjects)"
    if record.get('partial')
    else ''
  )
  title = f"UF1 {record['uf1']:.3f}  UAR {record['uar']:.3f}" + (
    '' if honest else '  (best epoch by test!)'
  )
  plot_confusion(
    out / 'confusion.png', record['pooled']['confusion'], record['classes'], title + part
  )
  plot_curves(
    out / 'curves.png', result['history'], result['protocol'] + curves_note(record) + part, honest
  )
  return record


def curves_note(record: dict) -> str:
  """What curves.png's curves are where they are not the scored models': an ensemble's first
  member per fold, the first phase of a retrained run."""
  settings = record.get('settings') or {}
  said = []
  if (settings.get('ensemble') or 1) > 1:
    said.append("curves of each fold's first model")
  if settings.get('retrain'):
    said.append('curves of the first phase; the scored models were retrained')
  return f" ({'; '.join(said)})" if said else ''


def write_predictions(path, result: dict, data: dict):
  """One row per test sample: subject, sample, database, fold, classes, epoch, probabilities."""
  pred = result['predictions']
  names = data.class_names
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(
      ['subject', 'sample', 'database', 'true', 'predicted', 'epoch'] + [f'p_{n}' for n in names]
    )
    for k, i in enumerate(pred['index']):
      w.writerow(
        [
          data.subjects[i],
          data.samples[i],
          data.databases[i],
          names[pred['label'][k]],
          names[pred['pred'][k]],
          int(pred['epoch'][k]),
        ]
        + [f'{p:.6f}' for p in pred['probs'][k]]
      )


def table(record: dict) -> str:
  """The printed result: pooled and per-database UF1 / UAR / accuracy, and the protocol."""
  rows = [('all', record['pooled'])]
  if len(record['per_database']) > 1:
    rows += list(record['per_database'].items())
  lines = [
    f"LOSO {record.get('dataset') or ''} ({', '.join(record['classes'])}), "
    f"{record['n_folds']} fold{'s' * (record['n_folds'] != 1)}, {record['n_samples']} test "
    f'samples, subjects {coverage(record)}',
  ]
  if record.get('partial'):
    lines.append(
      f"PARTIAL RUN: {record['subjects_covered']} of {record['subjects_total']} subjects "
      'tested (--subjects); the numbers pool those subjects only and are not a full LOSO\'s'
    )
  lines += [
    f"protocol: {record['protocol']}",
    f"{'':12s} {'n':>5s} {'UF1':>7s} {'UAR':>7s} {'acc':>7s}",
  ]
  for name, m in rows:
    lines.append(f"{name:12s} {m['n']:5d} {m['uf1']:7.4f} {m['uar']:7.4f} {m['accuracy']:7.4f}")
  return '\n'.join(lines + _skipped_lines(record))


def _skipped_lines(record: dict) -> list[str]:
  """The samples the build left out; for the synthetic copy, that this is expected."""
  skipped = record.get('skipped_by_build') or []
  if not skipped:
    return []
  lines = [
    'skipped by the build (reasons in summary.json): '
    + ', '.join(s['sample'] for s in skipped[:5])
    + (' ...' if len(skipped) > 5 else '')
  ]
  absent = [s for s in skipped if 'listed sample' in s['sample']]
  if record.get('source') == 'synthetic' and absent:
    lines.append(
      '  (expected for the synthetic copy: it holds only the first few subjects of each '
      "database, so the MEGC2019 composite's samples of the others are absent)"
    )
  return lines


def plot_confusion(path, cm, names, title):
  """Counts in the cells; colour = the fraction of the true class's row."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  cm = np.asarray(cm)
  fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3.2, 1.2 * len(names) + 2))
  rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
  image = ax.imshow(rows, cmap='Blues', vmin=0, vmax=1)
  fig.colorbar(image, ax=ax, label='fraction of the true class', fraction=0.046, pad=0.04)
  for i in range(len(names)):
    for j in range(len(names)):
      ax.text(
        j,
        i,
        f'{cm[i, j]}',
        ha='center',
        va='center',
        color='white' if rows[i, j] > 0.5 else 'black',
      )
  ax.set(
    xticks=range(len(names)),
    yticks=range(len(names)),
    xlabel='predicted',
    ylabel='true',
    title=title,
  )
  ax.set_xticklabels(names, rotation=45, ha='right')
  ax.set_yticklabels(names)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_curves(path, history: dict, protocol: str, honest: bool = True):
  """Per-fold (grey) and mean curves per epoch: training loss and accuracy, test-subject
  accuracy and, with validation selection, validation UF1."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  from matplotlib.ticker import MaxNLocator

  keys = [
    ('train_loss', 'training loss'),
    ('train_accuracy', 'training accuracy'),
    ('test_accuracy', 'test-subject accuracy' + ('' if honest else ' (used to pick epochs!)')),
  ]
  if any(h.get('val_uf1') for h in history.values()):
    keys.append(('val_uf1', 'validation UF1 (picks the epoch)'))
  fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 4.2))
  for ax, (key, label) in zip(axes, keys):
    curves = [[np.nan if v is None else v for v in h.get(key) or []] for h in history.values()]
    length = max(len(c) for c in curves)
    curves = np.array([c + [np.nan] * (length - len(c)) for c in curves], np.float64)
    epochs = np.arange(1, length + 1)
    for c in curves:
      ax.plot(epochs, c, color='0.75', lw=0.8, marker='.')
    finite = np.isfinite(curves)  # epochs nobody evaluated stay NaN (no warning)
    mean = np.where(
      finite.any(0), np.where(finite, curves, 0).sum(0) / np.maximum(finite.sum(0), 1), np.nan
    )
    ax.plot(epochs, mean, color='C0', lw=2, marker='o', label='mean over folds')
    ax.set(xlabel='epoch', title=label, xlim=(0.5, length + 0.5))
    if key != 'train_loss':
      ax.set_ylim(-0.02, 1.02)
    if length <= 10:  # MaxNLocator falls back to fractions below 2 whole epochs
      ax.set_xticks(epochs)
    else:
      ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
  fig.suptitle(protocol, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
