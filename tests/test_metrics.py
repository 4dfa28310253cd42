"""UF1 / UAR / accuracy against hand-computed cases."""

import numpy as np
import pytest

from hfa_jax import metrics


def test_hand_checked_three_classes():
  # rows true, columns predicted: [[1,1,0],[0,2,0],[1,0,1]]
  y_true = [0, 0, 1, 1, 2, 2]
  y_pred = [0, 1, 1, 1, 2, 0]
  np.testing.assert_array_equal(
    metrics.confusion_matrix(y_true, y_pred, 3), [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
  )
  # F1: class 0 = 2*1/(2+2) = .5, class 1 = 2*2/(2+3) = .8, class 2 = 2*1/(2+1) = 2/3
  assert metrics.uf1(y_true, y_pred, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
  # recall: 1/2, 2/2, 1/2
  assert metrics.uar(y_true, y_pred, 3) == pytest.approx(2 / 3)
  assert metrics.accuracy(y_true, y_pred) == pytest.approx(4 / 6)


def test_class_never_predicted_has_f1_zero():
  y_true = [0, 0, 1, 1, 2]
  y_pred = [0, 0, 1, 1, 1]  # class 2 has support 1, never predicted
  pc = metrics.per_class(metrics.confusion_matrix(y_true, y_pred, 3))
  np.testing.assert_allclose(pc['f1'], [1.0, 0.8, 0.0])
  assert metrics.uf1(y_true, y_pred, 3) == pytest.approx(1.8 / 3)
  assert metrics.uar(y_true, y_pred, 3) == pytest.approx(2 / 3)


def test_class_predicted_but_absent_from_ground_truth():
  y_true = [0, 0, 1, 1]  # class 2 absent, but predicted once
  y_pred = [0, 2, 1, 1]
  # class 0: F1 2*1/(2+1) = 2/3, recall 1/2; class 1: F1 1, recall 1; class 2: F1 0
  # (tp 0, predicted 1; MEGC / sklearn macro F1 count it), recall undefined (left out)
  assert metrics.uf1(y_true, y_pred, 3) == pytest.approx((2 / 3 + 1 + 0) / 3)
  assert metrics.uar(y_true, y_pred, 3) == pytest.approx(0.75)
  assert metrics.accuracy(y_true, y_pred) == pytest.approx(0.75)
  s = metrics.summarize(y_true, y_pred, 3)
  assert s['support'] == [2, 2, 0] and s['n'] == 4
  assert s['uf1'] == pytest.approx(5 / 9) and s['uar'] == pytest.approx(0.75)


def test_class_neither_true_nor_predicted_is_left_out():
  # a subject with only classes 0 and 1, none predicted as 2: class 2 plays no part
  assert metrics.uf1([0, 1, 1], [0, 1, 0], 3) == pytest.approx((2 / 3 + 2 / 3) / 2)
  assert metrics.uar([0, 1, 1], [0, 1, 0], 3) == pytest.approx((1 + 0.5) / 2)


def test_fold_missing_a_class_is_pooled_not_averaged():
  # Fold A's test subject has only class 0, fold B's classes 1 and 2.
  true_a, pred_a = [0, 0], [0, 1]
  true_b, pred_b = [1, 2], [1, 2]
  pooled_true, pooled_pred = true_a + true_b, pred_a + pred_b
  # pooled: class 0 F1 2/3 (tp 1, support 2, predicted 1), class 1 F1 2/3 (tp 1, support 1,
  # predicted 2), class 2 F1 1; recalls 1/2, 1, 1.
  assert metrics.uf1(pooled_true, pooled_pred, 3) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
  assert metrics.uar(pooled_true, pooled_pred, 3) == pytest.approx(2.5 / 3)
  # averaging per fold would give a different (wrong) number; fold A: class 0 F1 2/3,
  # class 1 predicted but absent F1 0; fold B: both 1
  per_fold = (metrics.uf1(true_a, pred_a, 3) + metrics.uf1(true_b, pred_b, 3)) / 2
  assert per_fold == pytest.approx((1 / 3 + 1) / 2)
  assert per_fold != pytest.approx(metrics.uf1(pooled_true, pooled_pred, 3))


def test_perfect_and_errors():
  assert metrics.uf1([0, 1, 2], [0, 1, 2], 3) == 1.0
  assert np.isnan(metrics.uf1([], [], 3))
  with pytest.raises(ValueError, match='outside'):
    metrics.confusion_matrix([0, 3], [0, 1], 3)
  with pytest.raises(ValueError, match='differ'):
    metrics.confusion_matrix([0, 1], [0], 3)


def test_by_group_splits_before_pooling():
  y_true = [0, 1, 2, 0, 1]
  y_pred = [0, 1, 1, 1, 1]
  groups = ['casme2', 'casme2', 'casme2', 'smic', 'smic']
  out = metrics.by_group(y_true, y_pred, groups, 3)
  assert sorted(out) == ['casme2', 'smic']
  # casme2: F1 1, 2/3 (tp 1, support 1, predicted 2), 0 -> 5/9; recall 1, 1, 0
  assert out['casme2']['uf1'] == pytest.approx(5 / 9) and out['casme2']['uar'] == pytest.approx(
    2 / 3
  )
  # smic: class 0 F1 0 (tp 0), class 1 F1 2/3; recall 0 and 1
  assert out['smic']['uf1'] == pytest.approx(1 / 3) and out['smic']['n'] == 2


def test_uf1_of_confusions_is_uf1_for_each_matrix():
  rng = np.random.default_rng(3)
  y, p = rng.integers(0, 3, (4, 30)), rng.integers(0, 3, (4, 30))
  p[0] = np.where(p[0] == 2, 0, p[0])  # class 2 never predicted
  y[1], p[1] = np.where(y[1] == 2, 1, y[1]), np.where(p[1] == 2, 1, p[1])  # class 2 unseen
  cm = np.stack([metrics.confusion_matrix(a, b, 3) for a, b in zip(y, p)])
  np.testing.assert_allclose(
    metrics.uf1_of_confusions(cm), [metrics.uf1(a, b, 3) for a, b in zip(y, p)], rtol=1e-12
  )
  assert np.isnan(metrics.uf1_of_confusions(np.zeros((3, 3))))  # no sample: as uf1


def test_subject_bootstrap_by_hand():
  """Subject a (labels 0, 1; both right) and b (label 0, predicted 1). Each replicate draws two
  subjects: (a, a) pools 0 1 0 1 all right, UF1 1; (b, b) only wrong answers, UF1 0; a and b
  pool labels 0 1 0 as 0 1 1, F1 2/3 for both classes: UF1 2/3, drawn half of the time."""
  y, p, s = [0, 1, 0], [0, 1, 1], ['a', 'a', 'b']
  got = metrics.subject_bootstrap_uf1(y, [p], s, 2, replicates=4000, seed=1)[:, 0]
  values, counts = np.unique(np.round(got, 12), return_counts=True)
  np.testing.assert_allclose(values, [0, 2 / 3, 1])
  np.testing.assert_allclose(counts / 4000, [0.25, 0.5, 0.25], atol=0.03)


def test_subject_bootstrap_pools_the_drawn_subjects_samples():
  """Each replicate equals uf1 of the samples of its drawn subjects concatenated (a subject
  drawn twice, twice), for every prediction vector, all under the same draw."""
  rng = np.random.default_rng(0)
  y, preds = rng.integers(0, 4, 60), rng.integers(0, 4, (3, 60))
  subjects = np.array([f's{i}' for i in rng.integers(0, 9, 60)])
  got = metrics.subject_bootstrap_uf1(y, preds, subjects, 4, replicates=20, seed=5)
  names = np.unique(subjects)
  draws = np.random.default_rng(5).integers(0, len(names), size=(20, len(names)))
  for b, draw in enumerate(draws):
    idx = np.concatenate([np.flatnonzero(subjects == names[d]) for d in draw])
    want = [metrics.uf1(y[idx], p[idx], 4) for p in preds]
    np.testing.assert_allclose(got[b], want, rtol=1e-12)


def test_a_stratified_bootstrap_draws_each_stratum_among_itself():
  """One subject per stratum: every replicate draws each once, the pooled UF1 itself; two
  strata of several: each replicate pools its strata's draws, as many as each has; a
  subject in two strata is refused."""
  y, p = np.array([0, 1, 0, 2]), np.array([0, 1, 1, 2])
  got = metrics.subject_bootstrap_uf1(y, [p], ['a', 'a', 'b', 'b'], 3, 50, strata=list('xxyy'))
  np.testing.assert_allclose(got[:, 0], metrics.uf1(y, p, 3))
  rng = np.random.default_rng(2)
  y, preds = rng.integers(0, 3, 80), rng.integers(0, 3, (2, 80))
  subjects = np.array([f's{i}' for i in rng.integers(0, 10, 80)])
  strata = np.where(np.isin(subjects, ['s0', 's1', 's2', 's3']), 'smic', 'casme2')
  got = metrics.subject_bootstrap_uf1(y, preds, subjects, 3, 30, seed=4, strata=strata)
  names = np.unique(subjects)
  groups = [
    names[~np.isin(names, ['s0', 's1', 's2', 's3'])],
    names[np.isin(names, ['s0', 's1', 's2', 's3'])],
  ]
  draw = np.random.default_rng(4)  # casme2 then smic: the strata in their names' order
  drawn = np.concatenate([g[draw.integers(0, len(g), (30, len(g)))] for g in groups], axis=1)
  for b in range(30):
    idx = np.concatenate([np.flatnonzero(subjects == d) for d in drawn[b]])
    np.testing.assert_allclose(got[b], [metrics.uf1(y[idx], q[idx], 3) for q in preds])
  with pytest.raises(ValueError, match='two strata'):
    metrics.subject_bootstrap_uf1(y[:2], p[:2], ['a', 'a'], 3, 5, strata=['x', 'y'])
