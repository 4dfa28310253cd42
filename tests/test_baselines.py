"""Baseline networks (hfa_jax.models.ststnet): shapes, size, BatchNorm/dropout modes, numbers
against a NumPy transcription of PyTorch's layer semantics, and that training learns."""

import functools

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from hfa_jax.models.ststnet import STSTNet
from tests.tiny import toy_data

WIDTHS = (3, 5, 8)


def key(seed):
  """An 'rbg' key: XLA:CPU compiles threefry's bit generation slowly (~1.7 s a program here)."""
  return jax.random.key(seed, impl='rbg')


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def init(model, side, batch=2, seed=0):
  return model.init(key(seed), jnp.zeros((batch, side, side, 3)))


@functools.partial(jax.jit, static_argnames=('model', 'train', 'with_rng'))
def forward(model, variables, x, train=False, seed=0, with_rng=True):
  """Logits (eval) or (logits, batch_stats updates) (train), one compile per model and mode."""
  rngs = {'dropout': key(seed)} if with_rng else None
  if not train:
    return model.apply(variables, x, rngs=rngs)
  return model.apply(variables, x, train=True, mutable=['batch_stats'], rngs=rngs)


def flow_images(n, side, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(n, side, side, 3)), jnp.float32)


# Side -> pooled map side: conv (pad 2) s + 2, max-pool 3/3 pad 1 (s + 1) // 3 + 1, avg-pool // 2.
@pytest.mark.parametrize('side, pooled', [(28, 5), (32, 6), (64, 11)])
def test_output_shapes(side, pooled):
  model = STSTNet(num_classes=3)
  variables = init(model, side)
  chex.assert_shape(variables['params']['fc']['kernel'], (pooled * pooled * 16, 3))
  x = flow_images(2, side)
  logits = forward(model, variables, x)
  chex.assert_shape(logits, (2, 3))
  train_logits, updates = forward(model, variables, x, train=True, seed=1)
  chex.assert_shape(train_logits, (2, 3))
  chex.assert_trees_all_equal_shapes(updates['batch_stats'], variables['batch_stats'])
  chex.assert_tree_all_finite((logits, train_logits, updates))


def test_conv_padding_1_is_the_matlab_layout():
  """'same' convolutions (the MATLAB graph, Table I) also pool 28x28 to 5x5x16."""
  variables = jax.eval_shape(
    STSTNet(conv_padding=1).init, jax.random.key(0), jnp.zeros((1, 28, 28, 3))
  )
  chex.assert_shape(variables['params']['fc']['kernel'], (400, 3))


def test_parameter_count():
  variables = jax.eval_shape(
    STSTNet(num_classes=3).init, jax.random.key(0), jnp.zeros((1, 28, 28, 3))
  )
  params = variables['params']
  count = lambda tree: sum(int(np.prod(p.shape)) for p in jax.tree.leaves(tree))
  # convs: 3*3*3 weights + 1 bias per filter = 28 each, (3 + 5 + 8) * 28 = 448;
  # BatchNorm: scale + bias per channel, 2 * 16 = 32;
  # Linear: 28 -> 30 (conv) -> 10 (max-pool) -> 5 (avg-pool): 5*5*16 = 400 inputs,
  #   400 * 3 + 3 = 1,203.  Total 448 + 32 + 1,203 = 1,683.
  assert count([params[f'conv{i}'] for i in (1, 2, 3)]) == 448
  assert count([params[f'bn{i}'] for i in (1, 2, 3)]) == 32
  assert count(params['fc']) == 1_203
  assert count(params) == 1_683
  assert count(variables['batch_stats']) == 32  # running mean, var per channel
  for i, w in enumerate(WIDTHS, start=1):
    chex.assert_shape(params[f'conv{i}']['kernel'], (3, 3, 3, w))


def test_initialisation_is_pytorchs_default():
  """Weights U(+-1/sqrt(fan_in)) (PyTorch's Conv2d/Linear default), zero biases, BN 1/0."""
  params = init(STSTNet(), 28)['params']
  for name, fan_in in [('conv1', 27), ('conv2', 27), ('conv3', 27), ('fc', 400)]:
    w, bound = np.asarray(params[name]['kernel']), 1 / np.sqrt(fan_in)
    assert np.abs(w).max() <= bound, name
    assert np.abs(w).max() > 0.7 * bound, name  # uses the range: not a narrow normal
    assert not np.any(params[name]['bias']), name
  assert np.all(np.asarray(params['bn3']['scale']) == 1)


def test_batchnorm_statistics_move_only_in_training():
  model = STSTNet()
  variables = init(model, 28)
  x = flow_images(4, 28) * 3 + 1
  _, trained = forward(model, variables, x, train=True)
  _, evaluated = jax.jit(lambda v, x: model.apply(v, x, mutable=['batch_stats']))(variables, x)
  for i in (1, 2, 3):
    before, after = variables['batch_stats'][f'bn{i}'], trained['batch_stats'][f'bn{i}']
    assert bool(jnp.all(after['mean'] != before['mean'])), i
    assert bool(jnp.all(after['var'] != before['var'])), i
  chex.assert_trees_all_equal(evaluated['batch_stats'], variables['batch_stats'])


def test_dropout_only_in_training_and_from_the_dropout_rng():
  model = STSTNet()
  variables = init(model, 28)
  x = flow_images(4, 28)

  train_logits = lambda seed, model=model: forward(model, variables, x, train=True, seed=seed)[0]

  a, a_again, b = train_logits(1), train_logits(1), train_logits(2)
  chex.assert_trees_all_equal(a, a_again)
  assert float(jnp.abs(a - b).max()) > 1e-3
  # Without dropout, training mode no longer depends on the rng.
  no_drop = STSTNet(dropout=0.0)
  chex.assert_trees_all_equal(train_logits(1, no_drop), train_logits(2, no_drop))
  # Evaluation needs no rng and ignores one.
  chex.assert_trees_all_equal(
    forward(model, variables, x, with_rng=False), forward(model, variables, x, seed=3)
  )
  with pytest.raises(flax.errors.InvalidRngError):
    jax.eval_shape(
      lambda v, x: model.apply(v, x, train=True, mutable=['batch_stats']), variables, x
    )


# --- PyTorch's semantics, written out in NumPy (NCHW, float64) --------------------------------


def random_state_dict(seed, classes=3, flat=400):
  """A PyTorch-layout state dict for STSTNet with non-trivial values everywhere."""
  rng = np.random.default_rng(seed)
  sd = {}
  for i, w in enumerate(WIDTHS, start=1):
    sd[f'conv{i}.weight'] = rng.normal(0, 0.3, (w, 3, 3, 3))
    sd[f'conv{i}.bias'] = rng.normal(0, 0.1, (w,))
    sd[f'bn{i}.weight'] = rng.uniform(0.5, 1.5, (w,))
    sd[f'bn{i}.bias'] = rng.normal(0, 0.2, (w,))
    sd[f'bn{i}.running_mean'] = rng.normal(0, 0.5, (w,))
    sd[f'bn{i}.running_var'] = rng.uniform(0.5, 2.0, (w,))
  sd['fc.weight'] = rng.normal(0, 0.05, (classes, flat))
  sd['fc.bias'] = rng.normal(0, 0.1, (classes,))
  return sd


def to_variables(sd):
  """The conversion recipe of the module docstring (NCHW flatten -> NHWC flatten)."""
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  params, stats = {}, {}
  for i in (1, 2, 3):
    params[f'conv{i}'] = {
      'kernel': f32(sd[f'conv{i}.weight'].transpose(2, 3, 1, 0)),
      'bias': f32(sd[f'conv{i}.bias']),
    }
    params[f'bn{i}'] = {'scale': f32(sd[f'bn{i}.weight']), 'bias': f32(sd[f'bn{i}.bias'])}
    stats[f'bn{i}'] = {'mean': f32(sd[f'bn{i}.running_mean']), 'var': f32(sd[f'bn{i}.running_var'])}
  w = sd['fc.weight']
  classes, side = w.shape[0], int(round(np.sqrt(w.shape[1] // 16)))
  kernel = w.reshape(classes, 16, side, side).transpose(2, 3, 1, 0).reshape(-1, classes)
  params['fc'] = {'kernel': f32(kernel), 'bias': f32(sd['fc.bias'])}
  return {'params': params, 'batch_stats': stats}


def _pad(x, p, value=0.0):
  return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=value)


def reference_forward(sd, x, train, padding=2, momentum=0.1, eps=1e-5):
  """torch semantics: Conv2d(pad), ReLU, BatchNorm2d, MaxPool2d(3, 3, 1), cat, AvgPool2d(2),
  view(B, -1) (C, H, W order), Linear. No dropout. Returns logits and new running stats."""
  streams, stats = [], {}
  for i in (1, 2, 3):
    win = sliding_window_view(_pad(x, padding), (3, 3), axis=(2, 3))  # B C H W 3 3
    y = np.einsum('bchwij,ocij->bohw', win, sd[f'conv{i}.weight'])
    y = np.maximum(y + sd[f'conv{i}.bias'][None, :, None, None], 0)
    if train:
      mean, var = y.mean((0, 2, 3)), y.var((0, 2, 3))
      n = y.size // y.shape[1]
      stats[i] = (
        (1 - momentum) * sd[f'bn{i}.running_mean'] + momentum * mean,
        (1 - momentum) * sd[f'bn{i}.running_var'] + momentum * var * n / (n - 1),
      )
    else:
      mean, var = sd[f'bn{i}.running_mean'], sd[f'bn{i}.running_var']
    c = lambda v: v[None, :, None, None]
    y = (y - c(mean)) / np.sqrt(c(var) + eps) * c(sd[f'bn{i}.weight']) + c(sd[f'bn{i}.bias'])
    win = sliding_window_view(_pad(y, 1, -np.inf), (3, 3), axis=(2, 3))[:, :, ::3, ::3]
    streams.append(win.max((4, 5)))
  y = np.concatenate(streams, axis=1)
  b, ch, h, w = y.shape
  y = y[:, :, : h // 2 * 2, : w // 2 * 2].reshape(b, ch, h // 2, 2, w // 2, 2).mean((3, 5))
  return y.reshape(b, -1) @ sd['fc.weight'].T + sd['fc.bias'], stats


@pytest.mark.parametrize('side, flat, padding', [(28, 400, 2), (32, 576, 2), (28, 400, 1)])
def test_matches_pytorch_semantics(side, flat, padding):
  sd = random_state_dict(seed=side + padding, flat=flat)
  x = np.random.default_rng(1).normal(size=(3, 3, side, side))  # NCHW
  model = STSTNet(dropout=0.0, conv_padding=padding)
  variables = to_variables(sd)
  x_nhwc = jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32)

  want, _ = reference_forward(sd, x, train=False, padding=padding)
  got = forward(model, variables, x_nhwc, with_rng=False)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)

  want, want_stats = reference_forward(sd, x, train=True, padding=padding)
  got, updates = forward(model, variables, x_nhwc, train=True, with_rng=False)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)
  for i, (mean, var) in want_stats.items():
    np.testing.assert_allclose(updates['batch_stats'][f'bn{i}']['mean'], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(updates['batch_stats'][f'bn{i}']['var'], var, rtol=1e-5, atol=1e-6)


# --- Learning -------------------------------------------------------------------------------


def test_training_on_a_separable_toy_problem_reduces_the_loss():
  images, labels, _ = toy_data(n_subjects=2, per_subject=6, side=28)
  x, y = jnp.asarray(images), jnp.asarray(labels)
  model = STSTNet(num_classes=3)
  variables = init(model, 28)
  tx = optax.adam(1e-2)
  opt_state = tx.init(variables['params'])

  @jax.jit
  def step(params, batch_stats, opt_state, rng):
    def loss_fn(params):
      logits, updates = model.apply(
        {'params': params, 'batch_stats': batch_stats},
        x,
        train=True,
        mutable=['batch_stats'],
        rngs={'dropout': key(rng)},
      )
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates

    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    changes, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, changes), updates['batch_stats'], opt_state, loss

  params, batch_stats = variables['params'], variables['batch_stats']
  losses = []
  for i in range(20):
    params, batch_stats, opt_state, loss = step(params, batch_stats, opt_state, i)
    losses.append(float(loss))
  chex.assert_tree_all_finite(params)
  assert np.mean(losses[-5:]) < 0.5 * losses[0], losses
  logits = forward(model, {'params': params, 'batch_stats': batch_stats}, x)
  assert float((logits.argmax(-1) == y).mean()) >= 0.9


def test_bfloat16_compute_keeps_float32_logits_and_parameters():
  model = STSTNet(dtype=jnp.bfloat16)
  variables = init(model, 28)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  x = flow_images(2, 28)
  low = forward(model, variables, x)
  assert low.dtype == jnp.float32
  np.testing.assert_allclose(low, forward(STSTNet(), variables, x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize('shape', [(28, 28, 3), (1, 28, 28, 3, 1), (1, 1, 1, 3)])
def test_bad_input_shape_is_a_clear_error(shape):
  with pytest.raises(ValueError, match='STSTNet'):
    jax.eval_shape(STSTNet().init, jax.random.key(0), jnp.zeros(shape))


@pytest.mark.parametrize('kernel,padding', [(3, 1), (2, 0), (3, 0), (4, 2)])
def test_disjoint_max_pool_matches_the_general_pool_and_its_gradient(kernel, padding):
  """ops.max_pool_disjoint (STSTNet's 3x3/3 pool) equals ops.max_pool (PyTorch's) and XLA's
  reduce-window maximum, values and gradients, on inputs without ties."""
  from hfa_jax.ops.max_pool import max_pool, max_pool_disjoint, max_pool_reference

  for side in (30, 32, 28):
    x = flow_images(2, side, seed=side)
    out = (side + 2 * padding - kernel) // kernel + 1
    g = flow_images(2, out, seed=1)[..., :1] * jnp.ones(3)
    ours, vjp_ours = jax.vjp(lambda x: max_pool_disjoint(x, kernel, padding), x)
    for form in (max_pool, max_pool_reference):
      ref, vjp_ref = jax.vjp(lambda x: form(x, kernel, kernel, padding), x)
      chex.assert_trees_all_close(ours, ref)
      chex.assert_trees_all_close(vjp_ours(g), vjp_ref(g))


def test_disjoint_max_pool_gives_the_gradient_to_the_first_tied_maximum():
  """Where a window holds its maximum twice or more, the first in row-major order gets the
  gradient, as PyTorch's max_pool2d and ops.max_pool give it; entries outside every window
  (the last row and column at 30 px) get none."""
  from hfa_jax.ops.max_pool import max_pool, max_pool_disjoint

  x = jnp.round(flow_images(2, 30, seed=3) * 2)  # values in {-2, ..., 2}: many ties
  g = flow_images(2, 10, seed=4)

  def blocks(x):  # PyTorch's padding by -inf, cut to whole 3x3 windows: (2, 10, 3, 10, 3, 3)
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
    return xp[:, :30, :30].reshape(2, 10, 3, 10, 3, 3)

  ours, vjp_ours = jax.vjp(lambda x: max_pool_disjoint(x, 3, 1), x)
  ref, vjp_ref = jax.vjp(lambda x: max_pool(x, 3, 3, 1), x)
  chex.assert_trees_all_close(ours, ref)
  chex.assert_trees_all_close(vjp_ours(g), vjp_ref(g))
  (dx,) = vjp_ours(g)
  assert float(jnp.abs(dx[:, 29]).max()) == 0 and float(jnp.abs(dx[:, :, 29]).max()) == 0
  assert int((dx != 0).sum()) == int((g != 0).sum())  # one entry per window
  maxima = (blocks(x) == ref[:, :, None, :, None]).sum((2, 4))
  assert int((maxima > 1).sum()) > 10  # the case is tested: many windows have ties
