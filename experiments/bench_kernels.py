"""The convolution and Linear-layer pieces where HFA-Net's model code departs from XLA's
default, timed both ways at the shapes of a batch of 16 (side 224 unless noted).

    python -m experiments.bench_kernels            # every shape, ~2 minutes on 2 cores
    python -m experiments.bench_kernels --quick    # two small shapes (a smoke test)

Each row times XLA's own form (a `*_reference` of `hfa_jax.ops`) and the project's
(`hfa_jax.ops`, `hfa_jax.kernels`): the native weight gradient of dense 3x3 convolutions and of
Linear layers (`hfa_jax/kernels/conv_cpu.cc`), the strided input gradient as a stride-1 conv of
the spread gradient, and the forward at 1x1-2x2 outputs as a patches matmul. Both are jitted,
warmed up, and timed as the median of --repeats
calls; the maximum relative difference of their results is printed too. The last rows time
one AdamW update of HFA-Net's parameters for 1 and 8 stacked folds: optax.adamw (update +
apply_updates) against `hfa_jax.adamw` (one pass, `hfa_jax/kernels/adamw_cpu.cc`), the state
donated as in training.
"""

from __future__ import annotations

import argparse
import functools
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from experiments.timing import environment, median_ms, time_steps
from hfa_jax import allocator, kernels
from hfa_jax.ops import conv as conv_ops
from hfa_jax.ops import dense as dense_ops

# (what, batch, side, Cin, Cout, stride): 3x3 convolutions, padding 1.
WEIGHT_GRADS = [
  ('RMT patch embed proj_3', 16, 112, 32, 32, 1),
  ('MSA layer1 conv1 / patch embed proj_9', 16, 56, 64, 64, 1),
  ('RMT patch embed proj_6', 16, 112, 32, 64, 2),
  ('MSA stem conv1', 16, 224, 3, 64, 2),
  ('RMT stage 2 patch merging', 16, 56, 64, 128, 2),
  ('RMT stage 4 patch merging', 16, 14, 256, 512, 2),
]
INPUT_GRADS = [
  ('stage 4 patch merging at side 64', 16, 4, 256, 512, 2),
  ('stage 4 patch merging at side 32', 16, 2, 256, 512, 2),
]
FORWARDS = [
  ('stage 4 patch merging at side 32', 16, 2, 256, 512, 2),
  ('stage 4 patch merging at side 64', 16, 4, 256, 512, 2),
]
# (what, rows, in, out): Linear layers over B*H*W rows.
DENSE = [
  ('RMT stage 1-2 q/k/v/out projection', 16 * 56 * 56, 64, 64),
  ('RMT stage 2 FFN fc1', 16 * 56 * 56, 64, 384),
  ('RMT stage 3 FFN fc1', 16 * 28 * 28, 128, 512),
]
QUICK = {
  'weight': [('small', 2, 16, 8, 16, 1)],
  'dense': [('small', 512, 16, 32)],
  'input': [('small', 2, 4, 8, 16, 2)],
  'forward': [('small', 2, 2, 8, 16, 2)],
}


def conv_case(batch, side, cin, cout, stride, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)), jnp.float32)
  y = jax.eval_shape(lambda: conv_ops.conv_reference(x, w, stride, 1))
  g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
  return x, w, g


def rows(what, xla, ours, repeats):
  (a, t_xla), (b, t_ours) = median_ms(*xla, repeats), median_ms(*ours, repeats)
  return _report(what, t_xla, t_ours, a, b)


def _report(what, t_xla, t_ours, a, b) -> dict:
  """Prints and returns a row; a and b are the two forms' results (arrays or trees)."""
  diff = max(
    float(jnp.abs(x - y).max() / jnp.maximum(jnp.abs(x).max(), 1e-30))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )
  print(f'{what:64s} {t_xla:9.2f} {t_ours:9.2f} {t_xla / t_ours:7.1f}x {diff:9.1e}', flush=True)
  return {'what': what, 'xla_ms': t_xla, 'ours_ms': t_ours, 'max_rel_diff': diff}


def adamw_row(folds: int, repeats: int, side: int = 32) -> dict:
  """optax.adamw against hfa_jax.adamw on HFA-Net's parameters stacked for `folds` folds."""
  import optax

  from experiments.timing import random_variables
  from hfa_jax import HFANet
  from hfa_jax import adamw as adamw_lib

  one = random_variables(HFANet(num_classes=3), jnp.zeros((1, side, side, 3)))['params']
  params = jax.tree.map(lambda t: np.stack([t] * folds), one)
  grads = jax.tree.map(lambda t: jnp.asarray(t * 1e-3), params)
  schedule = optax.cosine_decay_schedule(5e-4, 1000)
  theirs, ours = optax.adamw(schedule, weight_decay=1e-4), adamw_lib.adamw(schedule, 1e-4)

  def optax_step(p, s, g):
    updates, s = jax.vmap(theirs.update)(g, s, p)
    return optax.apply_updates(p, updates), s

  def one_pass_step(p, s, g):
    return jax.vmap(ours.apply)(g, s, p)

  results, times = [], []
  for tx, step in ((theirs, optax_step), (ours, one_pass_step)):
    state = [jax.tree.map(jnp.asarray, params), jax.vmap(tx.init)(params)]
    fn = jax.jit(step, donate_argnums=(0, 1))

    def run():
      state[:] = fn(state[0], state[1], grads)
      return state[0]

    times.append(statistics.median(time_steps(run, repeats, warmup=2)) * 1e3)
    results.append(state[0])
  n = sum(t.size for t in jax.tree.leaves(one))
  what = (
    f'AdamW update, HFA-Net x {folds} fold{"s" * (folds > 1)} ({n / 1e6:.1f} M parameters each)'
  )
  return _report(what, *times, *results)


def main(argv=None) -> list[dict]:
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--repeats', type=int, default=10)
  p.add_argument('--quick', action='store_true', help='two small shapes per piece')
  args = p.parse_args(argv)
  if not kernels.native_available():
    p.error('the native CPU kernels are not available (no C++ compiler, or HFA_JAX_NATIVE=0)')
  weight = QUICK['weight'] if args.quick else WEIGHT_GRADS
  dense = QUICK['dense'] if args.quick else DENSE
  input_grads = QUICK['input'] if args.quick else INPUT_GRADS
  forwards = QUICK['forward'] if args.quick else FORWARDS
  env = environment()
  print(
    f"{env['device_kind']}, jax {env['jax']}, malloc retains memory: "
    f"{env['malloc_retains_memory']}; ms per call, median of {args.repeats}"
  )
  print(f'{"piece (shape)":64s} {"XLA":>9s} {"hfa_jax":>9s} {"speed-up":>8s} {"rel diff":>9s}')
  results = []
  for what, b, side, cin, cout, s in weight:
    x, w, g = conv_case(b, side, cin, cout, s)
    static = dict(stride=s, padding=1, k=3)
    label = f'conv dW {what} ({side}px {cin}->{cout} s{s})'
    results.append(
      rows(
        label,
        (functools.partial(conv_ops.conv_weight_grad_reference, **static), (x, g)),
        (functools.partial(kernels.conv_weight_grad, **static), (x, g)),
        args.repeats,
      )
    )
  for what, m, cin, cout in dense:
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(m, cin)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(m, cout)), jnp.float32)
    label = f'Linear dW {what} ({m}x{cin}->{cout})'
    results.append(
      rows(
        label,
        (lambda x, g: x.T @ g, (x, g)),
        (dense_ops.weight_grad_native, (x, g)),
        args.repeats,
      )
    )
  for what, b, side, cin, cout, s in input_grads:
    x, w, g = conv_case(b, side, cin, cout, s)
    xla = functools.partial(
      conv_ops.conv_input_grad_reference, stride=s, padding=1, shape=x.shape[1:]
    )
    ours = functools.partial(conv_ops.small_map_input_grad, stride=s, padding=1, size=(side, side))
    label = f'conv dx {what} ({side}px {cin}->{cout} s{s})'
    results.append(rows(label, (xla, (g, w)), (ours, (g, w)), args.repeats))
  for what, b, side, cin, cout, s in forwards:
    x, w, _ = conv_case(b, side, cin, cout, s)
    label = f'conv fwd {what} ({side}px {cin}->{cout} s{s})'
    results.append(
      rows(
        label,
        (functools.partial(conv_ops.conv_reference, stride=s, padding=1), (x, w)),
        (functools.partial(conv_ops.conv_forward, stride=s, padding=1), (x, w)),
        args.repeats,
      )
    )
  if not args.quick:
    results += [adamw_row(folds, args.repeats) for folds in (1, 8)]
  return results


if __name__ == '__main__':
  allocator.restart_with_retained_memory()  # as the training commands run
  main()
