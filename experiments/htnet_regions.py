"""Measures the four fixed region centres of the HTNet baseline (hfa_jax.models.htnet.REGIONS)
on the development flow images; prints them. Run once; only the printed numbers are kept.

    python -m datasets.build megc2019_flow_images --manual_dir DIR --data_dir /tmp/tfds
    python -m experiments.htnet_regions --data_dir /tmp/tfds

HTNet's script (wangzhifengharrison/HTNet, main_HTNet.py) cuts four 14x14 windows out of each
28x28 flow image around MTCNN landmarks of that sample's apex frame and tiles them into
28x28. The flow images come without landmarks, so the baseline cuts at fixed centres,
measured here, from the data only (DIR: the CASME II and SMIC parts; SAMM stays unseen):

1. the mean optical-strain map: channel 3 (strain, scaled to 0..1) averaged over all samples;
2. in each 14x14 quadrant of that map (upper-left, lower-left, upper-right, lower-right: the
   eyes and the mouth corners of a face), the centroid of the strain above the whole map's
   median (weights max(mean - median, 0));
3. the centre c of a window rows c-7..c+6 (the original slices [c-7:c+7]) whose middle,
   c - 0.5, lies nearest the centroid: floor(centroid) + 1, clamped to 7..21 as the original
   clamps its landmarks, which keeps the window inside the image.

It prints the pooled centres (REGIONS) and, to show how much they vary, each database's.
"""

import argparse

import numpy as np

from datasets.load import load_arrays

QUADRANTS = ('upper-left', 'lower-left', 'upper-right', 'lower-right')  # REGIONS' order
CORNERS = {
  'upper-left': (0, 0),
  'lower-left': (14, 0),
  'upper-right': (0, 14),
  'lower-right': (14, 14),
}


def mean_strain(flow: np.ndarray) -> np.ndarray:
  """flow (N, 28, 28, 3) in [-1, 1] (load_arrays) -> the mean strain map (28, 28) in 0..1."""
  return ((flow[..., 2] + 1) / 2).mean(0)


def centres(strain: np.ndarray) -> dict[str, tuple[float, float, int, int]]:
  """Quadrant -> (centroid row, centroid col, centre row, centre col) of the strain map."""
  excess = np.maximum(strain - np.median(strain), 0)
  rows, cols = np.mgrid[:28, :28]
  out = {}
  for name in QUADRANTS:
    r0, c0 = CORNERS[name]
    part = (slice(r0, r0 + 14), slice(c0, c0 + 14))
    w = excess[part]
    r, c = (w * rows[part]).sum() / w.sum(), (w * cols[part]).sum() / w.sum()
    cr, cc = (int(np.clip(np.floor(v) + 1, 7, 21)) for v in (r, c))
    out[name] = (float(r), float(c), cr, cc)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', required=True, help='where megc2019_flow_images is built')
  parser.add_argument('--dataset', default='megc2019_flow_images')
  args = parser.parse_args(argv)
  data = load_arrays(args.dataset, data_dir=args.data_dir)
  flow, database = data['flow'], data['database']
  if flow.shape[1:] != (28, 28, 3):
    raise SystemExit(f'expected 28x28 flow images, got {flow.shape[1:]}')
  if 'samm' in set(database):
    raise SystemExit('the data holds SAMM samples: measure on the development part only')
  groups = [('pooled', flow)] + [(db, flow[database == db]) for db in sorted(set(database))]
  for name, part in groups:
    print(f'{name} ({len(part)} samples): centroid (row, col) -> centre (row, col)')
    for quadrant, (r, c, cr, cc) in centres(mean_strain(part)).items():
      print(f'  {quadrant:12s} ({r:5.2f}, {c:5.2f}) -> ({cr}, {cc})')
  pooled = centres(mean_strain(flow))
  print('REGIONS =', tuple((v[2], v[3]) for v in pooled.values()))


if __name__ == '__main__':
  main()
