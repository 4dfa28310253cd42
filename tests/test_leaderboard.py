"""The leaderboard's cells written by hand."""

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
