"""The plots say what they show: the confusion matrix's colour bar, and curves of 1-2
epochs drawn as points on epoch axes (not single dots on nonsense axes). The summary and
the printed table say which subjects a run tested (a --subjects part is marked partial), and
that the synthetic copy's absent listed samples are expected."""

import dataclasses
import json

import matplotlib

matplotlib.use('Agg')
import matplotlib.figure  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from datasets.load import TrainingData  # noqa: E402
from hfa_jax import report  # noqa: E402


@pytest.fixture
def saved(monkeypatch):
  """The figures report.* saves, kept open for inspection."""
  figures = []
  real = matplotlib.figure.Figure.savefig

  def keep(fig, path, **kwargs):
    figures.append(fig)
    return real(fig, path, **kwargs)

  monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', keep)
  return figures


def test_confusion_has_a_colour_bar_saying_what_colour_means(tmp_path, saved):
  cm = np.array([[5, 1, 0], [2, 2, 0], [0, 0, 3]])
  report.plot_confusion(tmp_path / 'c.png', cm, ['negative', 'positive', 'surprise'], 'title')
  (fig,) = saved
  main, bar = fig.axes
  assert bar.get_ylabel() == 'fraction of the true class'
  assert [t.get_text() for t in main.texts] == [str(v) for v in cm.ravel()]  # counts in cells
  np.testing.assert_allclose(main.images[0].get_array()[1], [0.5, 0.5, 0])  # row fractions
  assert (tmp_path / 'c.png').read_bytes()[:4] == b'\x89PNG'


@pytest.mark.parametrize('epochs', [1, 2])
def test_short_curves_have_epoch_axes(tmp_path, saved, epochs):
  history = {
    f'fold{i}': dict(
      train_loss=[1.0 - 0.1 * e for e in range(epochs)],
      train_accuracy=[0.5] * epochs,
      test_accuracy=[None] * (epochs - 1) + [0.7],
    )
    for i in range(3)
  }
  report.plot_curves(tmp_path / 'k.png', history, 'protocol text')
  (fig,) = saved
  assert len(fig.axes) == 3
  for ax in fig.axes:
    assert ax.get_xlim() == (0.5, epochs + 0.5)
    ticks = [t for t in ax.get_xticks() if 0.5 <= t <= epochs + 0.5]
    assert ticks == list(range(1, epochs + 1))  # whole epochs only
    assert all(line.get_marker() not in (None, '', 'None') for line in ax.lines)
  assert fig.axes[1].get_ylim() == (-0.02, 1.02)  # accuracies on 0..1


def fake_run(tested, everyone, source='megc2019_flow_images'):
  """run_loso's pooled result for the subjects `tested`, and the TrainingData of `everyone`
  (2 samples each, alternating databases)."""
  from hfa_jax import metrics

  subjects = np.repeat(everyone, 2)
  data = TrainingData(
    images=np.zeros((len(subjects), 4, 4, 3), np.float32),
    labels=np.arange(len(subjects)) % 3,
    class_names=['negative', 'positive', 'surprise'],
    subjects=subjects,
    samples=np.array([f'{s}_{i}' for i, s in enumerate(subjects)]),
    databases=np.array(['casme2', 'samm'] * len(everyone)),
    source=source,
    skipped=[],
  )
  index = np.flatnonzero(np.isin(subjects, tested))
  label = index % 3
  pred = np.where(index % 4 == 0, (label + 1) % 3, label)
  result = dict(
    predictions=dict(
      index=index,
      subject=subjects[index],
      label=label,
      pred=pred,
      probs=np.eye(3)[pred],
      epoch=np.full(len(index), 2),
    ),
    metrics=metrics.summarize(label, pred, 3),
    per_subject={s: dict(n=2) for s in tested},
    protocol='LOSO, last epoch (honest)',
    select_epoch='last',
    num_classes=3,
    selected_epoch={s: 2 for s in tested},
    steps_per_epoch=1,
    history={
      s: dict(train_loss=[1.0, 0.5], train_accuracy=[0.5, 0.6], test_accuracy=[None, 0.5])
      for s in tested
    },
  )
  return result, data


def test_a_full_run_covers_every_subject():
  everyone = [f'sub{i:02d}' for i in range(1, 6)]
  record = report.summary(*fake_run(everyone, everyone))
  assert (record['subjects_covered'], record['subjects_total'], record['partial']) == (5, 5, False)
  assert record['subjects_not_tested'] == []
  text = report.table(record)
  assert 'subjects 5/5' in text.splitlines()[0] and 'partial' not in text.lower()


def test_a_subjects_subset_is_marked_partial_in_summary_and_table(tmp_path):
  everyone = [f's{i}' for i in range(1, 69)]
  result, data = fake_run(['s2', 's10'], everyone)
  record = report.write(tmp_path, result, data, extra=dict(dataset='megc2019_flow_images'))
  saved = json.loads((tmp_path / 'summary.json').read_text())
  assert (saved['subjects_covered'], saved['subjects_total'], saved['partial']) == (2, 68, True)
  assert saved['subjects_not_tested'][:3] == ['s1', 's3', 's4']  # natural order
  assert len(saved['subjects_not_tested']) == 66 and saved['n_samples'] == 4
  lines = report.table(record).splitlines()
  assert lines[0].startswith('LOSO megc2019_flow_images (negative, positive, surprise)')
  assert lines[0].endswith('subjects 2/68 (partial)')
  assert lines[1].startswith('PARTIAL RUN: 2 of 68 subjects tested (--subjects)')


def test_coverage_of_a_summary_written_before_it_was_recorded():
  old = dict(per_subject={'s1': {}, 's2': {}}, settings=dict(subjects=['s1', 's2']))
  assert report.coverage(old) == '2/? (partial)'
  assert report.coverage(dict(per_subject={'s1': {}}, settings=dict(subjects=None))) == '1/?'


SKIPPED = [
  {'sample': 'casme2: 126 listed sample(s)', 'reason': 'in the MEGC2019 composite list but ...'},
  {'sample': 'samm: 120 listed sample(s)', 'reason': 'in the MEGC2019 composite list but ...'},
]


@pytest.mark.parametrize('source, expected', [('synthetic', True), ('megc2019', False)])
def test_absent_listed_samples_of_the_synthetic_copy_are_said_to_be_expected(source, expected):
  everyone = ['sub01', 'sub02']
  result, data = fake_run(everyone, everyone, source=source)
  text = report.table(report.summary(result, dataclasses.replace(data, skipped=SKIPPED)))
  assert 'skipped by the build (reasons in summary.json): casme2: 126 listed sample(s)' in text
  assert (
    'expected for the synthetic copy: it holds only the first few subjects' in text
  ) is expected


def test_the_curves_say_when_they_are_not_the_scored_models():
  assert report.curves_note(dict(settings=dict(ensemble=1))) == ''
  assert report.curves_note(dict(settings=dict(ensemble=3))) == (
    " (curves of each fold's first model)"
  )
  assert report.curves_note(dict(settings=dict(ensemble=1, retrain=True))) == (
    ' (curves of the first phase; the scored models were retrained)'
  )
  assert report.curves_note({}) == ''  # a record without settings (run_loso's own)
