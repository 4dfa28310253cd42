"""The CLIs restart once with glibc's retain-memory tunables; library code never does."""

import os
import subprocess
import sys

import pytest

from hfa_jax import allocator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tunables_are_appended_and_replace_our_own_keys():
  assert allocator.tunables('') == ':'.join(allocator.SETTINGS)
  merged = allocator.tunables('glibc.malloc.arena_max=4:glibc.malloc.tcache_count=0').split(':')
  assert merged[0] == 'glibc.malloc.tcache_count=0'
  assert merged[1:] == list(allocator.SETTINGS)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc only')
def test_cli_restarts_once_with_the_settings_and_can_be_turned_off():
  # A tiny stand-in for an entry point: prints what the restarted process sees.
  code = (
    'import os, sys; from hfa_jax import allocator;'
    'print("start", flush=True);'
    'allocator.restart_with_retained_memory();'
    'print(allocator.active(), os.environ.get("GLIBC_TUNABLES"), sys.argv[1:])'
  )
  env = {k: v for k, v in os.environ.items() if k not in ('GLIBC_TUNABLES', 'HFA_JAX_MALLOC')}
  out = subprocess.run(
    [sys.executable, '-c', code, 'a', '--b'],
    capture_output=True,
    text=True,
    env=env,
    check=True,
    cwd=ROOT,
  ).stdout.split('\n')
  assert out[:2] == ['start', 'start']  # ran twice: once restarted
  assert out[2] == f"True {allocator.tunables('')} ['a', '--b']"
  env['HFA_JAX_MALLOC'] = 'system'
  out = subprocess.run(
    [sys.executable, '-c', code], capture_output=True, text=True, env=env, check=True, cwd=ROOT
  ).stdout.split('\n')
  assert out[:2] == ['start', 'False None []']
