"""The slow side of predict (hfa_jax.predict): flows computed in worker processes that end with
the command, and videos decoded to frames.

A Ctrl-C or SIGTERM reaches the command while its workers compute: run_in_workers ends them
(none is left behind) and lets the KeyboardInterrupt go on; the workers ignore Ctrl-C
themselves (the terminal sends it to every process of the group) and end when the command's
process is gone.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

import cv2


class InputError(ValueError):
  """One input that cannot be predicted; the message says why and what to give instead."""


def run_in_workers(
  work: Callable, texts: list[str], opts, workers: int, pooled: Sequence[int], progress: bool
) -> list:
  """[work(text, opts) for text in texts], those at the indices `pooled` in `workers` spawned
  processes (when more than one); `progress`: a bar on stderr."""
  from tqdm.auto import tqdm

  bar = tqdm(total=len(texts), unit='input', desc='flows', disable=not progress, file=sys.stderr)
  pooled = list(pooled)
  if workers <= 1 or len(pooled) <= 1:
    out = []
    for text in texts:
      out.append(work(text, opts))
      bar.update()
    bar.close()
    return out
  results: list = [None] * len(texts)
  pool = concurrent.futures.ProcessPoolExecutor(
    min(workers, len(pooled)),
    mp_context=multiprocessing.get_context('spawn'),
    initializer=_init_worker,
    initargs=(os.getpid(),),
  )
  try:
    with _workers_ignore_ctrl_c():  # the workers start as the jobs are submitted
      futures = {pool.submit(work, texts[i], opts): i for i in pooled}
    for i, text in enumerate(texts):
      if i not in pooled:
        results[i] = work(text, opts)
        bar.update()
    for future in concurrent.futures.as_completed(futures):
      results[futures[future]] = future.result()
      bar.update()
  except BaseException:
    _end(pool)
    raise
  finally:
    bar.close()
  pool.shutdown()
  return results


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
  """Processes started in the block ignore Ctrl-C from their first instruction (an ignored
  signal stays ignored across exec, and Python then installs no KeyboardInterrupt of its own),
  so that a Ctrl-C while they start gives no traceback of theirs."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)


def _end(pool: concurrent.futures.ProcessPoolExecutor):
  """Ends the pool's workers now (a stopped command leaves none running)."""
  processes = list((pool._processes or {}).values())  # noqa: SLF001 (no public handle)
  pool.shutdown(wait=False, cancel_futures=True)
  for process in processes:
    process.terminate()
  for process in processes:
    process.join(timeout=5)


def _init_worker(parent: int):
  """A flow worker: one OpenCV thread, Ctrl-C left to the command, and an end of its own
  when the command's process is gone (killed with SIGKILL, say)."""
  import time

  from hfa_jax.preprocess import init_worker

  init_worker()
  signal.signal(signal.SIGINT, signal.SIG_IGN)

  def watch():
    while os.getppid() == parent:
      time.sleep(0.5)
    os._exit(1)

  threading.Thread(target=watch, daemon=True, name='parent-watch').start()


def write_video_frames(video: str, folder: Path) -> int:
  """The video's frames as folder/000000.png, 000001.png, ... (lossless); their count."""
  capture = cv2.VideoCapture(video)
  count = 0
  try:
    while capture.isOpened():
      ok, frame = capture.read()
      if not ok:
        break
      cv2.imwrite(str(folder / f'{count:06d}.png'), frame)
      count += 1
  finally:
    capture.release()
  if count == 0:
    raise InputError(
      'cannot read the video: OpenCV decodes no frame of it (a damaged file, or a codec this '
      "OpenCV lacks); give its frames as a folder, e.g. made with `ffmpeg -i VIDEO %06d.png`"
    )
  return count
