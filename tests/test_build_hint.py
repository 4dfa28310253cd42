"""A dataset that is not built: the suggested `hfa_jax build` command (datasets.build from any
folder) makes exactly the config that was asked for (parsed by the build's own parser, never
run)."""

import shlex

import pytest

from datasets import build, load
from datasets.common import builder as base
from datasets.common import registry
from hfa_jax import cli


def suggested_command(message: str) -> list[str]:
  """The arguments of the `hfa_jax build ...` line in a not-built message."""
  (line,) = [s for s in message.splitlines() if s.strip().startswith('hfa_jax build')]
  words = shlex.split(line)
  assert words[:2] == ['hfa_jax', 'build'] and cli.COMMANDS['build'] == 'datasets.build'
  return words[2:]


def built_config(args: list[str]) -> tuple[str, str]:
  """(dataset, config) that datasets.build makes from these arguments."""
  parsed = build.parse_args(args)
  config = base.select_config(
    registry.builder_class(parsed.name), parsed.size, parsed.apex, parsed.missing_apex
  )
  return parsed.name, config if isinstance(config, str) else config.name


@pytest.mark.parametrize(
  'name, config',
  [
    ('megc2019_flow_images', 'size_64'),
    ('megc2019_flow_images', 'size_28'),
    ('megc2019_flow_images', 'size_224'),
    ('casme2', 'size_32_missing_apex_middle'),
    ('samm', 'size_224'),
    ('smic', 'size_128_apex_max_motion'),
    ('megc2019', 'size_32'),
    ('megc2019', 'size_64_apex_max_motion_missing_apex_middle'),  # not predefined, still built
  ],
)
def test_suggested_build_makes_the_asked_config(tmp_path, name, config):
  # the trainer asks for 32 px whatever the config: the config decides what is read
  with pytest.raises(load.DatasetNotBuiltError) as e:
    load.dataset_path(name, tmp_path, size=32, config=config)
  args = suggested_command(str(e.value))
  assert built_config(args) == (name, config)
  assert build.parse_args(args).data_dir == str(tmp_path)


@pytest.mark.parametrize(
  'name, size, config',
  [
    ('megc2019_flow_images', 32, 'size_32'),  # the trainer's 32 px, not the native 28
    ('megc2019_flow_images', 28, 'size_28'),
    ('samm', 64, 'size_64'),
    ('casme2', 224, 'size_224'),
  ],
)
def test_without_a_config_the_trainers_size_is_built(tmp_path, name, size, config):
  with pytest.raises(load.DatasetNotBuiltError) as e:
    load.training_data(name, tmp_path, size)
  message = str(e.value)
  args = suggested_command(message)
  assert built_config(args) == (name, config)
  default = load.native_size(name)
  if size == default:
    assert '--size' not in args and 'resized' not in message
  else:  # the default build does too, resized on load (the README builds the default)
    assert f'or at its default side, {default} px (the same command without --size)' in message
    assert built_config([a for a in args if a != '--size' and a != str(size)]) == (
      name,
      base.config_name(default),
    )


def test_without_data_dir_the_command_has_none(monkeypatch, tmp_path):
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))
  with pytest.raises(load.DatasetNotBuiltError) as e:
    load.dataset_path('megc2019_flow_images', config='size_64')
  args = suggested_command(str(e.value))
  assert '--data_dir' not in args and built_config(args) == ('megc2019_flow_images', 'size_64')
  assert f'not built in {tmp_path}' in str(e.value)


@pytest.mark.parametrize(
  'name, config, message',
  [
    ('casme2', 'size_32_apex_max_motion', '--apex applies to smic, megc2019 only'),
    ('smic', 'size_32_missing_apex_middle', '--missing_apex applies to casme2, samm, megc2019'),
    ('samm', 'size64', 'a config is size_N'),
    ('samm', 'size_4', 'a config is size_N (N >= 8)'),
    ('samm', 'size_64_apex_middle', 'a config is size_N'),
  ],
)
def test_a_config_no_build_makes_is_named_so(tmp_path, name, config, message):
  with pytest.raises(load.DatasetNotBuiltError, match='Predefined: size_224') as e:
    load.dataset_path(name, tmp_path, config=config)
  assert f'{name} has no config {config!r}' in str(e.value) and message in str(e.value)
  assert 'hfa_jax build' not in str(e.value)  # no command the build would refuse


def test_the_synthetic_hint_names_the_folder_the_build_reads(tmp_path):
  with pytest.raises(load.DatasetNotBuiltError) as e:
    load.dataset_path('samm', tmp_path)
  assert '--database samm --out OUT` writes a synthetic one in DIR = OUT/samm' in str(e.value)
  with pytest.raises(load.DatasetNotBuiltError) as e:
    load.dataset_path('megc2019', tmp_path)
  assert '--database all --out DIR` writes a synthetic one' in str(e.value)
