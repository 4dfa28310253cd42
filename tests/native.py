"""The native CPU kernels in tests: a test that needs them is skipped, saying so, only where
they cannot be expected (no C++ compiler here, or HFA_JAX_NATIVE=0); where a compiler is
here and the build fails for another reason, the test fails with the build's error (CI has a
compiler)."""

import pytest

from hfa_jax import kernels


def absent_for_a_reason() -> str | None:
  """Why the kernels may rightly be absent here, or None (then they must build)."""
  if kernels.switched_off():
    return 'the native kernels are switched off (HFA_JAX_NATIVE=0)'
  if not kernels.compiler_found():
    return 'no C++ compiler: the native kernels are not built'
  return None


def require():
  """Skips the calling test where the kernels may rightly be absent; fails it where they
  should have built and did not."""
  if kernels.native_available():
    return
  why = absent_for_a_reason()
  if why:
    pytest.skip(why)
  pytest.fail(
    f'a C++ compiler is here but the native kernels did not build: {kernels.unavailable_reason()}',
    pytrace=False,
  )


@pytest.fixture
def built():
  """A fixture form of require() (for `pytestmark = pytest.mark.usefixtures(...)`)."""
  require()
