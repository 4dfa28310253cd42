"""experiments/colab_tpu.ipynb: a valid notebook that runs as written. Every code cell runs
here, in order, in one namespace, on CPU, through the notebook's own off-Colab path (no
Drive, the project from this checkout, any device); the build and the LOSO run in this
process, as they must on a TPU. Also experiments/colab_setup.py's decisions (the runtime's
jax kept, one OpenCV, the runtime check)."""

import ast
import csv
import json
import pathlib
import re
import subprocess
import sys
import types
import zipfile

import pytest

from experiments import colab_setup

pytestmark = pytest.mark.slow  # an end-to-end tier

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / 'experiments' / 'colab_tpu.ipynb'
# The smallest run: 3 subjects of synthetic databases, TinyNet, one step of one epoch.
TINY = ['--config', 'tiny', '--model', 'tests.tiny:TinyNet', '--checkpoint_minutes', '0']


def _cells(kind='code'):
  nb = json.loads(NOTEBOOK.read_text())
  return [
    (c, ''.join(c['source']) if isinstance(c['source'], list) else c['source'])
    for c in nb['cells']
    if c['cell_type'] == kind
  ]


def _cell(text: str) -> str:
  """The source of the one code cell that holds `text`."""
  (src,) = [s for _, s in _cells() if text in s]
  return src


def test_valid_nbformat4():
  import nbformat

  nb = nbformat.reads(NOTEBOOK.read_text(), as_version=4)
  nbformat.validate(nb)
  assert nb.nbformat == 4 and _cells()
  (parameters,) = [c for c, _ in _cells() if 'parameters' in c['metadata'].get('tags', ())]
  assert 'FOLDS_IN_PARALLEL' in ''.join(parameters['source'])


def _runs(src: str) -> list[str]:
  """The modules whose main() a cell runs through the notebook's run_main."""
  return re.findall(r"run_main\('([\w.]+)'", src)


def test_every_module_it_runs_exists():
  code = [s for _, s in _cells()]
  text = [s for _, s in _cells('markdown')] + code
  called = {m for s in code for m in _runs(s)}
  assert {'datasets.build', 'experiments.loso', 'experiments.colab_setup'} <= called
  named = {m for s in text for m in re.findall(r'python -m ([a-z_]\w*\.[\w.]+)', s)}
  for module in called | named:
    path = ROOT.joinpath(*module.split('.')).with_suffix('.py')
    assert path.is_file(), module
    if module in called:
      assert re.search(r'^def main\(argv=None\)', path.read_text(), re.M), module


def _option_strings(module: str) -> set[str]:
  if module == 'experiments.loso':
    from experiments import options

    return {o for a in options.make_parser()._actions for o in a.option_strings}
  source = ROOT.joinpath(*module.split('.')).with_suffix('.py').read_text()
  return set(re.findall(r"add_argument\(\s*'(--\w+)'", source))


def test_options_used_exist():
  """Each cell's --options are options of the command it runs (the settings cell's, of the
  LOSO: OPTIONS)."""
  checked = set()
  for _, src in _cells():
    flags = set(re.findall(r"'(--\w+)'", src))
    for module in _runs(src) or ['experiments.loso']:
      known = _option_strings(module)
      assert flags <= known, (module, flags - known)
      checked |= flags
  assert {'--dataset', '--folds_in_parallel', '--manual_dir', '--no_device_check'} <= checked


def _settings(**overrides) -> dict:
  """The notebook's settings cell run here, then `overrides` (as papermill injects them)."""
  ns = {}
  exec(_cell('FOLDS_IN_PARALLEL = '), ns)
  return ns | overrides


def test_folds_and_size_are_automatic_unless_set():
  ns = _settings()
  assert ns['COLAB'] is False and ns['WANT'] is None  # off Colab: any device
  assert ns['FOLDS_IN_PARALLEL'] is None and ns['SIZE'] is None
  for folds, size in ((None, None), (4, 64)):
    calls = []
    ns = _settings(FOLDS_IN_PARALLEL=folds, SIZE=size, run_main=lambda m, a: calls.append(a))
    exec(_cell("run_main('experiments.loso'"), ns)
    (argv,) = calls
    assert ('--folds_in_parallel' in argv) == (folds is not None)
    assert ('--size' in argv) == (size is not None)
    if folds:
      assert argv[argv.index('--folds_in_parallel') + 1] == '4'


def test_the_output_folder_follows_the_options():
  """OUT None: the folder experiments.loso names the settings, OPTIONS included, on Drive; a
  run with other OPTIONS never lands in a finished run's folder. No fold models are kept
  unless KEEP_MODELS."""
  outs = []
  for extra in ([], ['--epochs', '40'], ['--epochs', '40']):
    calls = []
    ns = _settings(OPTIONS=extra, run_main=lambda m, a: calls.append(a))
    assert ns['OUT'] is None and ns['KEEP_MODELS'] is False
    exec(_cell("run_main('experiments.loso'"), ns)
    (argv,) = calls
    assert argv[argv.index('--out') + 1] == ns['OUT'] and argv[-2:] == ['--out', ns['OUT']]
    assert argv[argv.index('--keep_models') + 1] == 'false'
    outs.append(ns['OUT'])
  assert outs[0] == f"{ns['DRIVE']}/hfa_jax/runs/loso-samm-composite-224px-seed0"
  assert outs[1] == outs[2] == outs[0] + '-epochs40'
  calls = []
  ns = _settings(KEEP_MODELS=True, OUT='/somewhere', run_main=lambda m, a: calls.append(a))
  exec(_cell("run_main('experiments.loso'"), ns)
  assert calls[0][calls[0].index('--keep_models') + 1] == 'true' and ns['OUT'] == '/somewhere'


def test_it_says_what_it_keeps_on_drive():
  intro = _cells('markdown')[0][1]
  assert 'What it keeps on your Drive, and how large' in intro and '86 MB a fold' in intro
  assert "print(f'on Drive: the run" in _cell('def on_drive')


def _helpers() -> dict:
  """The notebook's get_project, find_checkout and run_main, defined without running the rest
  of their cell."""
  ns = _settings()
  tree = ast.parse(_cell('def get_project'))
  kept = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
  exec(compile(ast.Module(kept, []), 'project cell', 'exec'), ns)
  return ns


def test_project_comes_from_a_zip_of_the_repository(tmp_path):
  zip_path = tmp_path / 'hfa_jax.zip'
  subprocess.run(
    ['git', 'archive', '--prefix', 'hfa_jax-main/', '-o', str(zip_path), 'HEAD'],
    cwd=ROOT,
    check=True,
  )
  get_project = _helpers()['get_project']
  dest = get_project(str(zip_path), '', str(tmp_path / 'content' / 'hfa_jax'))
  assert (dest / 'setup.cfg').is_file() and (dest / 'experiments' / 'colab_setup.py').is_file()
  assert get_project(str(tmp_path / 'gone.zip'), '', str(dest)) == dest  # already there
  with pytest.raises(FileNotFoundError, match='git archive'):
    get_project(str(tmp_path / 'missing.zip'), '', str(tmp_path / 'other'))
  with zipfile.ZipFile(tmp_path / 'wrong.zip', 'w') as z:
    z.writestr('notes.txt', 'not a repository')
  with pytest.raises(RuntimeError, match='not a zip of the repository'):
    get_project(str(tmp_path / 'wrong.zip'), '', str(tmp_path / 'other'))
  with pytest.raises(RuntimeError, match='git clone .* failed'):
    get_project('', str(tmp_path / 'no_such_repo'), str(tmp_path / 'cloned'))


def test_off_colab_the_project_is_the_checkout(tmp_path):
  find_checkout = _helpers()['find_checkout']
  assert find_checkout(ROOT / 'experiments') == ROOT == find_checkout(ROOT)
  with pytest.raises(RuntimeError, match='set PROJECT'):
    find_checkout(tmp_path)


def test_run_main_stops_the_notebook_when_a_command_fails(tmp_path, monkeypatch, capsys):
  (tmp_path / 'nb_fake_command.py').write_text(
    'import argparse\n'
    'def main(argv=None):\n'
    "  if argv[0] == 'usage':\n"
    "    argparse.ArgumentParser(prog='fake').parse_args(['--no_such_option'])\n"
    "  if argv[0] == 'text':\n"
    "    raise SystemExit('building failed')\n"
    '  return int(argv[0])\n'
  )
  monkeypatch.syspath_prepend(str(tmp_path))
  run_main = _helpers()['run_main']
  run_main('nb_fake_command', [0])
  assert '$ python -m nb_fake_command 0' in capsys.readouterr().out
  with pytest.raises(RuntimeError, match=r'nb_fake_command 3 stopped \(exit code 3\): see its'):
    run_main('nb_fake_command', [3])
  with pytest.raises(RuntimeError, match='exit code 130.*run this cell again to continue'):
    run_main('nb_fake_command', [130])
  with pytest.raises(RuntimeError, match=r'usage stopped \(exit code 2\)'):
    run_main('nb_fake_command', ['usage'])
  assert 'unrecognized arguments: --no_such_option' in capsys.readouterr().err
  with pytest.raises(RuntimeError, match=r'\(building failed\)'):
    run_main('nb_fake_command', ['text'])


# ------------------------------------------------------------------- end to end


class _Table:
  """pandas.DataFrame's part the notebook uses."""

  def __init__(self, rows):
    self.rows = rows

  @property
  def T(self):  # noqa: N802 (pandas' name)
    return self

  def head(self, n=5):
    return _Table(self.rows[:n])


def _stand_ins(monkeypatch) -> list:
  """IPython.display and pandas where installed (as on Colab), else small stand-ins (the test
  extra does not require them); returns the list that a stand-in display() fills."""
  shown = []
  try:
    import IPython.display  # noqa: F401
  except ImportError:
    display = types.ModuleType('IPython.display')

    class Image:
      def __init__(self, filename):
        assert pathlib.Path(filename).is_file(), filename

    display.Image, display.display = Image, lambda *objects: shown.extend(objects)
    ipython = types.ModuleType('IPython')
    ipython.display = display
    # what matplotlib asks of an imported IPython: no shell runs here (as in a plain script)
    ipython.get_ipython = lambda: None
    ipython.version_info = (8, 24, 0)
    monkeypatch.setitem(sys.modules, 'IPython', ipython)
    monkeypatch.setitem(sys.modules, 'IPython.display', display)
  try:
    import pandas  # noqa: F401
  except ImportError:
    pd = types.ModuleType('pandas')
    pd.DataFrame = lambda data: _Table(list(data.values()))
    pd.read_csv = lambda path: _Table(list(csv.DictReader(open(path, newline=''))))
    monkeypatch.setitem(sys.modules, 'pandas', pd)
  return shown


def test_the_stand_ins_serve_matplotlib(monkeypatch):
  """Where IPython is not installed (the test extra does not require it), its stand-in is
  what matplotlib finds in sys.modules when the LOSO draws its plots: this file passes alone,
  whatever ran before it."""
  import matplotlib

  monkeypatch.setitem(sys.modules, 'IPython', None)  # as if not installed
  monkeypatch.delitem(sys.modules, 'IPython.display', raising=False)
  _stand_ins(monkeypatch)
  assert sys.modules['IPython'] is not None
  import matplotlib.pyplot as plt

  plt.install_repl_displayhook()  # what importing pyplot and switching backends call
  plt.switch_backend(matplotlib.get_backend())
  plt.close(plt.figure())  # a figure manager looks for IPython's event loop


@pytest.fixture
def notebook_process(monkeypatch):
  """This process as the notebook's kernel: started in the notebook's folder; its sys.path,
  jax settings (the LOSO turns on the compilation cache) and cwd put back afterwards; every
  subprocess recorded."""
  import jax

  monkeypatch.chdir(ROOT / 'experiments')
  monkeypatch.setattr(sys, 'path', list(sys.path))
  keys = ('jax_compilation_cache_dir', 'jax_persistent_cache_min_compile_time_secs')
  saved = {k: getattr(jax.config, k) for k in keys}
  started = []

  class Recorded(subprocess.Popen):
    def __init__(self, args, *a, **k):
      started.append(' '.join(map(str, args)) if isinstance(args, (list, tuple)) else args)
      super().__init__(args, *a, **k)

  monkeypatch.setattr(subprocess, 'Popen', Recorded)
  _stand_ins(monkeypatch)
  yield started
  for k, v in saved.items():
    jax.config.update(k, v)


def _run_notebook(overrides: dict, ns: dict | None = None) -> dict:
  """Every code cell in order in one namespace (`ns`), `overrides` after the parameters cell."""
  ns = {'__name__': '__main__'} if ns is None else ns
  for i, (cell, src) in enumerate(_cells()):
    exec(compile(src, f'<colab_tpu.ipynb code cell {i}>', 'exec'), ns)
    if 'parameters' in cell['metadata'].get('tags', ()):
      ns.update(overrides)
  return ns


@pytest.mark.parametrize('dataset', ['megc2019', 'synthetic'])
def test_notebook_runs_end_to_end_on_cpu(dataset, tmp_path, notebook_process, capsys):
  """megc2019: built by the build cell from a synthetic copy of the three databases (one
  subject each); synthetic: generated and built by the LOSO itself."""
  from datasets import synthetic

  overrides = dict(
    DATASET=dataset,
    DATA_DIR=str(tmp_path / 'tfds'),
    OUT=str(tmp_path / 'run'),
    OPTIONS=[*TINY, '--synthetic_subjects', '1'],
    FROM_PYTHON=True,
  )
  if dataset == 'megc2019':
    overrides |= dict(MANUAL_DIR=str(synthetic.generate('all', tmp_path / 'copy', 1, 0)), SIZE=32)
  ns = _run_notebook(overrides)
  out = capsys.readouterr().out

  assert ns['COLAB'] is False and ns['PROJECT'] == ROOT
  assert 'not on Colab' in out and 'jax sees: cpu' in out
  if dataset == 'megc2019':
    assert f'$ python -m datasets.build megc2019 --manual_dir {ns["MANUAL_DIR"]}' in out
    assert (tmp_path / 'tfds' / 'megc2019' / 'size_32').is_dir()
  assert '$ python -m experiments.loso --dataset ' + dataset in out
  assert '--folds_in_parallel' not in ns['LOSO_ARGV']  # automatic (here: the tiny recipe's)
  summary = ns['summary']
  assert summary['n_folds'] == 3 and summary['subjects_total'] == 3
  assert summary['argv'][:3] == ['python', '-m', 'experiments.loso']
  assert summary['devices']['platform'] == 'cpu'
  assert 'UF1' in out and 'reproduce with: python -m experiments.loso' in out
  assert set(ns['result']['per_subject']) == set(sorted(summary['per_subject'])[:2])
  # the build and the LOSO ran in this process, and nothing was installed
  assert not [c for c in notebook_process if re.search(r'datasets\.build|experiments\.|pip', c)]


def test_on_a_colab_cpu_runtime_it_says_how_to_switch_to_a_tpu(
  tmp_path, notebook_process, monkeypatch
):
  """The Colab path as far as a CPU goes: Drive mounted (a stand-in google.colab), the
  project unpacked from the zip in Drive, colab_setup run in this process (its pip steps
  replaced), then the runtime check stops the notebook, saying how to get a TPU."""
  mounted, setup = [], []
  colab = types.ModuleType('google.colab')
  colab.drive = types.SimpleNamespace(mount=mounted.append)
  monkeypatch.setitem(sys.modules, 'google.colab', colab)
  monkeypatch.setattr(colab_setup, 'main', lambda argv: setup.append(argv) or 0)
  zip_path = tmp_path / 'MyDrive' / 'hfa_jax.zip'
  zip_path.parent.mkdir()
  subprocess.run(['git', 'archive', '-o', str(zip_path), 'HEAD'], cwd=ROOT, check=True)
  project = tmp_path / 'content' / 'hfa_jax'
  ns, before = {'__name__': '__main__'}, len(notebook_process)
  with pytest.raises(colab_setup.SetupError) as e:
    _run_notebook(dict(PROJECT_ZIP=str(zip_path), PROJECT=str(project)), ns)
  assert 'this runtime has no TPU' in str(e.value)
  assert 'Runtime > Change runtime type > Hardware accelerator: TPU' in str(e.value)
  assert ns['COLAB'] is True and ns['WANT'] == 'tpu' and mounted == ['/content/drive']
  assert ns['PROJECT'] == project and pathlib.Path.cwd() == project
  assert (project / 'setup.cfg').is_file() and sys.path[0] == str(project)
  assert setup == [['--no_device_check']]  # the install checks no device in another process
  assert notebook_process[before:] == []  # and the notebook started no process


def test_the_loso_bar_is_tqdm_auto():
  """In a Jupyter kernel with ipywidgets (Colab) tqdm.auto is the notebook widget; in a
  terminal the text bar."""
  import tqdm.auto

  from hfa_jax.loso import callbacks

  assert callbacks.tqdm is tqdm.auto.tqdm


# ----------------------------------------------------------------- colab_setup


def test_setup_pins_the_runtimes_jax(capsys):
  pins = colab_setup.constraints()
  assert any(p.startswith('jax==') for p in pins) and any(p.startswith('jaxlib==') for p in pins)
  cmd = colab_setup.pip_command('c.txt', dry_run=False)
  assert cmd[cmd.index('-c') + 1] == 'c.txt' and '-e' in cmd
  assert colab_setup.main(['--dry_run', '--no_device_check']) == 0  # pip resolves, jax kept
  out = capsys.readouterr().out
  assert 'Would install hfa_jax' in out and 'OpenCV: ' in out and 'jax sees' not in out


COLAB_CV2 = {
  'opencv-python': '4.12.0.88',
  'opencv-python-headless': '4.12.0.88',
  'opencv-contrib-python': '4.12.0.88',
}
OURS = 'opencv-contrib-python-headless>=4.10,<5'


def test_one_opencv_plan():
  assert colab_setup.opencv_requirement((ROOT / 'setup.cfg').read_text()) == OURS
  with pytest.raises(colab_setup.SetupError, match='no OpenCV'):
    colab_setup.opencv_requirement('[options]\ninstall_requires =\n    numpy\n')

  # Colab as it comes: the three others go, pip then installs the project's
  plan = colab_setup.opencv_plan(COLAB_CV2, OURS)
  assert plan.remove == ('opencv-contrib-python', 'opencv-python', 'opencv-python-headless')
  assert plan.restore is None
  (uninstall,) = plan.commands('py')
  assert uninstall == ['py', '-m', 'pip', 'uninstall', '-y', *plan.remove]
  assert 'the same cv2 module' in plan.describe()

  # the project's beside them (installed earlier, or by hand): it is reinstalled after
  plan = colab_setup.opencv_plan({**COLAB_CV2, 'OpenCV_Contrib_Python_Headless': '4.11.0.86'}, OURS)
  assert 'opencv-contrib-python-headless' not in plan.remove and len(plan.remove) == 3
  assert plan.restore == 'opencv-contrib-python-headless==4.11.0.86'
  uninstall, reinstall = plan.commands('py')
  assert uninstall[3] == 'uninstall' and reinstall[-1] == plan.restore
  assert {'--no-deps', '--force-reinstall'} <= set(reinstall)
  assert 'reinstalling opencv-contrib-python-headless==4.11.0.86' in plan.describe()

  # only the project's, or none: nothing to do
  for installed in ({'opencv-contrib-python-headless': '4.12.0.88'}, {}):
    plan = colab_setup.opencv_plan(installed, OURS)
    assert plan.remove == () and plan.restore is None and plan.commands() == []
    assert 'no other distribution provides cv2' in plan.describe()

  # any other installed distribution holding cv2 goes too
  plan = colab_setup.opencv_plan({'my-cv2-fork': '1.0'}, OURS)
  assert plan.remove == ('my-cv2-fork',)


def test_one_opencv_dry_run_changes_nothing(monkeypatch, capsys):
  monkeypatch.setattr(colab_setup, 'installed_cv2', lambda: dict(COLAB_CV2))

  def no_pip(*args, **kwargs):
    raise AssertionError(f'ran {args}')

  monkeypatch.setattr(colab_setup.subprocess, 'run', no_pip)
  colab_setup.one_opencv(dry_run=True)
  out = capsys.readouterr().out
  assert 'would run: ' in out and 'pip uninstall -y opencv-contrib-python opencv-python ' in out


def test_installed_cv2_finds_this_environments():
  import importlib.metadata as md

  found = colab_setup.installed_cv2()
  providers = {colab_setup.canonical(n) for n in md.packages_distributions().get('cv2', [])}
  assert providers and providers <= set(found)


def test_runtime_check_says_how_to_switch_to_a_tpu():
  assert colab_setup.verdict(None, 'cpu 1 cpu') == 'cpu 1 cpu'
  assert colab_setup.verdict('tpu', 'tpu 1 TPU v5 lite') == 'tpu 1 TPU v5 lite'
  with pytest.raises(colab_setup.SetupError) as e:
    colab_setup.verdict('tpu', 'cpu 1 cpu')
  message = str(e.value)
  assert 'no TPU (jax sees: cpu 1 cpu)' in message
  assert 'Runtime > Change runtime type > Hardware accelerator: TPU' in message
  assert 'another process holds the chip' in message and 'Restart session' in message
  with pytest.raises(colab_setup.SetupError, match='Hardware accelerator: a GPU'):
    colab_setup.verdict('gpu', 'cpu 1 cpu')
  assert colab_setup.check_this_process(None).startswith('cpu ')
