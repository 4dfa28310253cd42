"""Settings declared once: a dataclass field says its default, help, choices and bounds.

    @dataclasses.dataclass(frozen=True)
    class Config:
      epochs: int = setting(20, 'epochs per fold', minimum=1)
      schedule: str = setting('cosine', 'learning-rate schedule', choices=('cosine', 'constant'))

`check(config)` validates every field against its declaration (ValueError naming the
field); `add_flags(parser, Config)` makes one command-line option per field, parsed by
the field's type; `field_help(Config)` lists them. `hfa_jax.loso.LosoConfig` (training)
and `experiments.loso.Experiment` (data and outputs) are declared this way, and the
command line, the config files (experiments/configs/*.py), the saved run record and the
Python API all derive from these declarations.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any


def setting(
  default: Any,
  help: str,
  *,
  choices: tuple | None = None,
  minimum: float | None = None,
  maximum: float | None = None,
  above: float | None = None,
  below: float | None = None,
  flag: str | None = None,
) -> Any:
  """A declared field: `minimum`/`maximum` are inclusive bounds, `above`/`below` strict;
  `flag` a short command-line name (e.g. 'lr' for learning_rate)."""
  return dataclasses.field(
    default=default,
    metadata=dict(
      help=help,
      choices=choices,
      minimum=minimum,
      maximum=maximum,
      above=above,
      below=below,
      flag=flag,
    ),
  )


def _base_type(cls, name: str):
  """(python type, optional) of field `name`: int | float | str | bool | list."""
  hint = typing.get_type_hints(cls)[name]
  args = [a for a in typing.get_args(hint) if a is not type(None)]
  optional = type(None) in typing.get_args(hint)
  base = args[0] if args else hint
  base = typing.get_origin(base) or base
  return base, optional


def check(obj) -> None:
  """Raises ValueError naming the first field whose value breaks its declaration."""
  for f in dataclasses.fields(obj):
    value, meta = getattr(obj, f.name), f.metadata
    if not meta:
      continue
    base, optional = _base_type(type(obj), f.name)
    if value is None:
      if optional:
        continue
      raise ValueError(f'{f.name} must be set')
    ok = (
      (isinstance(value, base) and not (base is int and isinstance(value, bool)))
      or (base is float and isinstance(value, int) and not isinstance(value, bool))
      or (base is list and isinstance(value, tuple))
    )
    if not ok:
      raise ValueError(f'{f.name} must be {base.__name__}, got {value!r}')
    if meta['choices'] is not None and value not in meta['choices']:
      raise ValueError(
        f"{f.name} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}"
      )
    bounds = (
      ('minimum', lambda v, b: v >= b, '>='),
      ('maximum', lambda v, b: v <= b, '<='),
      ('above', lambda v, b: v > b, '>'),
      ('below', lambda v, b: v < b, '<'),
    )
    for key, holds, sign in bounds:
      if meta[key] is not None and not holds(value, meta[key]):
        raise ValueError(f'{f.name} must be {sign} {meta[key]}, got {value!r}')


def parse(cls, name: str, text: str):
  """The value of field `name` from its command-line text (ValueError if unreadable)."""
  base, optional = _base_type(cls, name)
  text = text.strip()
  if optional and (text.lower() == 'none' or (text == '' and base is not list)):
    return None
  if base is bool:
    value = {'true': True, '1': True, 'yes': True, 'false': False, '0': False, 'no': False}.get(
      text.lower()
    )
    if value is None:
      raise ValueError(f'{text!r} is not true/false')
    return value
  if base is list:
    return [s for s in (t.strip() for t in text.split(',')) if s]
  if base is int:
    try:
      return int(text)
    except ValueError:
      raise ValueError(f'{text!r} is not an integer') from None
  if base is float:
    try:
      return float(text)
    except ValueError:
      raise ValueError(f'{text!r} is not a number') from None
  return text


def add_flags(
  parser: argparse.ArgumentParser, cls, title: str, defaults: dict | None = None, aliases: str = ''
) -> None:
  """One option per declared field of `cls` (`--name`, and `--flag` where declared).

  Options that are not given stay absent from the parsed namespace, so that
  defaults < config file < command line can be layered afterwards. The help shows
  `defaults` (e.g. a recipe's) where given, else the declared default. With `aliases`,
  each field is also `--{aliases}name` (e.g. '--config.epochs'), not listed in the help.
  """
  group = parser.add_argument_group(title)
  defaults = defaults or {}
  for f in dataclasses.fields(cls):
    if not f.metadata:
      continue
    meta = f.metadata

    def convert(text, name=f.name):
      try:
        return parse(cls, name, text)
      except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None

    names = [f'--{f.name}'] + ([f"--{meta['flag']}"] if meta['flag'] else [])
    default = defaults.get(f.name, f.default if f.default is not dataclasses.MISSING else None)
    extra = f" ({'|'.join(map(str, meta['choices']))})" if meta['choices'] else ''
    option = dict(dest=f.name, type=convert, default=argparse.SUPPRESS)
    metavar = f.name.upper() if not meta['choices'] else 'CHOICE'
    group.add_argument(
      *names, **option, metavar=metavar, help=f"{meta['help']}{extra} [default {default!r}]"
    )
    if aliases:
      group.add_argument(f'--{aliases}{f.name}', **option, help=argparse.SUPPRESS)


def names(cls) -> list[str]:
  """The declared field names of `cls`."""
  return [f.name for f in dataclasses.fields(cls) if f.metadata]


def defaults(cls) -> dict:
  return {f.name: f.default for f in dataclasses.fields(cls) if f.metadata}
