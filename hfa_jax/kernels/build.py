"""Compiling the native CPU kernels on first use (the machine's C++ compiler), registering them.

XLA:CPU has no fast path for depthwise convolutions and their gradients (each RMT block uses
three of them), computes the weight gradients of small-channel 3x3 convolutions and of
Linear layers over many rows well below its matmul speed, and makes three passes over
memory for each parameter's AdamW step. Three XLA FFI custom-call sources implement them:
`depthwise_cpu.cc` (depthwise forward and weight gradient), `conv_cpu.cc`
(dense-convolution weight gradient, also used for Linear layers as a 1x1 convolution) and
`adamw_cpu.cc` (AdamW in one pass, in place), with `parallel.h` running work on XLA's
intra-op threads and `vec.h` their vector type. The first call compiles them
(`c++ -O3 -march=native`) into ~/.cache/hfa_jax/kernels (or
$HFA_JAX_CACHE/kernels), keyed by the sources, jax version and CPU, and registers them with
XLA. Nothing is downloaded.

If no compiler is found or compilation fails, `native_available()` is False, a warning says
why once, and the model uses XLA's own forms (same numbers to float32 rounding, slower).
`HFA_JAX_NATIVE=0` turns the kernels off. Only the CPU backend uses them; GPU and TPU
programs always use the pure-JAX/XLA forms.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import jax

from hfa_jax.kernels.ffi import TARGETS

SOURCES = [
  Path(__file__).with_name(name)
  for name in (
    'depthwise_cpu.cc',
    'conv_cpu.cc',
    'conv_forward_cpu.cc',
    'stem_cpu.cc',
    'adamw_cpu.cc',
  )
]
HEADERS = [Path(__file__).with_name(name) for name in ('parallel.h', 'vec.h', 'direct_conv.h')]


def cache_root() -> Path:
  """The project's cache: $HFA_JAX_CACHE, else $XDG_CACHE_HOME/hfa_jax, else ~/.cache/hfa_jax."""
  return Path(
    os.environ.get('HFA_JAX_CACHE')
    or os.path.join(os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'hfa_jax')
  )


def cache_dir() -> Path:
  """Where the compiled kernels go."""
  return cache_root() / 'kernels'


def _cpu_signature() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      flags = next((line for line in f if line.startswith(('flags', 'Features'))), '')
  except OSError:
    flags = ''
  return platform.machine() + flags


def _compiler() -> str | None:
  for name in (os.environ.get('CXX'), 'c++', 'g++', 'clang++'):
    if name and shutil.which(name):
      return name
  return None


def build(verbose: bool = False) -> Path:
  """Compiles the kernels if the cache has no build for this source/jax/CPU; returns the .so.

  Raises RuntimeError with the compiler's message on failure.
  """
  cxx = _compiler()
  if cxx is None:
    raise RuntimeError('no C++ compiler found (set CXX, or install g++)')
  # -fno-math-errno: sqrt may be vectorised (it sets no errno; the numbers are the same)
  flags = ['-O3', '-march=native', '-fno-math-errno', '-std=c++17', '-shared', '-fPIC']
  key = hashlib.sha256(
    b''.join(f.read_bytes() for f in SOURCES + HEADERS)
    + jax.__version__.encode()
    + _cpu_signature().encode()
    + ' '.join([cxx] + flags).encode()
  )
  target = cache_dir() / f'hfa_kernels-{key.hexdigest()[:16]}.so'
  if target.exists():
    return target
  target.parent.mkdir(parents=True, exist_ok=True)
  # Compile to a temporary name and rename: concurrent processes never see a partial file.
  fd, tmp = tempfile.mkstemp(suffix='.so', dir=target.parent)
  os.close(fd)
  cmd = [cxx, *flags, f'-I{jax.ffi.include_dir()}', *map(str, SOURCES), '-o', tmp]
  if verbose:
    print(' '.join(cmd))
  result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode != 0 and '-march=native' in cmd:  # e.g. a compiler without it
    cmd.remove('-march=native')
    result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode != 0:
    os.unlink(tmp)
    raise RuntimeError(f'compiling the native kernels failed:\n{result.stderr[-2000:]}')
  os.replace(tmp, target)
  return target


_FAILURE: list[str] = []  # why native_available() said False, once it has


_XLA_FORMS: list[bool] = []  # one entry per open `xla_forms()` context


def native_available() -> bool:
  """True once the CPU kernels are compiled and registered with XLA (memoised), except
  within `xla_forms()`."""
  return not _XLA_FORMS and _registered()


@contextlib.contextmanager
def xla_forms():
  """Within: native_available() is False, so programs traced here use the XLA forms that GPU
  and TPU programs run, e.g. to read on this CPU the memory XLA plans for them (a native
  kernel's own buffers are not in XLA's memory analysis)."""
  _XLA_FORMS.append(True)
  try:
    yield
  finally:
    _XLA_FORMS.pop()


@functools.lru_cache(maxsize=None)
def _registered() -> bool:
  """Builds the kernels once and registers them with XLA; False (and why, in _FAILURE) where
  they are switched off or cannot be built."""
  if switched_off():
    _FAILURE.append('switched off (HFA_JAX_NATIVE=0)')
    return False
  try:
    library = ctypes.cdll.LoadLibrary(str(build()))
    for target, symbol in TARGETS.items():
      jax.ffi.register_ffi_target(
        target, jax.ffi.pycapsule(getattr(library, symbol)), platform='cpu'
      )
  except Exception as e:  # noqa: BLE001 - any failure means: use the pure-JAX form
    _FAILURE.append(str(e))
    warnings.warn(
      f'hfa_jax: native CPU kernels unavailable, using slower pure-JAX/XLA forms '
      f'of the depthwise convolutions and weight gradients ({e})',
      RuntimeWarning,
      stacklevel=2,
    )
    return False
  return True


def switched_off() -> bool:
  """HFA_JAX_NATIVE=0: the kernels are turned off."""
  return os.environ.get('HFA_JAX_NATIVE', '1') == '0'


def compiler_found() -> bool:
  """Whether this machine has a C++ compiler to build the kernels with (CXX, c++, g++,
  clang++)."""
  return _compiler() is not None


def unavailable_reason() -> str | None:
  """None where the kernels are built and registered; else why not (switched off, no
  compiler, or the build's error)."""
  return None if _registered() else (_FAILURE[-1] if _FAILURE else 'unknown')
