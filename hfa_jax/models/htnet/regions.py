"""HTNet's input stage: four 14x14 facial regions of a 28x28 flow image, tiled into 28x28,
then the original's pixel format (BGR, 0..255).

The original (wangzhifengharrison/HTNet, main_HTNet.py, `whole_face_block_coordinates` and
`crop_optical_flow_block`) cuts each flow image `flow_image[a - 7:a + 7, b - 7:b + 7]` around
five MTCNN landmarks (a, b) of its apex frame (resized to 28x28), each coordinate clamped to
7..21 and truncated to an int; MTCNN gives (x, y) points and the slice takes x as the ROW,
so landmark (x, y) cuts rows x-7..x+6 and columns y-7..y+6. The tile is
[[landmark 0, landmark 1], [landmark 3, landmark 4]] (the nose, landmark 2, is unused); with
the transposed slice these are the upper-left, lower-left, upper-right and lower-right areas
of the face (the script's l_eye, l_lips, r_eye, r_lips). Where MTCNN finds no face the script
uses fixed landmarks, which cut at (row, col) (9, 11), (21, 10), (10, 21), (20, 21):
`ORIGINAL_FALLBACK`.

Here the centres are fixed for every sample (no landmarks come with the flow images):
`REGIONS`, measured once on the development data by experiments/htnet_regions.py.
"""

import jax
import jax.numpy as jnp

# (row, col) centres at 28 px, window rows r-7..r+6 and columns c-7..c+6, in tile order:
# top-left, top-right, bottom-left, bottom-right tile = the face's upper-left, lower-left,
# upper-right, lower-right area (eye, mouth corner, eye, mouth corner).
REGIONS = ((7, 7), (19, 8), (7, 21), (19, 20))
ORIGINAL_FALLBACK = ((9, 11), (21, 10), (10, 21), (20, 21))
NATIVE = 28  # the side the centres are given at


def cut_regions(x: jax.Array, regions=REGIONS) -> jax.Array:
  """x (B, S, S, C), S a multiple of 28 -> (B, S, S, C): the four S/2 windows around
  `regions` (scaled by S/28), tiled [[0, 1], [2, 3]]."""
  side = x.shape[1]
  if x.ndim != 4 or x.shape[2] != side or side % NATIVE:
    raise ValueError(f'HTNet regions: expected (B, S, S, C) with S a multiple of 28, got {x.shape}')
  k = side // NATIVE
  half = 7 * k
  for r, c in regions:
    if not (7 <= r <= 21 and 7 <= c <= 21):
      raise ValueError(f'HTNet region centre {(r, c)} puts its window outside the image')
  tiles = [x[:, k * r - half : k * r + half, k * c - half : k * c + half] for r, c in regions]
  top = jnp.concatenate(tiles[:2], axis=2)
  bottom = jnp.concatenate(tiles[2:], axis=2)
  return jnp.concatenate([top, bottom], axis=1)


def to_pixels(x: jax.Array) -> jax.Array:
  """The project's flow image (u, v, strain in [-1, 1]) -> the original's input: cv2.imread's
  channel order (strain, v, u) and 0..255 values, (x + 1) * 127.5."""
  return (x[..., ::-1] + 1) * 127.5
