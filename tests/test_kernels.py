"""The native CPU depthwise kernels (ops.depthwise_conv on CPU) against XLA's grouped convolution
(depthwise_conv_reference) and the pure-JAX form."""

import functools
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hfa_jax import kernels
from tests.native import built  # noqa: F401 (the fixture)
from hfa_jax.ops.depthwise_conv import (
  depthwise_conv,
  depthwise_conv_reference,
  depthwise_conv_sum,
  depthwise_weight_grad_sum,
)

# Skipped where there is no C++ compiler (or HFA_JAX_NATIVE=0), failed where a build with one fails
pytestmark = pytest.mark.usefixtures('built')

CASES = [
  (2, 7, 9, 5, 3, 1),
  (3, 6, 6, 8, 5, 2),
  (2, 5, 5, 4, 3, 0),
  (1, 4, 4, 3, 1, 0),
  (2, 8, 8, 16, 3, 2),
  (1, 3, 3, 2, 5, 2),
  # channels in whole vectors and rows wide enough for the blocks of columns that need no
  # edge checks (the kernels' register-blocked path), with edge blocks on both sides
  (2, 5, 21, 32, 5, 2),
  (1, 4, 19, 48, 3, 1),
]


def data(b, h, w, c, k, seed=0):
  rng = np.random.default_rng(seed)
  return (
    jnp.asarray(rng.normal(size=(b, h, w, c)), jnp.float32),
    jnp.asarray(rng.normal(size=(k, k, 1, c)), jnp.float32),
  )


def weighted_sum_grad(conv, shape):
  """Gradient of sum(conv(x, w) * fixed weights): exercises dx and dw with a non-uniform g."""
  weights = jnp.cos(jnp.arange(np.prod(shape), dtype=jnp.float32)).reshape(shape)
  return jax.grad(lambda x, w: (conv(x, w) * weights).sum(), (0, 1))


@pytest.mark.parametrize('case', CASES)
def test_forward_and_gradients_match_the_grouped_convolution(case):
  b, h, w, c, k, p = case
  x, wt = data(b, h, w, c, k)
  native = jax.jit(lambda x, w: depthwise_conv(x, w, p))
  assert kernels.DEPTHWISE_FORWARD in native.lower(x, wt).compile().as_text()
  ref = depthwise_conv_reference(x, wt, p)
  np.testing.assert_allclose(native(x, wt), ref, rtol=1e-5, atol=1e-5)
  dx, dw = jax.jit(weighted_sum_grad(lambda x, w: depthwise_conv(x, w, p), ref.shape))(x, wt)
  rx, rw = jax.jit(weighted_sum_grad(lambda x, w: depthwise_conv_reference(x, w, p), ref.shape))(
    x, wt
  )
  np.testing.assert_allclose(dx, rx, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dw, rw, rtol=1e-5, atol=1e-4)


def test_native_kernels_equal_the_pure_jax_form():
  x, wt = data(4, 10, 12, 32, 3, seed=1)
  g = jnp.asarray(np.random.default_rng(2).normal(size=x.shape), jnp.float32)
  y_native = jax.jit(functools.partial(kernels.depthwise_forward, padding=1))(x, wt[:, :, 0])
  y_sum = jax.jit(functools.partial(depthwise_conv_sum, padding=1))(x, wt)
  np.testing.assert_allclose(y_native, y_sum, rtol=1e-5, atol=1e-5)
  dw_native = jax.jit(functools.partial(kernels.depthwise_weight_grad, padding=1))(x, g)
  dw_sum = jax.jit(functools.partial(depthwise_weight_grad_sum, padding=1))(x, g)
  np.testing.assert_allclose(dw_native, dw_sum, rtol=1e-4, atol=1e-3)


def test_vmap_over_models_as_the_fold_axis_uses_it():
  b, h, w, c, k, p = 2, 6, 6, 8, 3, 1
  x, wt = data(b, h, w, c, k)
  xs, ws = jnp.stack([x, 2 * x, x - 1]), jnp.stack([wt, 0.5 * wt, -wt])
  shape = (b, h, w, c)
  got = jax.jit(jax.vmap(weighted_sum_grad(lambda x, w: depthwise_conv(x, w, p), shape)))(xs, ws)
  want = jax.vmap(weighted_sum_grad(lambda x, w: depthwise_conv_reference(x, w, p), shape))(xs, ws)
  for a, r in zip(got, want):
    np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-4)
  only_x = jax.jit(jax.vmap(lambda x: depthwise_conv(x, wt, p)))(xs)  # weights shared
  np.testing.assert_allclose(
    only_x, jax.vmap(lambda x: depthwise_conv_reference(x, wt, p))(xs), rtol=1e-5, atol=1e-5
  )


def test_weight_gradient_is_deterministic():
  x, _ = data(8, 20, 20, 64, 3, seed=3)
  g = jnp.asarray(np.random.default_rng(4).normal(size=x.shape), jnp.float32)
  fn = jax.jit(functools.partial(kernels.depthwise_weight_grad, padding=1))
  first = np.asarray(fn(x, g))
  for _ in range(3):
    np.testing.assert_array_equal(np.asarray(fn(x, g)), first)


def test_switched_off_by_environment_variable():
  code = (
    'import jax, jax.numpy as jnp; from hfa_jax import kernels;'
    'from hfa_jax.ops.depthwise_conv import depthwise_conv;'
    'x = jnp.ones((1, 4, 4, 2)); w = jnp.ones((3, 3, 1, 2));'
    'print(kernels.native_available(),'
    ' "hfa_depthwise" in jax.jit(lambda x, w: depthwise_conv(x, w, 1)).lower(x, w).as_text())'
  )
  out = subprocess.run(
    [sys.executable, '-c', code],
    capture_output=True,
    text=True,
    env={**os.environ, 'HFA_JAX_NATIVE': '0'},
    check=True,
  ).stdout
  assert out.split() == ['False', 'False']


def test_a_failed_build_falls_back_with_a_warning(tmp_path):
  code = 'from hfa_jax import kernels; print(kernels.native_available())'
  env = {
    **os.environ,
    'CXX': 'false-compiler-that-does-not-exist',
    'PATH': str(tmp_path),
    'HFA_JAX_CACHE': str(tmp_path / 'cache'),
  }
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ['False']
  assert 'no C++ compiler found' in result.stderr


def test_a_broken_build_fails_the_tests_that_need_it(tmp_path):
  """Where a compiler is found but the build fails (not a missing compiler), the tests that
  need the kernels fail, saying why, instead of being skipped."""
  compiler = tmp_path / 'bin' / 'broken-c++'
  compiler.parent.mkdir()
  compiler.write_text('#!/bin/sh\necho "internal compiler error" >&2\nexit 1\n')
  compiler.chmod(0o755)
  root = pathlib.Path(__file__).resolve().parents[1]
  code = 'from tests import native; native.require()'
  for cxx, said in (
    (str(compiler), 'a C++ compiler is here but the native kernels did not build'),
    ('no-such-compiler', 'no C++ compiler: the native kernels are not built'),
  ):
    env = {
      **os.environ,
      'CXX': cxx,
      'PATH': str(compiler.parent),
      'HFA_JAX_CACHE': str(tmp_path / 'cache'),
      'PYTHONPATH': str(root),
    }
    result = subprocess.run(
      [sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=root
    )
    assert result.returncode != 0 and said in result.stderr, result.stderr[-2000:]
    if cxx != 'no-such-compiler':
      assert 'internal compiler error' in result.stderr  # the build's own message
