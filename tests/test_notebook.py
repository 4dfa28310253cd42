"""experiments/colab_tpu.ipynb: a valid notebook whose commands exist in the project, and
whose set-up steps run (as far as a CPU allows) and stop with a message when they fail."""

import json
import pathlib
import re
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / 'experiments' / 'colab_tpu.ipynb'


def _sources():
  nb = json.loads(NOTEBOOK.read_text())
  return nb, [
    ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    for c in nb['cells']
    if c['cell_type'] == 'code'
  ]


def test_valid_nbformat4():
  nb, code = _sources()
  assert nb['nbformat'] == 4 and code
  try:
    import nbformat
  except ImportError:  # the JSON checks above and below still run
    return
  nbformat.validate(nbformat.reads(NOTEBOOK.read_text(), as_version=4))


def test_every_python_m_module_exists():
  _, code = _sources()
  modules = {m for src in code for m in re.findall(r"(?:python -m |'-m', ')([A-Za-z_][\w.]*)", src)}
  assert {'datasets.build', 'experiments.loso'} <= modules
  for module in modules:
    path = ROOT.joinpath(*module.split('.'))
    assert path.with_suffix('.py').is_file() or (path / '__main__.py').is_file(), module


def test_options_used_exist():
  from experiments import options

  _, code = _sources()
  flags = set(re.findall(r'(--\w+)', '\n'.join(s for s in code if 'experiments.loso' in s)))
  known = {o for a in options.make_parser()._actions for o in a.option_strings}
  assert flags and flags <= known, flags - known


def _project_cell():
  """The notebook's get_project and sh, defined without running the cell's last step."""
  _, code = _sources()
  src = next(s for s in code if 'def get_project' in s)
  namespace = {}
  exec(src.split('os.chdir(get_project())')[0], namespace)
  return namespace


def test_project_comes_from_a_zip_of_the_repository(tmp_path):
  zip_path = tmp_path / 'hfa_jax.zip'
  subprocess.run(
    ['git', 'archive', '--prefix', 'hfa_jax-main/', '-o', str(zip_path), 'HEAD'],
    cwd=ROOT,
    check=True,
  )
  get_project = _project_cell()['get_project']
  dest = get_project(str(zip_path), '', str(tmp_path / 'content' / 'hfa_jax'))
  assert (dest / 'setup.cfg').is_file() and (dest / 'experiments' / 'colab_setup.py').is_file()
  assert get_project(str(tmp_path / 'gone.zip'), '', str(dest)) == dest  # already there
  with pytest.raises(FileNotFoundError, match='Download ZIP'):
    get_project(str(tmp_path / 'missing.zip'), '', str(tmp_path / 'other'))
  with zipfile.ZipFile(tmp_path / 'wrong.zip', 'w') as z:
    z.writestr('notes.txt', 'not a repository')
  with pytest.raises(RuntimeError, match='not a zip of the repository'):
    get_project(str(tmp_path / 'wrong.zip'), '', str(tmp_path / 'other'))
  with pytest.raises(RuntimeError, match='git clone .* failed'):
    get_project('', str(tmp_path / 'no_such_repo'), str(tmp_path / 'cloned'))


def test_sh_stops_the_notebook_on_a_failed_command(capsys):
  sh = _project_cell()['sh']
  sh(sys.executable, '-c', 'print("hello")')
  assert 'hello' in capsys.readouterr().out
  with pytest.raises(RuntimeError, match='exit 3'):
    sh(sys.executable, '-c', 'import sys; sys.exit(3)')


def test_setup_pins_the_runtimes_jax_and_checks_the_accelerator(capsys):
  from experiments import colab_setup

  pins = colab_setup.constraints()
  assert any(p.startswith('jax==') for p in pins) and any(p.startswith('jaxlib==') for p in pins)
  cmd = colab_setup.pip_command('c.txt', dry_run=False)
  assert cmd[cmd.index('-c') + 1] == 'c.txt' and '-e' in cmd
  assert colab_setup.main(['--dry_run']) == 0  # pip resolves with jax kept as it is
  assert 'Would install hfa_jax' in capsys.readouterr().out
  import jax

  if jax.devices()[0].platform == 'cpu':  # here: no TPU, a message says how
    assert colab_setup.main(['--dry_run', '--want', 'tpu']) == 1
    assert 'Change runtime type' in capsys.readouterr().err
