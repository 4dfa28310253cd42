"""Mixed precision (--dtype): a bfloat16 LOSO scores as float32 does with float32 parameters
and optimiser state; the default is bfloat16 on a TPU only; the command records the choice."""

import json
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import networks, loso as cli
from experiments import options
from hfa_jax import optimiser
from hfa_jax import train as train_lib
from hfa_jax.loso import LosoConfig, run_loso
from tests.tiny import TinyNet, toy_data

CPU = [types.SimpleNamespace(platform='cpu')]
TPU = [types.SimpleNamespace(platform='tpu')]


class PlainNet(nn.Module):
  """A model without a dtype field (a user's 'module:Class' may be one)."""

  num_classes: int = 3

  @nn.compact
  def __call__(self, x, train: bool = False):
    return nn.Dense(self.num_classes)(x.mean((1, 2)))


class StateDtypes:
  """A callback: the floating dtypes of each part of the stacked train state, every epoch."""

  def __init__(self):
    self.seen = {}

  def on_epoch_end(self, end):
    for part in ('params', 'opt_state', 'batch_stats', 'ema'):
      leaves = jax.tree.leaves(getattr(end.state, part))
      floats = {str(x.dtype) for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)}
      self.seen.setdefault(part, set()).update(floats)


def _settings(*argv):
  _, args = options.parse(list(argv))
  return options.settings_from_args(args)


def _computes_in(model, side=8) -> set:
  """The dtypes of the convolutions in the model's forward pass (its jaxpr)."""
  x = jnp.zeros((2, side, side, 3), jnp.float32)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
  text = str(jax.make_jaxpr(lambda v: model.apply(v, x))(variables))
  lines = [line for line in text.splitlines() if 'conv_general_dilated' in line]
  return {d for d in ('bf16', 'f32') if any(f':{d}[' in line for line in lines)}


def test_bfloat16_loso_scores_as_float32_and_keeps_float32_state():
  x, y, s = toy_data(n_subjects=4, per_subject=12, seed=1)
  cfg = LosoConfig(
    epochs=8,
    batch_size=8,
    learning_rate=3e-2,
    precise_bn=8,
    ema_decay=0.5,
    folds_in_parallel=0,
    eval_every_epoch=False,
  )
  results, seen = {}, {}
  for name, dtype in (('float32', None), ('bfloat16', jnp.bfloat16)):
    watch = StateDtypes()
    config = LosoConfig(**{**cfg.__dict__, 'dtype': name})
    results[name] = run_loso(
      x, y, s, config, TinyNet(dtype=dtype), progress=False, callbacks=(watch,)
    )
    seen[name] = watch.seen
  for name in results:
    # parameters, AdamW's moments, BatchNorm statistics and the moving average: float32
    assert seen[name] == {p: {'float32'} for p in ('params', 'opt_state', 'batch_stats', 'ema')}
  f32, bf16 = (results[n]['metrics']['uf1'] for n in ('float32', 'bfloat16'))
  assert f32 > 0.85 and abs(bf16 - f32) <= 0.05, (f32, bf16)
  p32, p16 = (results[n]['predictions']['probs'] for n in ('float32', 'bfloat16'))
  assert not np.array_equal(p32, p16)  # bfloat16 did compute: the probabilities differ a little
  np.testing.assert_allclose(p16, p32, atol=0.05)


def test_default_dtype_is_bfloat16_on_a_tpu_only():
  s = _settings('--config', 'tiny', '--model', 'tests.tiny:TinyNet')
  assert s.training.dtype is None
  with pytest.raises(ValueError, match='resolve_dtype'):
    networks.build_model(s, 3)
  on_cpu, why = networks.resolve_dtype(s, CPU)
  assert on_cpu.training.dtype == 'float32' and 'default on CPU' in why
  assert on_cpu.values()['dtype'] == 'float32' and '--dtype float32' in on_cpu.command()
  assert networks.build_model(on_cpu, 3) == TinyNet(num_classes=3)  # as before: dtype unset
  for model in ('tests.tiny:TinyNet', 'hfanet', 'ststnet'):
    on_tpu, why = networks.resolve_dtype(_settings('--config', 'tiny', '--model', model), TPU)
    assert (on_tpu.training.dtype, why) == ('bfloat16', 'the default on a TPU')
    assert networks.build_model(on_tpu, 3).dtype is jnp.bfloat16
  chosen, _ = networks.resolve_dtype(_settings('--config', 'tiny', '--dtype', 'float32'), TPU)
  assert chosen.training.dtype == 'float32'  # a set value wins


def test_a_model_without_a_dtype_field_computes_in_float32():
  plain = _settings('--config', 'tiny', '--model', 'tests.test_dtype:PlainNet')
  on_tpu, why = networks.resolve_dtype(plain, TPU)
  assert on_tpu.training.dtype == 'float32' and 'has no dtype field' in why
  assert networks.build_model(on_tpu, 3) == PlainNet(num_classes=3)
  asked = _settings(
    '--config', 'tiny', '--model', 'tests.test_dtype:PlainNet', '--dtype', 'bfloat16'
  )
  with pytest.raises(options.UsageError, match='use --dtype float32'):
    networks.resolve_dtype(asked, CPU)


def test_bfloat16_models_compute_in_bfloat16_with_float32_parameters():
  for model, side in (('tests.tiny:TinyNet', 8), ('ststnet', 28)):
    s, _ = networks.resolve_dtype(_settings('--model', model, '--dtype', 'bfloat16'), CPU)
    net = networks.build_model(s, 3)
    assert _computes_in(net, side) == {'bf16'}, model
    default, _ = networks.resolve_dtype(_settings('--model', model), CPU)
    assert _computes_in(networks.build_model(default, 3), side) == {'f32'}, model
    state = train_lib.create_train_state(
      np.asarray(jax.random.PRNGKey(0)), net, (1, side, side, 3), optimiser.OptimConfig()
    )
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, side, side, 3)), jnp.float32)
    step = jax.jit(lambda state, x, y: train_lib.train_step(state, x, y, rng=jax.random.key(1)))
    state, metrics = step(state, x, jnp.arange(4) % 3)
    assert np.isfinite(metrics['loss']) and metrics['loss'].dtype == jnp.float32
    leaves = jax.tree.leaves((state.params, state.opt_state, state.batch_stats))
    assert {str(a.dtype) for a in leaves if jnp.issubdtype(a.dtype, jnp.floating)} == {'float32'}
    assert train_lib.eval_step(state, x).dtype == jnp.float32  # the logits stay float32


def test_the_command_prints_and_saves_the_chosen_dtype(tmp_path, capsys):
  args = ['--config', 'tiny', '--model', 'tests.tiny:TinyNet', '--synthetic_subjects', '1']
  args += ['--data_dir', str(tmp_path / 'data'), '--no_progress']
  out = tmp_path / 'bf16'
  assert cli.main([*args, '--dtype', 'bfloat16', '--out', str(out)]) == 0
  assert 'compute dtype bfloat16: as set; parameters stay float32' in capsys.readouterr().out
  summary = json.loads((out / 'summary.json').read_text())
  assert summary['settings']['dtype'] == 'bfloat16' and '--dtype bfloat16' in summary['command']
  assert options.saved_record(out)['settings']['dtype'] == 'bfloat16'
  assert np.isfinite(summary['uf1'])
  # the default on this CPU: float32, recorded as such, and a resume keeps it
  out = tmp_path / 'default'
  assert cli.main([*args, '--out', str(out)]) == 0
  assert 'compute dtype float32: the default on CPU' in capsys.readouterr().out
  assert json.loads((out / 'summary.json').read_text())['settings']['dtype'] == 'float32'
  assert options.saved_settings(out).training.dtype == 'float32'
  # a run saved before the setting existed computed in float32
  run_json = out / 'state' / 'run.json'
  run = json.loads(run_json.read_text())
  del run['started_by']['settings']['dtype']
  run_json.write_text(json.dumps(run))
  assert options.saved_settings(out).training.dtype == 'float32'
  # bfloat16 for a model that cannot: a usage error before anything is written
  plain = tmp_path / 'plain'
  code = cli.main(
    [*args, '--model', 'tests.test_dtype:PlainNet', '--dtype', 'bfloat16', '--out', str(plain)]
  )
  assert code == 2 and 'has no dtype field' in capsys.readouterr().err and not plain.exists()
  with pytest.raises(options.UsageError, match='dtype must be one of float32, bfloat16'):
    _settings('--dtype', 'float16')
