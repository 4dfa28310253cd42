"""Files written so that a killed process, or a machine that loses power, leaves the old file
or the new one, never half."""

from __future__ import annotations

import json
import os
import pathlib


def write_text(path, text: str):
  """Writes `text` to `path` atomically (a temporary file beside it, flushed to the disk,
  then a rename)."""
  path = pathlib.Path(path)
  tmp = path.with_name(f'{path.name}.tmp{os.getpid()}')
  with open(tmp, 'w') as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  tmp.replace(path)


def write_json(path, obj, indent: int | None = 1):
  """Writes `obj` as JSON (indented, or compact with indent None), atomically."""
  write_text(path, json.dumps(obj, indent=indent))
