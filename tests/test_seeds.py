"""python -m experiments.seeds: each member of an --ensemble K run scored as its own LOSO
(member 0 is the single model of the seed), mean +- std, paired differences."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from experiments import seeds
from tests.conftest import TINY
from tests.test_cli import _run


@pytest.fixture(scope='module')
def runs(tmp_path_factory, tiny_data, tiny_run):
  tmp = tmp_path_factory.mktemp('seeds')
  common = [*TINY, '--data_dir', str(tiny_data)]
  out = {'single': tiny_run[0], 'single stdout': tiny_run[1].stdout}  # TINY with one seed
  for name, extra in (
    ('three', ['--ensemble', '3']),
    ('longer', ['--ensemble', '3', '--epochs', '3', '--select_epoch', 'best_test']),
    ('seed1', ['--ensemble', '2', '--seed', '1']),
  ):
    out[name] = tmp / name
    proc = _run([*common, *extra, '--out', str(out[name])])
    assert proc.returncode == 0, proc.stderr[-2000:]
    out[name + ' stdout'] = proc.stdout
  return out


def test_members_are_independent_loso_runs(runs, tmp_path, capsys):
  members, ensemble, k = seeds.member_scores(*seeds.run_result(runs['three']))
  single = json.loads((runs['single'] / 'summary.json').read_text())
  assert k == 3 and members[0]['all'] == (single['uf1'], single['uar'])  # member 0 = the seed
  ens = json.loads((runs['three'] / 'summary.json').read_text())
  assert ensemble['all'] == (ens['uf1'], ens['uar'])
  assert (
    seeds.main(
      [str(runs['longer']), '--baseline', str(runs['three']), '--json', str(tmp_path / 's.json')]
    )
    == 0
  )
  text = capsys.readouterr().out
  assert text.count('| member ') == 3 and 'mean +- std' in text and 'paired difference' in text
  scores = json.loads((tmp_path / 's.json').read_text())
  uf1 = [m['all'][0] for m in scores['members']]
  assert f'{np.mean(uf1):.4f} +- {np.std(uf1, ddof=1):.4f}' in text
  # the paired difference, member by member against the baseline's, by hand
  diff = np.subtract(uf1, [m['all'][0] for m in scores['baseline']])
  paired = next(line for line in text.splitlines() if line.startswith('| paired difference'))
  assert paired.split(' | ')[1].startswith(f'{diff.mean():.4f} +- {diff.std(ddof=1):.4f} / ')
  # the loso command printed and saved the same per-seed table at its end (a single seed: none),
  # under its protocol
  table = seeds.table(members, ensemble, None)
  assert table in runs['three stdout'] and 'seeds alone' not in runs['single stdout']
  heading = (
    'each seed alone: leave one subject out; each fold evaluated after its last epoch (honest)\n'
    'the ensemble: leave one subject out, 3 models per fold (mean of their probabilities); '
    'each fold evaluated after its last epoch (honest)'
  )
  assert (runs['three'] / 'seeds.md').read_text() == heading + '\n\n' + table + '\n'
  assert heading in runs['three stdout']
  assert json.loads((runs['three'] / 'seeds.json').read_text())['members'][0]['all'] == list(
    members[0]['all']
  )
  assert seeds.main([str(runs['three']), '--baseline', str(runs['single'])]) == 2
  assert 'pair equal counts' in capsys.readouterr().err


def test_a_baseline_that_tested_other_samples_is_refused(runs, tmp_path, capsys):
  """The same run read as a part of its LOSO (two of its subjects, as --subjects saves it):
  the same K, other samples, so no paired difference."""
  part = tmp_path / 'part'
  shutil.copytree(runs['three'], part)
  two = seeds.run_result(runs['three'])[0].plan.folds[:2]
  run_json = part / 'state' / 'run.json'
  record = json.loads(run_json.read_text())
  record['started_by']['settings']['subjects'] = two
  run_json.write_text(json.dumps(record))
  assert seeds.main([str(part), '--baseline', str(runs['three'])]) == 2
  assert 'tested other samples' in capsys.readouterr().err
  assert seeds.main([str(part), '--baseline', str(part)]) == 0


def test_mean_std_by_hand():
  assert seeds.mean_std([0.5, 0.7]) == '0.6000 +- 0.1414'  # sqrt(0.02)
  assert seeds.mean_std([0.5]) == '0.5000'  # one seed: no spread to print


def test_a_best_test_runs_figures_say_so_wherever_they_appear(runs, capsys):
  """seeds.md, seeds.json, the seeds command and summary.json of a best_test ensemble."""
  shout = 'BEST EPOCH PER FOLD SELECTED BY ITS OWN TEST ACCURACY'
  assert (runs['longer'] / 'seeds.md').read_text().count(shout) == 2
  record = json.loads((runs['longer'] / 'seeds.json').read_text())
  assert shout in record['protocol']['members'] and shout in record['protocol']['ensemble']
  assert seeds.main([str(runs['longer'])]) == 0
  assert capsys.readouterr().out.count(shout) == 2
  summaries = {k: json.loads((runs[k] / 'summary.json').read_text()) for k in ('three', 'longer')}
  assert summaries['three']['honest'] is True and summaries['longer']['honest'] is False


def test_a_baseline_under_another_key_scheme_is_said(runs, tmp_path, capsys):
  """A baseline saved before key schemes were recorded (scheme 1, hfa_jax.loso.keys): its
  members >= 1 started from other keys than this run's, which the comparison says."""
  old = tmp_path / 'old'
  shutil.copytree(runs['three'], old)
  run_json = old / 'state' / 'run.json'
  record = json.loads(run_json.read_text())
  assert record.pop('random_keys') == 2
  run_json.write_text(json.dumps(record))
  assert seeds.main([str(runs['three']), '--baseline', str(runs['three'])]) == 0
  assert 'random_keys' not in capsys.readouterr().out
  assert seeds.main([str(runs['three']), '--baseline', str(old)]) == 0
  assert 'random_keys 2 and 1' in capsys.readouterr().out


def test_runs_of_other_seeds_are_taken_together(runs, tmp_path, capsys):
  """Two runs of one recipe (seeds 0 and 1, 3 + 2 members): five seeds, mean +- std over the
  five, the ensemble the mean probability of all five (by hand); a baseline of as many seeds
  is paired member by member in the order given."""
  three, seed1 = (seeds.run_result(runs[n]) for n in ('three', 'seed1'))
  assert (
    seeds.main([str(runs['three']), str(runs['seed1']), '--json', str(tmp_path / 'a.json')]) == 0
  )
  text = capsys.readouterr().out
  record = json.loads((tmp_path / 'a.json').read_text())
  alone = [m for r, d in (three, seed1) for m in seeds.member_scores(r, d)[0]]
  assert [tuple(m['all']) for m in record['members']] == [m['all'] for m in alone]
  assert record['labels'] == [f'seed {s} member {r}' for s, k in ((0, 3), (1, 2)) for r in range(k)]
  assert text.count('| seed 1 member ') == 2 and '5 models per fold' in text
  uf1 = [m['all'][0] for m in alone]
  assert f'| mean +- std | {np.mean(uf1):.4f} +- {np.std(uf1, ddof=1):.4f} / ' in text
  probs = (
    3 * three[0].pooled['predictions']['probs'] + 2 * seed1[0].pooled['predictions']['probs']
  ) / 5
  pred = three[0].pooled['predictions']
  from hfa_jax import metrics

  by_hand = metrics.summarize(pred['label'], probs.argmax(-1), three[1].num_classes)
  assert tuple(record['ensemble']['all']) == (by_hand['uf1'], by_hand['uar'])
  # paired with the baseline's members in order: seed1's two, then three's three
  argv = [
    str(runs['three']),
    str(runs['seed1']),
    '--baseline',
    str(runs['seed1']),
    str(runs['three']),
  ]
  assert seeds.main([*argv, '--json', str(tmp_path / 'b.json')]) == 0
  base = json.loads((tmp_path / 'b.json').read_text())['baseline']
  assert [tuple(m['all']) for m in base] == [m['all'] for m in alone[3:] + alone[:3]]
  diff = np.subtract(uf1, [m['all'][0] for m in base])
  paired = next(line for line in capsys.readouterr().out.splitlines() if 'paired' in line)
  assert paired.split(' | ')[1].startswith(f'{diff.mean():.4f} +- {diff.std(ddof=1):.4f} / ')


def test_the_paired_difference_over_resampled_subjects(runs, monkeypatch, capsys):
  """With a baseline: the seeds' mean UF1 difference over resamples of the tested subjects
  (within their databases), every member under the same draw. The tiny runs test one subject
  per database, so there is no interval (every draw the same); their subjects drawn from one
  pool give one, by hand; a run against itself differs by exactly 0 in every draw."""
  assert seeds.main([str(runs['three']), '--baseline', str(runs['seed1'])]) == 2  # 3 seeds vs 2
  capsys.readouterr()
  assert seeds.main([str(runs['seed1']), '--baseline', str(runs['seed1'])]) == 0
  assert 'over subjects: no interval: no database has two tested subjects' in (
    capsys.readouterr().out
  )
  ours, three = seeds.runs_seeds([runs['seed1']]), seeds.runs_seeds([runs['three']])
  assert seeds.over_subjects(ours, three, replicates=200)['interval'] is None

  def one_pool(s):  # every sample of one database: its subjects drawn among all of them
    data = dataclasses.replace(s.data, databases=np.full(len(s.data.databases), 'all'))
    return dataclasses.replace(s, data=data)

  got = seeds.over_subjects(one_pool(ours), one_pool(three), replicates=200)
  pred = ours.result.pooled['predictions']
  members = [ours.result.pool(member=r)['predictions']['pred'] for r in range(2)]
  members += [three.result.pool(member=r)['predictions']['pred'] for r in range(3)]
  from hfa_jax import metrics

  uf1 = metrics.subject_bootstrap_uf1(
    pred['label'], members, pred['subject'], ours.data.num_classes, 200
  )
  diff = uf1[:, :2].mean(1) - uf1[:, 2:].mean(1)
  np.testing.assert_allclose(got['interval'], np.percentile(diff, [2.5, 97.5]))
  assert got['interval'][0] < got['interval'][1]
  assert got['above'] == (diff > 0).mean() and got['subjects'] == len(set(pred['subject']))
  assert three.preds.shape == (3, len(pred['index']))
  itself = seeds.over_subjects(one_pool(three), one_pool(three), replicates=200)
  assert itself['interval'] == [0.0, 0.0] and itself['above'] == 0.0
  # what the command prints of an interval
  monkeypatch.setattr(seeds, 'over_subjects', lambda a, b: got)
  assert seeds.main([str(runs['seed1']), '--baseline', str(runs['seed1'])]) == 0
  low, high = got['interval']
  assert (
    f"over subjects: the 3 tested subjects resampled with replacement within their databases "
    f"200 times, the paired UF1 difference of the seeds' mean lies in [{low:+.4f}, {high:+.4f}] "
    f"(95 %), above 0 in {100 * got['above']:.1f} % of the draws"
  ) in capsys.readouterr().out


def test_runs_that_cannot_be_taken_together_are_refused(runs, capsys):
  """The same models twice (the same seed), other settings, or unequal counts to pair."""
  assert seeds.main([str(runs['three']), str(runs['single'])]) == 2  # seed 0's member 0 twice
  assert 'is the model of' in capsys.readouterr().err
  assert seeds.main([str(runs['seed1']), str(runs['longer'])]) == 2
  err = capsys.readouterr().err
  assert 'ran other settings' in err and 'epochs 3' in err and 'select_epoch best_test' in err
  assert seeds.main([str(runs['three']), str(runs['seed1']), '--baseline', str(runs['three'])]) == 2
  assert '--baseline has 3 seeds' in capsys.readouterr().err


def test_runs_at_other_input_sides_test_the_same_samples():
  """Pairing needs the same samples, labels and subjects, not the same pixels or side."""
  from hfa_jax.loso import LosoData

  y, s = np.array([0, 1, 2, 0]), np.array(['a', 'a', 'b', 'b'])
  small = LosoData.of(np.zeros((4, 28, 28, 3), np.float32), y, s)
  large = LosoData.of(np.ones((4, 32, 32, 3), np.float32), y, s)
  assert seeds.same_samples(small) == seeds.same_samples(large)
  other = LosoData.of(np.zeros((4, 28, 28, 3), np.float32), y[::-1], s)
  assert seeds.same_samples(other) != seeds.same_samples(small)


def test_runs_given_after_the_baseline_are_said_to_come_first(runs, capsys):
  """--baseline takes every path after it: with no runs before it, the error says the order."""
  with pytest.raises(SystemExit) as stop:
    seeds.main(['--baseline', str(runs['three']), str(runs['seed1'])])
  assert stop.value.code == 2
  assert 'give the runs to score first' in capsys.readouterr().err


def test_runs_of_other_code_taken_together_are_said(runs, tmp_path, capsys):
  """Runs of one recipe from other commits pool (their settings match), with a note naming
  each run's code; runs of the same code get no note."""
  assert seeds.main([str(runs['three']), str(runs['seed1'])]) == 0
  assert 'ran other code' not in capsys.readouterr().out
  other = tmp_path / 'seed1-other-code'
  shutil.copytree(runs['seed1'], other)
  summary = json.loads((other / 'summary.json').read_text())
  summary['code_parts'] = ['git 0123456']
  (other / 'summary.json').write_text(json.dumps(summary))
  assert seeds.main([str(runs['three']), str(other)]) == 0
  note = next(line for line in capsys.readouterr().out.splitlines() if 'ran other code' in line)
  assert note.startswith('note: the runs ran other code (') and f'{other}: git 0123456' in note


def test_no_interval_over_subjects_where_no_database_has_two():
  """One tested subject per database: every resample draws the same ones, so no interval
  (not one of width 0); drawn from one pool, the two subjects give one."""
  labels, subjects = np.array([0, 1, 2, 0]), np.array(['a', 'a', 'b', 'b'])
  preds, base = np.array([[0, 1, 2, 0]]), np.array([[0, 0, 0, 0]])
  dbs = np.array(['casme2', 'casme2', 'smic', 'smic'])
  got = seeds.subjects_interval(labels, subjects, preds, base, 3, dbs, replicates=50)
  assert got == dict(replicates=0, subjects=2, interval=None, above=None)
  got = seeds.subjects_interval(labels, subjects, preds, base, 3, None, replicates=50)
  assert got['replicates'] == 50 and got['interval'][0] < got['interval'][1]
