"""Lets the `tfds build datasets/NAME` command line import this project's builders.

The TFDS command line imports `datasets/NAME/NAME_dataset_builder.py` as the module
`NAME.NAME_dataset_builder` (with `datasets/` on sys.path), inside
`tensorflow_datasets.core.community.huggingface_wrapper.mock_huggingface_import()`, which puts a
stand-in for Hugging Face's `datasets` library into `sys.modules['datasets']` meanwhile. The
builders import their shared code from this project's `datasets` package, which the stand-in
hides ("No module named 'datasets.common'; 'datasets' is not a package").

Each builder package's `__init__.py` calls `lend_project_datasets()` when it is imported under
its bare name (only the TFDS command line does that): the repository root goes first on
sys.path and this project's `datasets` package replaces the stand-in. Our builders do not use
the stand-in; TFDS puts back what it replaced once the builder is imported, and later imports
(also in the flow-extraction worker processes, which inherit sys.path) find this package again.
"""

import importlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def lend_project_datasets():
  """sys.modules['datasets'] := this project's `datasets` package (repository root on sys.path)."""
  mine = ROOT / 'datasets'
  present = sys.modules.get('datasets')
  if _is_mine(present, mine):
    return
  root = str(ROOT)
  if root in sys.path:
    sys.path.remove(root)
  sys.path.insert(0, root)
  sys.modules.pop('datasets', None)
  try:
    package = importlib.import_module('datasets')
  except BaseException:
    if present is not None:
      sys.modules['datasets'] = present
    raise
  if not _is_mine(package, mine):
    raise ImportError(
      f'`import datasets` found {package.__file__!r}, not {mine}: run the '
      'tfds command from the hfa_jax repository root'
    )


def _is_mine(module, folder: pathlib.Path) -> bool:
  file = getattr(module, '__file__', None)
  return file is not None and pathlib.Path(file).resolve().parent == folder
