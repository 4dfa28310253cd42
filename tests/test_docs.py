"""The README and docs/ state the present, each figure once with where it comes from, and
agree with the code: a check a reviewer can run (`python -m pytest tests/test_docs.py`)."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
DOCS = [README, *sorted((ROOT / 'docs').glob('*.md'))]


@pytest.mark.parametrize('path', DOCS, ids=lambda p: p.name)
def test_no_history_issue_numbers_or_sessions(path):
  text = path.read_text()
  assert not re.search(r'\bissue \d+', text, re.I), 'an issue number'
  assert not re.search(r'^#+ .*\bhistory\b', text, re.I | re.M), 'a history section'
  dev = r"\b(this project's|the|these|earlier|later|first|second|third) sessions?\b|session's"
  assert not re.search(dev, text, re.I), 'words about how the project is developed (its sessions)'
  assert 'the latest run' not in text and "this project's machines" not in text


def test_every_result_row_says_where_it_comes_from():
  """Each row of the README's results tables with a UF1 figure names a date and a commit."""
  rows = [l for l in README.read_text().splitlines() if l.startswith('|') and '0.7' in l]
  assert len(rows) >= 5
  for row in rows:
    assert re.search(r'2026-\d\d-\d\d', row) and re.search(r'\b[0-9a-f]{7}\b', row), row


def test_one_figure_per_thing():
  text = README.read_text()
  assert '0.7883' not in text  # the dev part's single-seed figure is 0.7817 (its latest run)
  assert text.count('| HFA-Net, the recipe | development part') == 1
  full = next(
    l for l in text.splitlines() if l.startswith('| HFA-Net, the recipe | full composite')
  )
  assert '0.7193' in full and '43274a9' in full and 'DESIGN.md' in full and 'AMD EPYC' in full
  assert '0.720 ' not in text and '0.722 ' not in text


def test_disk_figures_agree_with_the_code():
  """86 MB a kept HFA-Net fold model, in state/models/, everywhere it is said."""
  import dataclasses

  from hfa_jax.loso.config import LosoConfig

  field = next(f for f in dataclasses.fields(LosoConfig) if f.name == 'keep_models')
  said = field.metadata['help']
  for text in (README.read_text(), (ROOT / 'hfa_jax' / 'loso' / 'keep.py').read_text(), said):
    assert '97 MB' not in text
  assert "state/models/ (HFA-Net: 86 MB a fold)" in said
  assert '86 MB a fold' in README.read_text()


def test_the_readmes_commands_are_commands():
  """Each `hfa_jax COMMAND` in the README's code blocks is one; none is `python -m` of the
  checkout's packages, which runs only in the clone's root."""
  from hfa_jax.cli import COMMANDS

  blocks = re.findall(r'```bash\n(.*?)```', README.read_text(), re.S)
  lines = [l for b in blocks for l in b.splitlines()]
  used = {m for l in lines for m in re.findall(r'\bhfa_jax (\w+)', l)}
  assert used and used <= set(COMMANDS), used - set(COMMANDS)
  assert not [l for l in lines if re.search(r'python -m (experiments|datasets)\.', l)]
