"""`python -m experiments.results RUN...`: each row says which run folder, dataset, model and
protocol it is and how many subjects it tested; a --subjects part of a LOSO is marked."""

import json

from experiments import results
from hfa_jax import report
from tests.test_report import fake_run

SETTINGS = dict(model='hfanet', epochs=40, size=32, retrain=False, group_folds=None)


def finished_run(folder, tested, everyone, dataset, **settings):
  """A run folder holding the summary.json a run of these subjects writes."""
  result, data = fake_run(tested, everyone, source=dataset.split(':')[0])
  folder.mkdir(parents=True)
  extra = dict(
    dataset=dataset,
    settings=SETTINGS | dict(dataset=dataset, subjects=None, classes='composite') | settings,
    wall_time_seconds=600.0,
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
  assert len(lines) == 3 and '| samm, native classes | 3/3 |' in lines[2]


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
