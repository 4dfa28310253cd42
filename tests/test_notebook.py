"""experiments/colab_tpu.ipynb is a valid notebook whose commands exist in the project."""

import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / 'experiments' / 'colab_tpu.ipynb'


def _sources():
  nb = json.loads(NOTEBOOK.read_text())
  return nb, [''.join(c['source']) if isinstance(c['source'], list) else c['source']
              for c in nb['cells'] if c['cell_type'] == 'code']


def test_valid_nbformat4():
  nb, code = _sources()
  assert nb['nbformat'] == 4 and code
  try:
    import nbformat
  except ImportError:   # the JSON checks above and below still run
    return
  nbformat.validate(nbformat.reads(NOTEBOOK.read_text(), as_version=4))


def test_every_python_m_module_exists():
  _, code = _sources()
  modules = {m for src in code for m in re.findall(r'python -m ([A-Za-z_][\w.]*)', src)}
  assert {'datasets.build', 'experiments.loso'} <= modules
  for module in modules:
    path = ROOT.joinpath(*module.split('.'))
    assert path.with_suffix('.py').is_file() or (path / '__main__.py').is_file(), module


def test_options_used_exist():
  from experiments import loso as cli
  _, code = _sources()
  flags = set(re.findall(r'(--\w+)', '\n'.join(s for s in code if 'experiments.loso' in s)))
  known = {o for a in cli.make_parser()._actions for o in a.option_strings}
  assert flags and flags <= known, flags - known
