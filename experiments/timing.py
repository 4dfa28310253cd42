"""Timing, environment and arithmetic helpers shared by benchmark, bench_baselines, bench_kernels,
profile_step and arithmetic_floor."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from hfa_jax import allocator, kernels
from hfa_jax.environment import cpu_model


def environment() -> dict:
  """Devices, CPU model, load average and versions."""
  import flax

  devices = jax.devices()
  return {
    'backend': jax.default_backend(),
    'device_kind': devices[0].device_kind,
    'device_count': len(devices),
    'cpu_model': cpu_model(),
    'cpu_count': os.cpu_count(),
    'load_average': os.getloadavg() if hasattr(os, 'getloadavg') else None,
    'python': platform.python_version(),
    'jax': jax.__version__,
    'jaxlib': jax.lib.__version__ if hasattr(jax.lib, '__version__') else None,
    'flax': flax.__version__,
    'optax': optax.__version__,
    'numpy': np.__version__,
    'xla_flags': os.environ.get('XLA_FLAGS', ''),
    'malloc_retains_memory': allocator.active(),
    'native_cpu_kernels': kernels.native_available(),
  }


def peak_memory_bytes() -> tuple[int, str]:
  """(bytes, source): the device's peak where it reports one, else the process's max RSS."""
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return int(stats['peak_bytes_in_use']), 'device peak_bytes_in_use'
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, 'process max RSS'


def xla_bytes(compiled) -> int | None:
  """XLA's estimate of a compiled program's memory: arguments + outputs - aliased + temporaries."""
  try:
    m = compiled.memory_analysis()
    return int(
      m.argument_size_in_bytes
      + m.output_size_in_bytes
      - m.alias_size_in_bytes
      + m.temp_size_in_bytes
    )
  except Exception:  # not every backend implements it
    return None


def random_variables(module: nn.Module, *inputs, seed: int = 0, **kwargs):
  """Fan-in scaled normal kernels, unit scales, zero biases: drawn with numpy (no init compile)."""
  shapes = jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a, **kwargs), *inputs)
  rng = np.random.default_rng(seed)

  def draw(path, spec):
    name = path[-1].key
    if name == 'kernel':
      fan_in = int(np.prod(spec.shape[:-1]))
      return rng.normal(size=spec.shape).astype(np.float32) / np.float32(np.sqrt(fan_in))
    fill = np.ones if name in ('scale', 'var') else np.zeros
    return fill(spec.shape, np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def compile_fn(fn, args, donate=()) -> tuple[Any, float]:
  """(compiled, seconds to trace + lower + compile); fn may be jitted already."""
  start = time.perf_counter()
  jitted = fn if hasattr(fn, 'lower') else jax.jit(fn, donate_argnums=donate)
  compiled = jitted.lower(*args).compile()
  return compiled, time.perf_counter() - start


def time_steps(run: Callable[[], Any], steps: int, warmup: int = 1) -> list[float]:
  """Seconds of each of `steps` calls of run() (each waits for its result), after `warmup`."""
  for _ in range(warmup):
    jax.block_until_ready(run())
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    jax.block_until_ready(run())
    times.append(time.perf_counter() - start)
  return times


def median_ms(fn: Callable, args: tuple, repeats: int) -> tuple[Any, float]:
  """(fn(*args), median milliseconds of `repeats` calls) of jax.jit(fn), after one warm-up call."""
  fn = jax.jit(fn)
  out = jax.block_until_ready(fn(*args))
  return out, statistics.median(time_steps(lambda: fn(*args), repeats, warmup=0)) * 1e3


def train_flops_per_sample(model, side: int, batch: int) -> float:
  """FLOPs of one sample's forward + backward pass of `model` (a linen module taking (B,
  side, side, 3) and `train`), as XLA counts the XLA form of a batch of `batch`."""
  x = jnp.zeros((batch, side, side, 3), jnp.float32)
  y = jnp.zeros((batch,), jnp.int32)
  rngs = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
  with kernels.xla_forms():
    variables = jax.eval_shape(lambda: model.init(rngs, x[:1], train=False))

    def loss(params, stats):
      logits, _ = model.apply(
        {'params': params, 'batch_stats': stats},
        x,
        train=True,
        rngs={'dropout': jax.random.key(2)},
        mutable=['batch_stats'],
      )
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    stats = variables.get('batch_stats', {})
    costs = jax.jit(jax.grad(loss)).lower(variables['params'], stats).cost_analysis()
  costs = costs[0] if isinstance(costs, (list, tuple)) else costs
  return float(costs['flops']) / batch


def gemm_rate(sizes=(1024, 2048, 4096), repeats: int = 5) -> dict:
  """The float32 n x n matrix-multiply rate of jitted jnp.dot (FLOP/s, 2 n^3 per product):
  {'flops_per_s': the best, 'by_size': {n: best of `repeats`}}."""
  dot = jax.jit(jnp.dot)
  by_size = {}
  for n in sizes:
    rng = np.random.default_rng(n)
    a, b = (jnp.asarray(rng.random((n, n), np.float32)) for _ in range(2))
    by_size[n] = 2 * n**3 / min(time_steps(lambda: dot(a, b), repeats))
  return {'flops_per_s': max(by_size.values()), 'by_size': by_size}
