"""The leaderboard's cells written by hand."""

import pytest

from experiments import leaderboard


def test_wall_times_read_in_seconds_under_a_minute_else_minutes():
  cases = {None: '', 19.2: '19 s', 59.4: '59 s', 59.6: '1 min', 171.1: '3 min', 4760.7: '79 min'}
  assert {s: leaderboard._duration(s) for s in cases} == cases


def test_code_names_each_part_once_with_its_commit():
  a, b = 'git ' + '1a2b3c4d' * 5, 'git ' + '5e6f7a8b' * 5
  changed = b + ' with uncommitted changes'
  cases = [
    ([], ''),
    ([None, None], ''),  # parts recorded before code was kept
    ([a], 'git 1a2b3c4'),
    ([a, a, b], 'git 1a2b3c4, resumed at git 5e6f7a8'),
    ([None, a, changed], 'git 1a2b3c4, resumed at git 5e6f7a8 with uncommitted changes'),
    (['hfa_jax 0.1.0', a], 'hfa_jax 0.1.0, resumed at git 1a2b3c4'),
  ]
  assert [leaderboard.code_cell(parts) for parts, _ in cases] == [said for _, said in cases]


def test_the_cpu_time_stands_beside_the_wall_time_where_known():
  row = lambda wall, cpu: leaderboard.Row(
    'm', 'honest', True, [], {}, wall_time_s=wall, cpu_time_s=cpu
  )
  assert leaderboard._times(row(4760.7, 9001.9)) == '79 min (CPU 150 min)'
  assert leaderboard._times(row(4760.7, None)) == '79 min'
  assert leaderboard._times(row(None, None)) == ''


def test_each_database_has_its_uf1_and_uar_and_one_member_no_spread():
  """Two members: mean +- std (ddof 1) of UF1 and of UAR, pooled and per database, by hand;
  one member (the networks' ensemble): the figure alone, and null in the flat rows."""
  two = [
    {'all': (0.70, 0.71), 'casme2': (0.80, 0.81)},
    {'all': (0.72, 0.70), 'casme2': (0.82, 0.80)},
  ]
  rows = [
    leaderboard.Row('a', 'honest: last epoch', True, two, {'all': (0.75, 0.74)}),
    leaderboard.Row(
      'b',
      'honest',
      True,
      [{'all': (0.6, 0.5), 'casme2': (0.4, 0.3)}],
      {'all': (0.6, 0.5)},
      seeds=False,
    ),
  ]
  text = leaderboard.markdown(rows, 't', [])
  assert '| UF1 | UAR | casme2 UF1 / UAR |' in text
  # std of (0.70, 0.72) = sqrt(2 * 0.01**2 / 1) = 0.0141; of (0.71, 0.70) = 0.0071
  assert (
    '| a | honest: last epoch | 2 | 0.7100 +- 0.0141 | 0.7050 +- 0.0071 '
    '| 0.8100 +- 0.0141 / 0.8050 +- 0.0071 | 0.7500 / 0.7400 |' in text
  )
  assert '| b | honest | - | 0.6000 | 0.5000 | 0.4000 / 0.3000 |' in text
  flat = {r['model']: r for r in leaderboard.table_rows(rows)}
  assert flat['b']['seeds'] is None and flat['b']['casme2_uar_std'] is None
  assert flat['a']['casme2_uar_std'] == pytest.approx(0.01 * 2**0.5 / 2)
