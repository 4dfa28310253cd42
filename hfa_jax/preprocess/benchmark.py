"""Flow-extraction throughput, in samples per second (a benchmark, not a test).

    python -m hfa_jax.preprocess.benchmark [--samples 16] [--sizes 224 28] [--workers 1 N]

Writes synthetic 640x480 grayscale JPEG pairs (a textured image and a locally warped copy,
CASME II's raw frame size) to a temporary folder, then times `flow_for_clip` on them (read,
resize to the working grid, TV-L1, strain, resize, normalise) in a process pool, the way the
builders run it. Default workers: 1 and all cores.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from hfa_jax.preprocess.flow import TVL1, WORK_SIDE, flow_for_clip, init_worker


def make_pairs(folder: Path, n: int, width: int = 640, height: int = 480) -> list[tuple[str, str]]:
  """n (onset, apex) JPEG pairs: smoothed noise, the apex locally displaced by ~2 px."""
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
  pairs = []
  for i in range(n):
    base = cv2.GaussianBlur(rng.random((height, width), np.float32) * 255, (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)
    bump = np.exp(-((xx - width / 2) ** 2 + (yy - height / 3) ** 2) / (2 * 40.0**2))
    apex = cv2.remap(base, xx, yy - 2.0 * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    onset_path, apex_path = folder / f'{i}_onset.jpg', folder / f'{i}_apex.jpg'
    cv2.imwrite(str(onset_path), base.astype(np.uint8))
    cv2.imwrite(str(apex_path), apex.astype(np.uint8))
    pairs.append((str(onset_path), str(apex_path)))
  return pairs


def _one(pair: tuple[str, str], size: int, work_side: int) -> tuple:
  return flow_for_clip(pair[0], pair[1], size=size, work_side=work_side, tvl1=TVL1())['flow'].shape


def throughput(pairs, size: int, workers: int, work_side: int = WORK_SIDE) -> float:
  """Samples per second of flow_for_clip over `pairs` with a pool of `workers` processes."""
  job = functools.partial(_one, size=size, work_side=work_side)
  with multiprocessing.get_context('spawn').Pool(workers, initializer=init_worker) as pool:
    pool.map(job, pairs[:workers])  # warm up: imports, first TV-L1 call
    start = time.perf_counter()
    shapes = pool.map(job, pairs, chunksize=1)
    elapsed = time.perf_counter() - start
  assert all(shape == (size, size, 3) for shape in shapes)
  return len(pairs) / elapsed


def main(argv=None) -> None:
  cores = os.cpu_count() or 1
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--samples', type=int, default=16, help='samples per measurement')
  parser.add_argument('--sizes', type=int, nargs='+', default=[224, 28])
  parser.add_argument('--workers', type=int, nargs='+', default=sorted({1, cores}))
  parser.add_argument(
    '--work_side', type=int, default=WORK_SIDE, help='side of the TV-L1 grid (default %(default)s)'
  )
  args = parser.parse_args(argv)
  print(
    f'flow_for_clip on {args.samples} pairs of 640x480 JPEG frames, TV-L1 on a '
    f'{args.work_side}x{args.work_side} grid, {cores} cores, OpenCV {cv2.__version__}'
  )
  with tempfile.TemporaryDirectory() as tmp:
    pairs = make_pairs(Path(tmp), args.samples)
    for size in args.sizes:
      for workers in args.workers:
        rate = throughput(pairs, size, workers, args.work_side)
        print(f'size {size:4d}  workers {workers:2d}  {rate:7.2f} samples/s')


if __name__ == '__main__':
  main()
