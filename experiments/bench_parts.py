"""Forward + backward of each part of HFA-Net on its own (the benchmark's part rows): the MSA
branch, RMT's patch embedding, the four RMT stages, and the model after its branches."""

from __future__ import annotations

import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench_runners import NUM_CLASSES
from experiments.timing import compile_fn, random_variables, time_steps
from hfa_jax.models import MSA, RMT, HFANet
from hfa_jax.models.rmt.patch import PatchEmbed
from hfa_jax.models.rmt.stage import Stage


class AfterBranches(nn.Module):
  """HFANet after its two branches (concatenation, MLFA, AAFF, pooling, head): the model's own
  code, with the MSA and RMT outputs given instead of computed.

  levels: MSA's four maps then RMT's four (B, S/4.., S/4.., C) -> logits (B, classes).
  """

  model: HFANet

  @nn.compact
  def __call__(self, *levels: jax.Array, train: bool) -> jax.Array:
    given = {MSA: levels[:4], RMT: levels[4:]}

    def feed(next_fun, args, kwargs, context):
      if context.method_name == '__call__' and type(context.module) in given:
        return given[type(context.module)]
      return next_fun(*args, **kwargs)

    side = levels[0].shape[1] * 4
    with nn.intercept_methods(feed):
      return self.model(jnp.zeros((levels[0].shape[0], side, side, 3)), train)


def network_parts(side: int, dtype) -> list[tuple[str, nn.Module, list[tuple]]]:
  """(name, module, input shapes without batch) of each piece, in forward order.

  The pieces are HFANet's own submodules (and its top, `AfterBranches`), with the inputs they
  get at this side, recorded while tracing the model's init.
  """
  model = HFANet(NUM_CLASSES, dtype=dtype)
  calls = {}

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    m = context.module
    if context.method_name == '__call__' and isinstance(m, (MSA, RMT, PatchEmbed, Stage)):
      shapes = [tuple(a.shape[1:]) for a in args if hasattr(a, 'shape')]
      calls.setdefault(m.path, (m.clone(parent=None), shapes, out))
    return out

  with nn.intercept_methods(record):
    jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False), jnp.zeros((1, side, side, 3))
    )
  parts = [('msa', *calls[('msa',)][:2]), ('rmt.embed', *calls[('rmt', 'patch_embed')][:2])]
  stages = [call for call in calls.values() if isinstance(call[0], Stage)]  # in forward order
  for i, (stage, shapes, _) in enumerate(stages, start=1):
    kind = 'decomposed' if stage.decomposed else 'whole'
    parts.append((f'rmt.stage{i} ({kind} {shapes[0][0]}x{shapes[0][1]})', stage, shapes))
  levels = [tuple(o.shape[1:]) for path in (('msa',), ('rmt',)) for o in calls[path][2]]
  parts.append(('mlfa+aaff+head', AfterBranches(model), levels))
  return parts


def bench_parts(side, batch, steps, dtype, seed=0) -> list[dict]:
  """Forward + backward (gradient w.r.t. parameters and inputs) of each part, in train mode."""
  rows = []
  rng = np.random.default_rng(seed)
  for name, module, shapes in network_parts(side, dtype):
    inputs = [jnp.asarray(rng.normal(size=(batch,) + s), jnp.float32) for s in shapes]
    variables = jax.tree.map(
      jnp.asarray,
      random_variables(
        module, *[np.zeros((1,) + s, np.float32) for s in shapes], train=False, seed=seed
      ),
    )

    def loss(params, inputs, module=module, variables=variables):
      out, _ = module.apply(
        {**variables, 'params': params}, *inputs, train=True, mutable=['batch_stats']
      )
      return sum(jnp.mean(jnp.square(o.astype(jnp.float32))) for o in jax.tree.leaves(out))

    grad = jax.grad(loss, argnums=(0, 1))
    compiled, compile_s = compile_fn(grad, (variables['params'], inputs))
    times = time_steps(lambda: compiled(variables['params'], inputs), steps)
    rows.append(
      {
        'kind': 'part',
        'part': name,
        'side': side,
        'batch': batch,
        'dtype': str(dtype),
        'compile_s': compile_s,
        'step_s': statistics.median(times),
        'step_s_all': times,
      }
    )
  return rows
