"""The installs for a GPU and a TPU: setup.cfg's extras `cuda` (pip install -e ".[cuda]") and
`tpu` (pip install -e ".[tpu]") name JAX's own CUDA 12 and TPU extras within the jax versions
the project allows; the jax installed here provides those extras, which pull its CUDA plugin
and libtpu at its own version; the README gives the exact commands. Nothing is installed:
the metadata is read, and the slow test resolves the extras with pip's dry run (it reads the
packages' metadata from the index, and needs it reachable)."""

from __future__ import annotations

import configparser
import importlib.metadata
import json
import pathlib
import subprocess
import sys

import pytest
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parent.parent
# extra of the project -> (jax's extra, the package that brings the platform, at jax's version)
PLATFORMS = {'cuda': ('cuda12', 'jax-cuda12-plugin'), 'tpu': ('tpu', 'libtpu')}


def setup_cfg() -> configparser.ConfigParser:
  config = configparser.ConfigParser()
  config.read(ROOT / 'setup.cfg')
  return config


def requirements(text: str) -> list[Requirement]:
  lines = (line.split('#')[0].strip() for line in text.splitlines())
  return [Requirement(line) for line in lines if line]


def extra(name: str) -> list[Requirement]:
  return requirements(setup_cfg()['options.extras_require'][name])


def jax_requirement() -> Requirement:
  (jax,) = [r for r in requirements(setup_cfg()['options']['install_requires']) if r.name == 'jax']
  return jax


@pytest.mark.parametrize('name', sorted(PLATFORMS))
def test_extra_names_jax_with_its_platform_extra(name):
  (req,) = extra(name)
  assert req.name == 'jax' and req.extras == {PLATFORMS[name][0]}, req
  assert req.specifier == jax_requirement().specifier, 'the jax versions the project allows'


@pytest.mark.parametrize('name', sorted(PLATFORMS))
def test_installed_jax_provides_the_extra_at_its_version(name):
  """The extras resolve for the jax installed here: jax[cuda12] pulls jax-cuda12-plugin,
  jax[tpu] libtpu, and both jaxlib, at this jax's version (what pip would install beside it)."""
  jax_extra, package = PLATFORMS[name]
  version = importlib.metadata.version('jax')
  assert jax_extra in importlib.metadata.metadata('jax').get_all('Provides-Extra')
  pulled = {}
  for req in map(Requirement, importlib.metadata.requires('jax')):
    if req.marker is not None and req.marker.evaluate({'extra': jax_extra}):
      pulled[req.name] = req
  assert package in pulled and 'jaxlib' in pulled, sorted(pulled)
  assert version in pulled['jaxlib'].specifier
  if name == 'cuda':  # libtpu has versions of its own
    assert version in pulled[package].specifier


def test_readme_gives_the_install_commands():
  text = (ROOT / 'README.md').read_text()
  table = text[text.index('## Where to run it') :]
  table = table[: table.index('\n## ', 1)]
  for name in PLATFORMS:
    assert f'`pip install -e ".[{name}]"`' in table, name


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(PLATFORMS))
def test_pip_resolves_the_extra(name, tmp_path):
  """pip install --dry-run of the extra's requirements: jax, jaxlib and the platform's package
  resolve together (with --ignore-installed, as on a fresh machine)."""
  report = tmp_path / 'report.json'
  command = [sys.executable, '-m', 'pip', 'install', '--dry-run', '--ignore-installed', '--quiet']
  command += ['--report', str(report), *map(str, extra(name))]
  run = subprocess.run(command, capture_output=True, text=True, timeout=600)
  if run.returncode and any(w in run.stderr for w in ('NewConnectionError', 'Could not fetch')):
    pytest.skip(f'the package index is not reachable: {run.stderr[-300:]}')
  assert run.returncode == 0, run.stderr[-2000:]
  versions = {
    i['metadata']['name'].lower(): i['metadata']['version']
    for i in json.loads(report.read_text())['install']
  }
  assert PLATFORMS[name][1] in versions, sorted(versions)
  assert versions['jax'] == versions['jaxlib'], versions
