"""Compute the flow image of each sample, in parallel worker processes, with a disk cache.

A job is a picklable description of one sample's input; `run` returns its flow (and the apex
frame where a strategy picked it) or the error message. The cache (one .npz per job, keyed by
the input files, their sizes and mtimes, and the preprocessing settings) makes a rerun after an
interruption skip the flows already computed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import multiprocessing
import os
import pathlib
from typing import Iterable, Iterator

import numpy as np

CACHE_VERSION = 2  # 2: grayscale flow-image PNGs are refused


@dataclasses.dataclass(frozen=True)
class Result:
  key: str
  flow: np.ndarray | None = None
  apex_index: int | None = None  # index into the job's frames, when a strategy chose it
  error: str | None = None
  note: str | None = None  # built anyway, but worth telling the user


@dataclasses.dataclass(frozen=True)
class FrameJob:
  """Flow from onset to apex frame files (apex chosen by `apex_strategy` if apex is None)."""

  key: str
  onset: str
  apex: str | None
  size: int
  crop: bool = False
  frames: tuple[str, ...] = ()
  apex_strategy: str | None = None

  def inputs(self) -> tuple[str, ...]:
    return (self.onset, self.apex) if self.apex else self.frames

  def compute(self) -> Result:
    from hfa_jax import preprocess

    out = preprocess.flow_for_clip(
      self.onset,
      self.apex,
      clip_frames=self.frames or None,
      apex_strategy=self.apex_strategy or 'middle',
      size=self.size,
      face_crop=self.crop,
      sample=self.key,
    )
    note = (
      'no face found in the onset frame: the whole frame was used'
      if out['face_found'] is False
      else None
    )
    return Result(self.key, out['flow'], out['apex_index'], note=note)


@dataclasses.dataclass(frozen=True)
class PngJob:
  """A precomputed flow image (RGB PNG: u, v, strain in 0..255) scaled to 0..1, resized."""

  key: str
  path: str
  size: int

  def inputs(self) -> tuple[str, ...]:
    return (self.path,)

  def compute(self) -> Result:
    from hfa_jax import preprocess

    rgb = preprocess.read_flow_png(self.path)
    return Result(self.key, preprocess.png_flow(rgb, self.size))


def _cache_path(job, cache_dir: str) -> pathlib.Path:
  h = hashlib.sha256(repr((CACHE_VERSION, type(job).__name__, dataclasses.astuple(job))).encode())
  for path in job.inputs():
    try:
      st = os.stat(path)
      h.update(f'{path}:{st.st_size}:{st.st_mtime_ns}'.encode())
    except OSError:
      h.update(f'{path}:missing'.encode())
  return pathlib.Path(cache_dir) / f'{h.hexdigest()[:32]}.npz'


def run(job, cache_dir: str | None = None) -> Result:
  """Run one job (in a worker); errors become a Result with `error` set."""
  path = _cache_path(job, cache_dir) if cache_dir else None
  if path is not None and path.exists():
    try:
      with np.load(path) as z:
        apex = int(z['apex_index'])
        note = str(z['note']) or None
        return Result(job.key, z['flow'], None if apex < 0 else apex, note=note)
    except Exception:  # a corrupt cache entry is recomputed
      pass
  try:
    result = job.compute()
  except Exception as e:  # PreprocessError, OpenCV errors, ...: reported by the builder
    return Result(job.key, error=f'{type(e).__name__}: {e}' if not str(e) else str(e))
  if path is not None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f'.{os.getpid()}.tmp.npz')
    np.savez(
      tmp,
      flow=result.flow,
      apex_index=-1 if result.apex_index is None else result.apex_index,
      note=result.note or '',
    )
    os.replace(tmp, path)
  return result


def run_all(jobs: Iterable, workers: int, cache_dir: str | None = None) -> Iterator[Result]:
  """Results as they complete; `workers` processes (1: in this process).

  Closing the iterator (e.g. on stop) cancels the jobs not yet started."""
  jobs = list(jobs)
  if workers <= 1 or len(jobs) <= 1:
    for job in jobs:
      yield run(job, cache_dir)
    return
  context = multiprocessing.get_context('spawn')
  with concurrent.futures.ProcessPoolExecutor(
    workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
  ) as pool:
    futures = [pool.submit(run, job, cache_dir) for job in jobs]
    try:
      for future in concurrent.futures.as_completed(futures):
        yield future.result()
    finally:
      for future in futures:
        future.cancel()


def _init_worker(parent: int) -> None:
  """Set up a flow worker: one OpenCV thread, and exit when the build process dies.

  A killed build (SIGKILL, a closed terminal) cannot stop its pool; its workers would
  wait on the pool's pipe forever. A daemon thread checks every half second that the
  parent is alive and ends the worker otherwise.
  """
  import threading
  import time
  from hfa_jax.preprocess import init_worker

  init_worker()

  def watch():
    while os.getppid() == parent:
      time.sleep(0.5)
    os._exit(1)

  threading.Thread(target=watch, daemon=True, name='parent-watch').start()


def default_workers() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1
