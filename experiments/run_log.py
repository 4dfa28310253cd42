"""A run's wall clock and its plain progress log (the command's side of a LOSO run)."""

from __future__ import annotations

import json
import pathlib
import time

import numpy as np


class WallClock:
  """The wall time of a run over all its parts (a resumed run adds to it), kept in
  OUT/wall_time.json and updated after every epoch, so that a kill loses at most one."""

  def __init__(self, out: pathlib.Path):
    self.path = out / 'wall_time.json'
    self.parts = json.loads(self.path.read_text())['parts'] if self.path.is_file() else []
    self.start = time.time()
    self.parts.append(0.0)

  def tick(self, *_):
    self.parts[-1] = round(time.time() - self.start, 1)
    tmp = self.path.with_name(self.path.name + '.tmp')
    tmp.write_text(json.dumps(dict(parts=self.parts)))
    tmp.replace(self.path)

  @property
  def total(self) -> float:
    return round(sum(self.parts), 1)


class EpochLog:
  """Plain progress lines for logs (--no_progress): that the first epoch compiles, then
  one line per epoch at most every `every` seconds, and the last epoch of each group."""

  def __init__(self, epochs: int, every: float = 60.0):
    self.epochs, self.every, self.last = epochs, every, None
    print(
      'the first epoch compiles the training program (a minute or more on a CPU; '
      'cached for later runs)',
      flush=True,
    )

  def __call__(self, group: int, epoch: int, m: dict):
    now = time.monotonic()
    if self.last is not None and now - self.last < self.every and epoch + 1 < self.epochs:
      return
    self.last = now
    total = f'/{self.epochs}' if m['phase'] == 'train' else ''
    print(
      f"models group {group + 1}, {m['phase']} epoch {epoch + 1}{total}: "
      f"train loss {np.mean(m['loss']):.4f}, accuracy {np.mean(m['accuracy']):.3f} "
      f"({m['seconds']:.1f} s/epoch)",
      flush=True,
    )
