"""The plots say what they show: the confusion matrix's colour bar, and curves of 1-2
epochs drawn as points on epoch axes (not single dots on nonsense axes)."""

import matplotlib

matplotlib.use('Agg')
import matplotlib.figure  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

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
