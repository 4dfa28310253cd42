"""Imports point down the layers (docs/architecture.md): the library never imports the
datasets or the commands, the datasets never import the commands, and inside the library the
networks and array operations know nothing of training, the single-model pieces nothing of
the LOSO trainer. Read from the source (ast), so that a lazy import inside a function counts
too."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (modules under this prefix, may not import modules under any of these prefixes)
RULES = [
  ('hfa_jax', ('datasets', 'experiments', 'tests')),
  ('datasets', ('experiments', 'tests')),
  ('experiments', ('tests',)),
  (
    'hfa_jax.models',
    ('hfa_jax.train', 'hfa_jax.loso', 'hfa_jax.report', 'hfa_jax.trained', 'hfa_jax.predict'),
  ),
  ('hfa_jax.ops', ('hfa_jax.models', 'hfa_jax.train', 'hfa_jax.loso')),
  ('hfa_jax.kernels', ('hfa_jax.models', 'hfa_jax.ops', 'hfa_jax.train', 'hfa_jax.loso')),
  ('hfa_jax.augment', ('hfa_jax.train', 'hfa_jax.loso')),
  ('hfa_jax.evaluation', ('hfa_jax.train', 'hfa_jax.loso')),
  ('hfa_jax.optimiser', ('hfa_jax.train', 'hfa_jax.loso')),
  ('hfa_jax.train', ('hfa_jax.loso',)),
  ('hfa_jax.predict', ('hfa_jax.loso',)),
  ('hfa_jax.trained', ('hfa_jax.loso',)),
  ('hfa_jax.preprocess', ('hfa_jax.models', 'hfa_jax.train', 'hfa_jax.loso')),
]


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports(path: pathlib.Path) -> set[str]:
  """Every module `path` imports, absolute (relative imports resolved)."""
  package = module_name(path).rsplit('.', 1)[0] if path.name != '__init__.py' else None
  package = package or module_name(path)
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      out |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        base = '.'.join(package.split('.')[: len(package.split('.')) - node.level + 1] + [base])
      out |= {base.strip('.')} | {f'{base.strip(".")}.{a.name}' for a in node.names}
  return out


def sources():
  for top in ('hfa_jax', 'datasets', 'experiments'):
    yield from sorted((ROOT / top).rglob('*.py'))


def under(name: str, prefix: str) -> bool:
  return name == prefix or name.startswith(prefix + '.')


@pytest.mark.parametrize('path', list(sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_up(path):
  name = module_name(path)
  bad = [
    (imported, banned)
    for prefix, banned_prefixes in RULES
    if under(name, prefix)
    for imported in imports(path)
    for banned in banned_prefixes
    if under(imported, banned)
  ]
  assert not bad, f'{name} imports upwards: {bad}'


def test_the_rules_catch_an_upward_import(tmp_path, monkeypatch):
  """A module of the networks that imports the trainer is caught."""
  fake = ROOT / 'hfa_jax' / 'models' / 'x.py'
  monkeypatch.setattr(pathlib.Path, 'read_text', lambda self: 'from hfa_jax.loso import run\n')
  assert 'hfa_jax.loso.run' in imports(fake)
  with pytest.raises(AssertionError, match='imports upwards'):
    test_no_import_runs_up(fake)
