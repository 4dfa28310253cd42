"""The model registry (hfa_jax.models.registry) and the recipes (experiments/configs): every
network builds by name and has its recipe; every recipe is plain overrides of the declared
defaults."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from experiments import declarations, recipes
from hfa_jax.models import registry


def test_every_baseline_has_its_own_recipe():
  stock = set(recipes.recipe_names())
  for name in registry.names():
    if name != 'hfanet':
      assert name in stock, f'experiments/configs/{name}.py is missing'
      assert recipes.default_recipe('megc2019_flow_images', name) == name
      assert recipes.load_recipe(name).get('model') == name


@pytest.mark.parametrize('name', recipes.recipe_names())
def test_recipes_are_plain_overrides(name):
  defaults = declarations.declared_defaults()
  assert declarations.base_config().to_dict() == defaults  # the same, as a ConfigDict
  values = recipes.load_recipe(name)
  restated = {k: v for k, v in values.items() if defaults[k] == v}
  assert not restated, f'{name}.py restates declared defaults: {restated}'


def test_build_by_name_and_module_path():
  model = registry.build('ststnet', 4)
  assert type(model) is registry.model_class('hfa_jax.models.ststnet:STSTNet')
  assert model.num_classes == 4 and model.dtype is None
  assert registry.build('ststnet', 3, 'bfloat16').dtype == jnp.bfloat16
  assert registry.build('hfanet', 3, 'float32', drop_path=0.1).drop_path == 0.1


def test_build_errors_name_what_is_wrong():
  with pytest.raises(ValueError, match="'nonet' is not one of hfanet, rcn_a, ststnet"):
    registry.model_class('nonet')
  with pytest.raises(ValueError, match="ststnet has no field 'drop_path'"):
    registry.build('ststnet', 3, drop_path=0.1)

  @dataclasses.dataclass
  class NoDtype:
    num_classes: int

  assert not registry.takes_dtype(NoDtype) and registry.takes_dtype(registry.model_class('hfanet'))


@pytest.mark.parametrize('name', [n for n in registry.names() if n != 'hfanet'])
def test_every_baseline_runs_at_its_recipe_side(name):
  """Each baseline's forward pass at the side its recipe trains on (the flow images' 28 px
  rounded up to its multiple where the recipe sets no size): logits, and BatchNorm updates
  in training with a dropout rng."""
  cls = registry.model_class(name)
  side = recipes.load_recipe(name).get('size') or 28
  side = -(-side // getattr(cls, 'side_multiple', 1)) * getattr(cls, 'side_multiple', 1)
  model = registry.build(name, 3)
  x = jnp.ones((2, side, side, 3)) * 0.1
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  if sum(a.size for a in jax.tree.leaves(shapes)) > 20_000_000:
    pytest.skip(f'{name} is large: its own test file runs it (tests/test_{name}.py)')
  variables = jax.jit(model.init)(jax.random.key(0), x)
  assert model.apply(variables, x, train=False).shape == (2, 3)
  logits, _ = model.apply(
    variables, x, train=True, mutable=['batch_stats'], rngs={'dropout': jax.random.key(1)}
  )
  assert logits.shape == (2, 3)
