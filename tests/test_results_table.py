"""`python -m experiments.results RUN...`: each row says which run folder, dataset, model and
protocol it is and how many subjects it tested; a --subjects part of a LOSO is marked."""

import json
import pathlib

from experiments import results
from hfa_jax import report
from tests.test_report import fake_run

SETTINGS = dict(
  model='hfanet', epochs=40, size=32, retrain=False, group_folds=None, learning_rate=5e-4, seed=0
)


def finished_run(
  folder, tested, everyone, dataset, parts=(600.0,), recipe='flow_images', **settings
):
  """A run folder holding the summary.json a run of these subjects writes."""
  result, data = fake_run(tested, everyone, source=dataset.split(':')[0])
  folder.mkdir(parents=True)
  settings = SETTINGS | dict(dataset=dataset, subjects=None, classes='composite') | settings
  extra = dict(
    dataset=dataset,
    settings=settings,
    recipe=recipe,
    seed=settings['seed'],
    wall_time_seconds=sum(parts),
    wall_time_parts=list(parts),
    devices=dict(platform='gpu', kind='NVIDIA H200', count=1),
  )
  report.write(folder, result, data, extra=extra)
  return str(folder)


def test_rows_say_run_dataset_model_protocol_and_subjects(tmp_path, capsys):
  everyone = [f'sub{i:02d}' for i in range(1, 41)]
  full = finished_run(tmp_path / 'runs' / 'full', everyone, everyone, 'megc2019_flow_images')
  part = finished_run(
    tmp_path / 'runs' / 'two',
    ['s1', 's2'],
    [f's{i}' for i in range(1, 69)],
    'megc2019:size_64',
    subjects=['s1', 's2'],
  )
  synthetic = finished_run(
    tmp_path / 'runs' / 'syn', ['a', 'b', 'c'], ['a', 'b', 'c'], 'synthetic', model='ststnet'
  )
  assert results.main([full, part, synthetic]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  head = [c.strip() for c in lines[0].strip('|').split('|')]
  assert head[:3] == ['model', 'dataset', 'subjects'] and head[-1] == 'run'
  assert 'protocol' in head
  rows = [dict(zip(head, (c.strip() for c in line.strip('|').split('|')))) for line in lines[2:5]]
  assert [r['run'] for r in rows] == [full, part, synthetic]
  assert [r['dataset'] for r in rows] == ['megc2019_flow_images', 'megc2019:size_64', 'synthetic']
  assert [r['subjects'] for r in rows] == ['40/40', '2/68 (partial)', '3/3']
  assert [r['model'] for r in rows] == ['hfanet', 'hfanet', 'ststnet']
  assert all(r['protocol'] == 'LOSO, last epoch' for r in rows)
  assert lines[5] == '' and lines[6].startswith('(partial): a --subjects part of a LOSO')


def test_a_full_run_alone_has_no_partial_note(tmp_path, capsys):
  everyone = ['sub01', 'sub02', 'sub03']
  run = finished_run(tmp_path / 'full', everyone, everyone, 'samm', classes='native')
  assert results.main([run]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 3 and '| samm, native classes (3) | 3/3 |' in lines[2]


def test_class_sets_and_test_flip_tell_runs_apart(tmp_path, capsys):
  """Two runs of one database, one with three of its emotions and the test flip: their
  dataset and protocol cells differ (they were alike but for the run folder)."""
  everyone = ['sub01', 'sub02', 'sub03']
  native = finished_run(tmp_path / 'a', everyone, everyone, 'casme2', classes='native')
  kept = finished_run(
    tmp_path / 'b',
    everyone,
    everyone,
    'casme2',
    classes='native',
    keep_emotions=['happiness', 'disgust', 'surprise'],
    test_flip=True,
  )
  rows = [
    results.row(json.loads((pathlib.Path(r) / 'summary.json').read_text())) for r in (native, kept)
  ]
  classes = ', '.join(json.loads((pathlib.Path(kept) / 'summary.json').read_text())['classes'])
  assert [r['dataset'] for r in rows] == [
    'casme2, native classes (3)',
    f'casme2, classes {classes}',
  ]
  assert [r['protocol'] for r in rows] == ['LOSO, last epoch', 'LOSO, last epoch, test flip']


def test_a_part_of_the_composite_says_so(tmp_path):
  everyone = ['sub01', 'sub02', 'sub03']
  run = pathlib.Path(finished_run(tmp_path / 'a', everyone, everyone, 'megc2019_flow_images'))
  summary = json.loads((run / 'summary.json').read_text())
  assert results.row(summary)['dataset'] == 'megc2019_flow_images'
  summary['composite_part_of'] = 442  # as experiments.loso records a composite without SAMM
  n = summary['n_samples']
  got = results.row(summary)['dataset']
  assert got == f"megc2019_flow_images ({n} of the composite's 442 samples)"


def test_a_summary_from_before_coverage_was_recorded(tmp_path, capsys):
  everyone = [f's{i}' for i in range(1, 11)]
  run = finished_run(tmp_path / 'old', ['s1'], everyone, 'smic', subjects=['s1'], group_folds=5)
  path = tmp_path / 'old' / 'summary.json'
  summary = json.loads(path.read_text())
  for key in ('subjects_covered', 'subjects_total', 'partial', 'subjects_not_tested', 'source'):
    del summary[key]
  path.write_text(json.dumps(summary))
  assert results.main([run]) == 0
  out = capsys.readouterr().out
  assert '| 1/? (partial) |' in out and '5-fold by subject, last epoch' in out
  assert '(partial): a --subjects part' in out


def test_runs_with_other_settings_are_told_apart(tmp_path, capsys):
  """Four runs of one dataset that differ in seed, learning rate, epochs and recipe, one of
  them resumed, one an ensemble: no two rows alike but for the run folder."""
  everyone = ['sub01', 'sub02', 'sub03']
  runs = [
    finished_run(tmp_path / 'a', everyone, everyone, 'synthetic'),
    finished_run(tmp_path / 'b', everyone, everyone, 'synthetic', seed=1, parts=(300.0, 300.0)),
    finished_run(tmp_path / 'c', everyone, everyone, 'synthetic', learning_rate=1e-3, epochs=2),
    finished_run(tmp_path / 'd', everyone, everyone, 'synthetic', recipe='tiny', ensemble=3),
  ]
  assert results.main(runs) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  head = [c.strip() for c in lines[0].strip('|').split('|')]
  assert {'recipe', 'seed', 'epochs', 'lr', 'input', 'resumed'} <= set(head)
  rows = [dict(zip(head, (c.strip() for c in line.strip('|').split('|')))) for line in lines[2:]]
  assert [r['seed'] for r in rows] == ['0', '1', '0', '0']
  assert [r['lr'] for r in rows] == ['0.0005', '0.0005', '0.001', '0.0005']
  assert [r['epochs'] for r in rows] == ['40', '40', '2', '40']
  assert [r['recipe'] for r in rows] == ['flow_images'] * 3 + ['tiny']
  assert [r['resumed'] for r in rows] == ['no', 'yes', 'no', 'no']
  assert rows[3]['protocol'] == 'LOSO, last epoch, an ensemble of 3 (mean probabilities)'
  cells = [tuple(v for k, v in r.items() if k != 'run') for r in rows]
  assert len(set(cells)) == 4


def test_folders_that_are_not_finished_runs_are_named(tmp_path, capsys):
  everyone = ['sub01', 'sub02']
  run = finished_run(tmp_path / 'run', everyone, everyone, 'synthetic')
  model = tmp_path / 'final'
  model.mkdir()
  (model / 'model.json').write_text('{}')
  going = tmp_path / 'going'
  (going / 'state' / 'folds').mkdir(parents=True)
  (going / 'state' / 'run.json').write_text('{}')
  for name in ('fold_0000.json', 'fold_0000_model1.json', 'fold_0001.json'):
    (going / 'state' / 'folds' / name).write_text('{}')
  (going / 'wall_time.json').write_text(json.dumps(dict(parts=[2000.0, 1000.0])))
  ended = (going / 'wall_time.json').stat().st_mtime
  assert results.how_far(going, now=ended + 300) == (
    ': 3 fold models finished, 50 min of wall time in 2 parts, the last epoch ended 5 min ago'
  )
  assert results.how_far(going, now=ended + 3 * 3600).endswith('ended 3 h ago')
  (going / 'wall_time.json').write_text(json.dumps(dict(parts=[2000.0], models=120)))
  assert results.how_far(going).startswith(': 3 of 120 fold models finished, 33 min of wall')
  assert results.main([run, str(model), str(going), str(tmp_path / 'gone')]) == 0
  err = capsys.readouterr().err
  assert f'skipping {model}: a model folder (experiments.final_model), not a LOSO run' in err
  assert f'skipping {going}: a LOSO run that has not finished: 3 of 120 fold models finished' in err
  assert f'(continue it with hfa_jax loso --resume {going})' in err
  assert f'skipping {tmp_path / "gone"}: no such folder' in err and 'finished?' not in err


def test_a_comparison_folder_stands_for_its_network_runs(tmp_path, capsys):
  """`hfa_jax results runs/compare-X`: its finished network runs as rows, its unfinished ones
  named with the compare command that resumes them, its leaderboards named."""
  everyone = ['sub01', 'sub02']
  board = tmp_path / 'mine'
  done = finished_run(board / 'runs' / 'ststnet', everyone, everyone, 'synthetic', model='ststnet')
  going = board / 'runs' / 'resnet18'
  (going / 'state' / 'folds').mkdir(parents=True)
  (going / 'state' / 'run.json').write_text('{}')
  (board / 'leaderboard-ststnet.json').write_text('{}')
  (board / 'leaderboard-ststnet.md').write_text('')
  assert results.is_comparison(board) and not results.is_comparison(pathlib.Path(done))
  assert results.main([str(board)]) == 0
  out, err = capsys.readouterr()
  assert f'{board}: a comparison (hfa_jax compare), its leaderboards: leaderboard-ststnet.md' in err
  assert f'skipping {going}: a LOSO run that has not finished: 0 fold models finished' in err
  assert 'continue it with the hfa_jax compare command that started it' in err
  rows = out.strip().splitlines()[2:]
  assert len(rows) == 1 and rows[0].endswith(f'| {done} |')
  # before its first leaderboard, only the default name tells a comparison from other folders
  (board / 'leaderboard-ststnet.json').unlink()
  assert not results.is_comparison(board)
  fresh = tmp_path / 'compare-synthetic'
  (fresh / 'runs').mkdir(parents=True)
  assert results.is_comparison(fresh)
  assert results.main([str(fresh)]) == 2
  assert 'no leaderboard written yet' in capsys.readouterr().err
