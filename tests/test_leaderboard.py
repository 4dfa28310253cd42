"""The leaderboard's cells written by hand."""

from experiments import leaderboard


def test_wall_times_read_in_seconds_under_a_minute_else_minutes():
  cases = {None: '', 19.2: '19 s', 59.4: '59 s', 59.6: '1 min', 171.1: '3 min', 4760.7: '79 min'}
  assert {s: leaderboard._duration(s) for s in cases} == cases
