"""What the commands say when an option is wrong: one error line, and where the options are
listed; the option types the commands share."""

from __future__ import annotations

import argparse
import difflib


class UsageError(Exception):
  """A bad option or setting; the message says which and why."""


class Parser(argparse.ArgumentParser):
  """argparse, with errors in two lines: what is wrong (with the nearest option's name for
  one it does not know: '--epoch 2', did you mean --epochs?), and where the options are
  listed."""

  def error(self, message: str):
    self.exit(
      2,
      f'{self.prog}: error: {message}{self._nearest(message)}\n'
      f'({self.prog} --help lists every option)\n',
    )

  def _nearest(self, message: str) -> str:
    """' (did you mean --epochs?)' for the first unknown option of `message` near a known one."""
    head = 'unrecognized arguments: '
    if not message.startswith(head):
      return ''
    for word in message[len(head) :].split():
      near = nearest_option(word, self._option_string_actions) if word.startswith('--') else None
      if near:
        return f' (did you mean {near}?)'
    return ''


def nearest_option(word: str, known) -> str | None:
  """The option among `known` whose name is nearest `word` ('--epoch' -> '--epochs'), its
  plain form before its '--config.' one; None where none is near."""

  def bare(option: str) -> str:  # '--config.epochs=5' -> 'epochs'
    return option.split('=')[0].removeprefix('--').removeprefix('config.')

  names = {}
  for option in sorted(o for o in known if o.startswith('--')):
    if bare(option) not in names or not option.startswith('--config.'):
      names[bare(option)] = option
  near = difflib.get_close_matches(bare(word), list(names), n=1, cutoff=0.75)
  return names[near[0]] if near else None


def parse_ints(text: str) -> list[int]:
  """'32,64,224' -> [32, 64, 224] (an argparse type; empty items are skipped)."""
  try:
    return [int(t) for t in text.split(',') if t.strip()]
  except ValueError:
    raise argparse.ArgumentTypeError(f'{text!r}: expected comma-separated whole numbers') from None
