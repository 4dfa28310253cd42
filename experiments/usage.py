"""What the commands say when an option is wrong: one error line, and where the options are
listed; the option types the commands share."""

from __future__ import annotations

import argparse


class UsageError(Exception):
  """A bad option or setting; the message says which and why."""


class Parser(argparse.ArgumentParser):
  """argparse, with errors in two lines: what is wrong, and where the options are listed."""

  def error(self, message: str):
    self.exit(2, f'{self.prog}: error: {message}\n({self.prog} --help lists every option)\n')


def parse_ints(text: str) -> list[int]:
  """'32,64,224' -> [32, 64, 224] (an argparse type; empty items are skipped)."""
  try:
    return [int(t) for t in text.split(',') if t.strip()]
  except ValueError:
    raise argparse.ArgumentTypeError(f'{text!r}: expected comma-separated whole numbers') from None
