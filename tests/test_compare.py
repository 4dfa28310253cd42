"""python -m experiments.compare end to end on the tiny synthetic database: every network's run
with K seeds, the leaderboard's files, its figures against a hand computation from the runs'
fold records, the published protocols labelled and sorted after every honest row, a resume
that trains nothing."""

import csv
import json
import pathlib
import types

import numpy as np
import pytest

from experiments import compare, compare_rows, leaderboard, seeds
from hfa_jax import metrics
from hfa_jax.evaluation import softmax
from hfa_jax.environment import code_version
from hfa_jax.loso.store import read_folds

pytestmark = pytest.mark.slow  # an end-to-end tier: three networks, four runs

MODELS = ('hfanet', 'ststnet', 'offapexnet')
BOARD = 'leaderboard-hfanet-ststnet-offapexnet'  # some networks: a table of their own


@pytest.fixture(scope='module')
def board(tmp_path_factory, tiny_data):
  out = tmp_path_factory.mktemp('compare')
  shrink = ['--epochs', '2', '--steps_per_epoch', '1', '--batch_size', '4']
  argv = ['--dataset', 'synthetic', '--models', ','.join(MODELS), '--ensemble', '2']
  argv += ['--protocol', 'published', '--out', str(out), '--no_progress']
  argv += ['--data_dir', str(tiny_data), '--synthetic_subjects', '1', *shrink]
  assert compare.main(argv) == 0
  return out, argv


def _rows(out):
  return list(csv.DictReader(open(out / f'{BOARD}.csv')))


def test_files_and_rows(board):
  out, _ = board
  for suffix in ('md', 'csv', 'json', 'png'):
    assert (out / f'{BOARD}.{suffix}').is_file(), suffix
  rows = _rows(out)
  honest = [r for r in rows if r['honest'] == 'True']
  assert {r['model'] for r in honest} >= set(MODELS)
  assert any(r['model'].startswith('ensemble of the 3 networks') for r in honest)
  flags = [r['honest'] == 'True' for r in rows]
  assert flags == sorted(flags, reverse=True)  # no NOT honest row above an honest one
  ststnet = next(r for r in honest if r['model'] == 'ststnet')
  # trained 2 epochs of batch 4 (the options given): neither its authors' recipe nor script
  assert ststnet['protocol'] == 'honest: last epoch'
  assert ststnet['source'] == (
    'experiments/configs/ststnet.py, changed: epochs 2, batch_size 4, steps_per_epoch 1'
  )
  # what trained it: the wall and CPU time of its one part, and the code
  assert float(ststnet['cpu_time_s']) > 0 and float(ststnet['wall_time_s']) > 0
  assert ststnet['code'] == leaderboard.code_cell([code_version()]) != ''
  not_honest = [r for r in rows if r['honest'] == 'False']
  # their scripts' choice; HFA-Net's script has a recipe of its own, scored both ways
  assert {r['model'] for r in not_honest} == {'hfanet (hfanet_published)', 'offapexnet'}
  own = next(r for r in honest if r['model'] == 'hfanet (hfanet_published)')
  assert own['protocol'] == "honest: last epoch, its authors' recipe (changed)"
  assert '--config hfanet_published' in own['command']
  assert all(r['protocol'] == 'NOT honest: epoch chosen on the test subject' for r in not_honest)
  text = (out / f'{BOARD}.md').read_text()
  assert 'The recipes were changed by the options given (epochs 2, batch_size 4, ' in text
  assert 'synthetic_subjects' not in text.split('Each row')[0]  # the data, not a recipe's
  assert "no row is its authors' recipe" in text
  # HFA-Net's recipe is this project's, never called its authors' or untuned
  assert "HFA-Net with this project's recipe (experiments/configs/synthetic.py" in text
  assert 'Every network was trained with its own published recipe' not in text
  assert text.index('NOT honest') > text.index('| ststnet | honest')
  assert 'python -m experiments.loso --dataset synthetic --model hfanet' in text
  assert (out / 'runs' / 'hfanet-published' / 'summary.json').is_file()


def _member_uf1(run_dir, member, data, select):
  """One member's pooled UF1 by hand from its fold records: each fold's last epoch, or its
  best test accuracy (the earliest of the best)."""
  labels, y, p = data.labels, [], []
  for (fold, r), rec in sorted(read_folds(run_dir / 'state').items()):
    if r != member:
      continue
    test = np.asarray(rec.test_index)
    curves = [np.asarray(l).argmax(-1) for l in rec.test_logits]
    e = -1
    if select == 'best_test':
      e = int(np.argmax([(c == labels[test]).mean() for c in curves]))
    y += labels[test].tolist()
    p += curves[e].tolist()
  return metrics.uf1(y, p, data.num_classes)


def test_figures_are_the_runs_seeds_by_hand(board, monkeypatch):
  out, _ = board
  board_json = json.loads((out / f'{BOARD}.json').read_text())
  rows = {(r['model'], r['honest']): r for r in board_json['rows']}
  result, data = seeds.run_result(out / 'runs' / 'offapexnet')
  for select, honest in (('last', True), ('best_test', False)):
    uf1 = [_member_uf1(out / 'runs' / 'offapexnet', r, data, select) for r in range(2)]
    row = rows['offapexnet', honest]
    assert row['all_uf1_mean'] == pytest.approx(np.mean(uf1), abs=1e-12)
    assert row['all_uf1_std'] == pytest.approx(np.std(uf1, ddof=1), abs=1e-12)
  # the paired difference from HFA-Net: member r minus HFA-Net's member r
  mine = [_member_uf1(out / 'runs' / 'ststnet', r, data, 'last') for r in range(2)]
  ref = [_member_uf1(out / 'runs' / 'hfanet', r, data, 'last') for r in range(2)]
  assert rows['ststnet', True]['paired_uf1_mean'] == pytest.approx(np.mean(np.subtract(mine, ref)))
  # its 95 % interval over resampled subjects: none here, where each database has one tested
  # subject (every draw the same), rather than an interval of width 0
  assert data.subjects.size and all(
    len(set(np.asarray(data.subjects)[np.asarray(data.databases) == d].tolist())) == 1
    for d in set(data.databases)
  )
  assert rows['ststnet', True]['paired_uf1_subjects_low'] is None  # null in the JSON
  assert '95 % over subjects' not in (out / f'{BOARD}.md').read_text()
  # with the subjects drawn from one pool, the interval is the members' predictions' by hand
  results = {name: seeds.run_result(out / 'runs' / name)[0] for name in ('ststnet', 'hfanet')}
  preds = {n: [r.pool(member=m)['predictions'] for m in range(2)] for n, r in results.items()}
  p = preds['hfanet'][0]
  by_hand = seeds.subjects_interval(
    p['label'],
    p['subject'],
    np.stack([q['pred'] for q in preds['ststnet']]),
    np.stack([q['pred'] for q in preds['hfanet']]),
    data.num_classes,
  )['interval']
  hfanet = seeds.scored(results['hfanet'], data, 'last')
  one_pool = compare_rows.Reference(
    hfanet.members, hfanet.preds, hfanet.predictions, data.num_classes, np.zeros(len(p['index']))
  )
  got = compare_rows.over_subjects(seeds.scored(results['ststnet'], data, 'last'), one_pool)
  assert got == pytest.approx(by_hand, abs=1e-12) and got[0] < got[1]
  # HFA-Net's authors' recipe: its last epoch against HFA-Net's recipe; its script's figure
  # (each subject's best test epoch) against its own last epoch: the inflation
  run = out / 'runs' / 'hfanet-published'
  last = [_member_uf1(run, r, data, 'last') for r in range(2)]
  best = [_member_uf1(run, r, data, 'best_test') for r in range(2)]
  name = 'hfanet (hfanet_published)'
  assert rows[name, True]['all_uf1_mean'] == pytest.approx(np.mean(last), abs=1e-12)
  assert rows[name, True]['paired_uf1_mean'] == pytest.approx(np.mean(np.subtract(last, ref)))
  assert rows[name, False]['all_uf1_mean'] == pytest.approx(np.mean(best), abs=1e-12)
  assert rows[name, False]['paired_uf1_mean'] == pytest.approx(np.mean(np.subtract(best, last)))
  # an interval over subjects for that recipe's honest row (none in this board: one subject
  # per database), never for its script's figure, the inflation
  assert rows[name, True]['paired_uf1_subjects_low'] is None
  monkeypatch.setattr(compare_rows, 'over_subjects', lambda run, reference: (-0.5, 0.5))
  pub = dict(zip(('result', 'data'), seeds.run_result(run)), command='c', record={}, changed={})
  hfanet = dict(zip(('result', 'data'), seeds.run_result(out / 'runs' / 'hfanet')))
  reference = compare_rows.reference_scores({'hfanet': hfanet})
  honest, inflation = compare_rows.published_rows('hfanet', pub, None, reference)
  assert honest.honest and honest.over_subjects == (-0.5, 0.5)
  assert not inflation.honest and inflation.over_subjects is None


def test_the_same_command_resumes_and_trains_nothing(board, capsys):
  out, argv = board
  before = (out / f'{BOARD}.csv').read_text()
  assert compare.main(argv) == 0
  printed = capsys.readouterr().out
  assert printed.count('already finished') == 4 and 'compiles' not in printed
  assert (out / f'{BOARD}.csv').read_text() == before


def test_a_table_of_other_networks_overwrites_none(board, capsys):
  """Two of the networks, read back: a table of their own beside the three's, which stays; the
  default networks (here named one by one) write leaderboard.*."""
  out, argv = board
  before = (out / f'{BOARD}.csv').read_text()
  two = [a for a in argv if a not in ('--protocol', 'published')]
  two[two.index('--models') + 1] = 'hfanet,ststnet'
  assert compare.main(two) == 0
  assert capsys.readouterr().out.count('already finished') == 2
  assert (out / f'{BOARD}.csv').read_text() == before
  rows = csv.DictReader(open(out / 'leaderboard-hfanet-ststnet.csv'))
  ensemble = 'ensemble of the 2 networks (mean probability)'
  assert {r['model'] for r in rows} == {'hfanet', 'ststnet', ensemble}
  backwards = compare.parse(['--models', 'ststnet,hfanet'])[0]
  assert compare.board_stem(backwards) == 'leaderboard-hfanet-ststnet'  # one name for one set
  every = compare.parse(['--models', ','.join(reversed(compare.default_networks()))])[0]
  assert compare.board_stem(every) == 'leaderboard'
  assert compare.board_stem(compare.parse(['--recipe', 'synthetic'])[0]) == (
    'leaderboard-recipe-synthetic'
  )


def test_one_recipe_for_every_network(board, capsys):
  """--recipe: STSTNet trained with HFA-Net's recipe (here the synthetic one) at its own side,
  beside HFA-Net's finished run of that recipe, in a leaderboard of its own."""
  out, argv = board
  before = (out / f'{BOARD}.csv').read_text()
  rest = argv[argv.index('--data_dir') :]
  recipe_argv = ['--dataset', 'synthetic', '--models', 'hfanet,ststnet', '--ensemble', '2']
  recipe_argv += ['--recipe', 'synthetic', '--out', str(out), '--no_progress', *rest]
  assert compare.main(recipe_argv) == 0
  printed = capsys.readouterr().out
  assert printed.count('already finished') == 1  # HFA-Net's own recipe: its run, read back
  assert (out / f'{BOARD}.csv').read_text() == before
  table = out / 'leaderboard-recipe-synthetic-hfanet-ststnet'
  rows = {r['model']: r for r in csv.DictReader(open(f'{table}.csv'))}
  assert set(rows) == {
    'hfanet',
    'ststnet (synthetic)',
    'ensemble of the 2 networks (mean probability)',
  }
  row = rows['ststnet (synthetic)']
  assert row['protocol'] == 'honest: last epoch' and row['honest'] == 'True'
  assert (
    '--config synthetic' in row['command'] and '--size 32 --folds_in_parallel 0' in row['command']
  )
  assert row['paired_with'] == 'HFA-Net with the same recipe, seed by seed'
  run = out / 'runs' / 'ststnet-synthetic'
  saved = json.loads((run / 'state' / 'run.json').read_text())['started_by']
  assert saved['recipe'] == 'synthetic' and saved['settings']['model'] == 'ststnet'
  own = json.loads((out / 'runs' / 'ststnet' / 'state' / 'run.json').read_text())['started_by']
  assert saved['settings']['size'] == own['settings']['size']
  assert saved['settings']['optimizer'] != own['settings']['optimizer']  # the recipe's, not its own
  _, data = seeds.run_result(run)
  mine = [_member_uf1(run, r, data, 'last') for r in range(2)]
  ref = [_member_uf1(out / 'runs' / 'hfanet', r, data, 'last') for r in range(2)]
  assert float(row['paired_uf1_mean']) == pytest.approx(np.mean(np.subtract(mine, ref)))
  assert 'the recipe experiments/configs/synthetic.py' in pathlib.Path(f'{table}.md').read_text()


def test_options_that_would_change_every_networks_run_silently_are_refused(capsys):
  """--config (every network's recipe replaced under its own recipe's name) and the
  --config.* spellings of compare's own options (every row the same network, in one folder)."""
  for argv, said in (
    (['--config', 'tiny'], 'use --recipe NAME'),
    (['--config=tiny'], 'use --recipe NAME'),
    (
      ['--config.model', 'ststnet'],
      '--config.model is not an option of every network run: give --models',
    ),
    (['--config.dataset', 'synthetic'], 'give --dataset'),
    (['--config.out=/tmp/x'], 'give --out'),
    (['--eval_every_epoch', 'false'], 'compare evaluates every epoch of every run'),
    (['--config.eval_every_epoch=false'], 'compare evaluates every epoch of every run'),
  ):
    with pytest.raises(SystemExit):
      compare.parse(['--models', 'hfanet,ststnet', *argv])
    assert said in capsys.readouterr().err, argv
  args, rest = compare.parse(['--models', 'hfanet,ststnet', '--epochs', '2', '--config.seed', '1'])
  assert rest == ['--epochs', '2', '--config.seed', '1']  # settings for every run pass


def test_abbreviations_are_refused_not_read_as_another_option(capsys):
  """No abbreviation is taken: not one of compare's own options ('--e 5' is not --ensemble),
  nor a prefix of a refused option, which experiments.loso would spell out in every run."""
  for argv in (
    ['--e', '5'],
    ['--data', 'synthetic'],
    ['--mod', 'ststnet'],
    ['--resu', 'runs/x'],
    ['--conf', 'tiny'],
    ['--config.mod', 'ststnet'],
    ['--config.ens=5'],
    ['--epoch', '2'],
  ):
    with pytest.raises(SystemExit):
      compare.parse(['--models', 'hfanet,ststnet', *argv])
    err = capsys.readouterr().err
    assert f"{argv[0].split('=')[0]}: no such option" in err and 'full name' in err, argv
  assert '--epoch: no such option (did you mean --epochs?)' in err  # the last one's nearest
  for argv, said in (
    (['--model', 'ststnet'], 'give --models'),
    (['--config.ensemble', '5'], 'give --ensemble'),
  ):
    with pytest.raises(SystemExit):
      compare.parse(['--models', 'hfanet,ststnet', *argv])
    assert said in capsys.readouterr().err, argv
  args, _ = compare.parse(['--models', 'hfanet', '--ensemble', '2', '--out=o', '--no_progress'])
  assert (args.ensemble, str(args.out), args.no_progress) == (2, 'o', True)


def test_settings_given_to_every_run_are_its_changes_from_its_recipe():
  """What a row says its recipe was changed by: training settings and an input side other
  than the recipe's, not compare's own seeds and evaluation, nor the data's settings."""
  args, rest = compare.parse(
    ['--dataset', 'synthetic', '--models', 'hfanet,ststnet', '--synthetic_subjects', '1']
    + ['--epochs', '2', '--size', '32']
  )
  changed = {}
  for model in args.models:
    _, namespace = compare.options.parse(compare.model_argv(args, model, None, model) + rest)
    changed[model] = compare.changed_from_recipe(compare.options.settings_from_args(namespace))
  # the synthetic recipe trains 2 epochs at 32 px already; STSTNet's trains 800 at the native
  assert changed == {'hfanet': {}, 'ststnet': {'size': 32, 'epochs': 2}}


def test_unknown_models_and_bad_counts_are_refused(capsys):
  with pytest.raises(SystemExit):
    compare.main(['--models', 'hfanet,nonet'])
  assert 'nonet' in capsys.readouterr().err
  with pytest.raises(SystemExit):
    compare.main(['--ensemble', '0'])
  with pytest.raises(SystemExit):
    compare.main(['--recipe', 'nosuch'])
  assert 'flow_images' in capsys.readouterr().err  # the recipes there are
  with pytest.raises(SystemExit):
    compare.main(['--recipe', 'flow_images', '--protocol', 'published'])
  assert 'not with --recipe' in capsys.readouterr().err


def test_the_default_folder_is_named_by_the_settings_given_to_every_run():
  """A comparison with another seed, other epochs or a part of the LOSO gets a folder of its
  own (its runs would be refused in the default one's); options that change no result don't."""
  out = lambda *argv: str(compare.parse(['--models', 'hfanet', *argv])[0].out)
  assert out() == 'runs/compare-megc2019_flow_images'
  assert out('--dataset', 'synthetic') == 'runs/compare-synthetic'
  assert out('--seed', '1') == out('--config.seed=1') == 'runs/compare-megc2019_flow_images-seed1'
  subjects = out('--subjects', 'sub01,s3', '--epochs', '2', '--checkpoint_minutes', '5')
  assert subjects == 'runs/compare-megc2019_flow_images-epochs2-only-sub01+s3'
  assert out('--data_dir', '/d', '--keep_models', 'false') == 'runs/compare-megc2019_flow_images'
  assert out('--seed', '1', '--out', 'mine') == 'mine'


def test_the_default_says_what_it_leaves_out_once_the_options_are_taken(capsys):
  """On a CPU the default networks leave HTNet out and say so; an option error comes alone."""
  with pytest.raises(SystemExit):
    compare.parse(['--epoch', '2'])
  said = capsys.readouterr()
  assert 'did you mean --epochs?' in said.err and 'left out' not in said.out
  args, _ = compare.parse([])
  assert 'left out on a CPU: HTNet' in capsys.readouterr().out and 'htnet' not in args.models
  compare.parse(['--models', 'hfanet'])
  assert 'left out' not in capsys.readouterr().out


def test_a_stop_says_how_to_resume_as_experiments_loso_does(monkeypatch, tmp_path, capsys):
  """A SIGTERM (experiments.loso saves the epoch in progress, then raises Terminated) or a
  Ctrl-C stops the comparison saying how to continue it: exit 143 or 130."""
  from experiments import loso

  for stop, code in ((loso.Terminated, 143), (KeyboardInterrupt, 130)):

    def stopped(*args, stop=stop):
      raise stop()

    monkeypatch.setattr(compare, 'run_model', stopped)
    assert compare.main(['--models', 'ststnet', '--out', str(tmp_path)]) == code
    err = capsys.readouterr().err
    assert 'Run the same command again to continue' in err and 'Traceback' not in err
    assert ('stopped by SIGTERM' in err) == (code == 143)


def test_the_networks_ensemble_takes_each_at_its_honest_epoch(board):
  """A run whose recipe keeps each subject's best test epoch (HFA-Net's authors' recipe, as
  `--recipe hfanet_published` gives every network) enters the networks' ensemble at its last
  epoch: the ensemble's probabilities by hand from the fold records' last-epoch logits (not
  their best test epoch's), its row's UF1 from them."""
  out, _ = board
  names = ('hfanet-published', 'ststnet')
  runs = {n: dict(zip(('result', 'data'), seeds.run_result(out / 'runs' / n))) for n in names}
  data = runs['ststnet']['data']
  assert runs['hfanet-published']['result'].config.select_epoch == 'best_test'

  def by_hand(best_test: bool) -> np.ndarray:
    """(samples, classes): per sample the mean softmax of every network's 2 seeds."""
    probs = {}
    for name in names:
      for rec in read_folds(out / 'runs' / name / 'state').values():
        truth = data.labels[rec.test_index]
        hits = [(np.asarray(l).argmax(-1) == truth).mean() for l in rec.test_logits]
        e = int(np.argmax(hits)) if best_test and name != 'ststnet' else -1
        for i, l in zip(rec.test_index, np.asarray(rec.test_logits[e])):
          probs.setdefault(i, []).append(softmax(l))
    return np.array([np.mean(probs[i], axis=0) for i in sorted(probs)])

  got = compare_rows.ensemble_predictions(runs)
  last = by_hand(best_test=False)
  np.testing.assert_allclose(got['probs'], last, atol=1e-6)
  assert not np.allclose(by_hand(best_test=True), last, atol=1e-3)  # the test tells them apart
  row = compare_rows.models_ensemble(runs)
  assert row.honest and row.protocol == 'honest: last epoch of each'
  uf1 = metrics.uf1(data.labels[got['index']], last.argmax(-1), data.num_classes)
  assert row.ensemble['all'][0] == pytest.approx(uf1, abs=1e-12)


def test_rows_pair_with_hfanets_honest_epoch_and_say_what_they_are(board, monkeypatch):
  """HFA-Net's run of a best-test recipe is the reference at its last epoch; the leaderboard's
  JSON is strict JSON (one member's spread is null, not NaN) and the networks' ensemble has
  no seeds; a row scored at another epoch than its authors' script does not claim to be it;
  the notes of a part of a LOSO say so."""
  out, _ = board
  run = dict(zip(('result', 'data'), seeds.run_result(out / 'runs' / 'hfanet-published')))
  data = run['data']
  last = [_member_uf1(out / 'runs' / 'hfanet-published', r, data, 'last') for r in range(2)]
  got = [m['all'][0] for m in compare_rows.reference_scores({'hfanet': run}).scores]
  assert got == pytest.approx(last, abs=1e-12)
  assert compare_rows.reference_scores({'ststnet': run}) is None

  text = (out / f'{BOARD}.json').read_text()
  strict = json.loads(text, parse_constant=lambda c: pytest.fail(f'{c} in {BOARD}.json'))
  ensemble = next(r for r in strict['rows'] if r['model'].startswith('ensemble of the'))
  assert ensemble['seeds'] is None and ensemble['all_uf1_std'] is None
  assert '| ensemble of the 3 networks (mean probability) | honest: last epoch of each | - |' in (
    (out / f'{BOARD}.md').read_text()
  )

  ststnet = dict(zip(('result', 'data'), seeds.run_result(out / 'runs' / 'ststnet')))
  ststnet |= dict(record={}, command='', swapped=False, recipe='ststnet')
  row = compare_rows.honest_row('ststnet', ststnet, None)
  assert row.protocol == "honest: last epoch, as its authors' script"
  assert row.source == (  # the script it is scored as, named
    'experiments/configs/ststnet.py; its scoring as christy1206/STSTNet main.py: the model '
    'after epoch 800 scored'
  )
  monkeypatch.setattr(compare_rows, 'honest_epoch', lambda run: 'validation')
  one = seeds.Scored([{'all': (0.5, 0.5)}], {}, np.zeros((1, 0)), {})
  monkeypatch.setattr(compare_rows, 'scored', lambda run, select: one)
  assert compare_rows.honest_row('ststnet', ststnet, None).protocol == 'honest: validation epoch'
  monkeypatch.undo()

  part = dict(ststnet)
  pooled = ststnet['result'].pooled
  first = pooled['predictions']['subject'] == pooled['predictions']['subject'][0]
  predictions = {k: v[first] for k, v in pooled['predictions'].items() if len(v) == len(first)}
  part['result'] = types.SimpleNamespace(
    config=ststnet['result'].config, pooled=dict(predictions=predictions)
  )
  args = compare.parse(['--dataset', 'synthetic'])[0]
  said = compare.notes(args, {'ststnet': part})[0]
  assert f'{first.sum()} samples of 1 of its {len(set(data.subjects.tolist()))} subjects' in said
  assert 'leave one subject out' in compare.notes(args, {'ststnet': ststnet})[0]


def test_hfanets_recipe_is_said_to_be_this_projects_and_where_it_was_chosen():
  def run(recipe):
    return dict(recipe=recipe)

  said = compare.own_recipes({'hfanet': run('flow_images'), 'ststnet': run('ststnet')})
  assert "HFA-Net with this project's recipe (experiments/configs/flow_images.py: chosen by" in said
  assert 'CASME II + SMIC part' in said and 'not blind there' in said
  assert "every other network with its authors' published one (not tuned here)" in said
  assert said.startswith('Every network was trained with its own recipe')
  alone = compare.own_recipes({'hfanet': run('frames')})
  assert alone == (
    "HFA-Net with this project's recipe (experiments/configs/frames.py: a starting recipe, "
    'not tuned on real frames).'
  )
  mine = compare.own_recipes({'hfanet': run('runs/mine.py'), 'rcn_a': run('rcn_a')})
  assert '(runs/mine.py: a recipe file of your own)' in mine
  baselines = compare.own_recipes({'ststnet': run('ststnet')})
  assert baselines.startswith("Every network was trained with its authors' published recipe")
