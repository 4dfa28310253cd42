"""The project's build backend: setuptools', with one addition to `pip install -e .`.

setuptools installs an editable hfa_jax as an import hook that Python consults only after its
own search of sys.path (only the library is installed: `datasets` and `experiments` stay in
the checkout, see setup.cfg). That search takes a folder named hfa_jax without an
__init__.py for a namespace package, and stops there: in the folder above a clone named
hfa_jax, `import hfa_jax` gave that clone's root folder, an empty namespace
("module 'hfa_jax' has no attribute 'load_model'").

So the editable wheel also gets hfa_jax-checkout.pth, which puts on sys.path a folder that
holds only hfa_jax: build/hfa_jax_path/hfa_jax, a link to the checkout's hfa_jax/. Python's
own search then finds the package there, from any folder; a checkout in the current folder
(another worktree, say) still comes first, as before. Where no link can be made (a file
system without them), the wheel is setuptools' own.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pathlib
import zipfile

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (every hook of setuptools' backend)

ROOT = pathlib.Path(__file__).resolve().parents[1]
PTH = 'hfa_jax-checkout.pth'


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
  name = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
  folder = _package_link()
  if folder is not None:
    _add_file(pathlib.Path(wheel_directory) / name, PTH, f'{folder}\n'.encode())
  return name


def _package_link() -> pathlib.Path | None:
  """build/hfa_jax_path, holding the link hfa_jax -> the checkout's hfa_jax/ (made once)."""
  folder = ROOT / 'build' / 'hfa_jax_path'
  link = folder / 'hfa_jax'
  try:
    folder.mkdir(parents=True, exist_ok=True)
    if not link.is_dir():
      if link.is_symlink():
        link.unlink()
      os.symlink(os.path.join('..', '..', 'hfa_jax'), link, target_is_directory=True)
  except OSError:
    return None
  return folder if (link / '__init__.py').is_file() else None


def _add_file(wheel: pathlib.Path, name: str, data: bytes):
  """Adds a file at the root of `wheel`, listed in its RECORD."""
  digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
  tmp = wheel.with_suffix('.tmp')
  with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as out:
    for item in src.infolist():
      content = src.read(item)
      if item.filename.endswith('.dist-info/RECORD'):
        content = content.rstrip(b'\n') + f'\n{name},sha256={digest},{len(data)}\n'.encode()
      out.writestr(item, content)
    out.writestr(name, data)
  os.replace(tmp, wheel)
