"""Preprocessing for micro-expression clips: frames, apex, face crop, TV-L1 flow, strain.

No TensorFlow, no JAX: only OpenCV (contrib build) and NumPy.

    from hfa_jax import preprocess
    flow = preprocess.flow_image(onset_frame, apex_frame, size=224)  # (224, 224, 3) float32

Channels: u, v in [-1, 1] (divided by the sample's largest flow magnitude), optical strain in
[0, 1] (divided by its maximum); see flow.py for every step and the TV-L1 parameters.
Builders call `flow_for_clip` in worker processes (picklable, file paths in, dict out).
STSTNet-format flow-image PNGs (RGB = u, v, strain, 0..255): `read_flow_png`, `png_flow`,
`encode_png` (flow_png.py).
"""

from hfa_jax.preprocess.apex import APEX_STRATEGIES, motion_scores, pick_apex
from hfa_jax.preprocess.errors import PreprocessError
from hfa_jax.preprocess.face import crop, detect_face_box
from hfa_jax.preprocess.flow import (
  MIN_MOTION,
  MIN_STRAIN,
  NORMALISATION,
  OPENCV_DEFAULTS,
  TVL1,
  WORK_SIDE,
  flow_for_clip,
  flow_image,
  init_worker,
  normalise,
  optical_strain,
  tvl1_flow,
)
from hfa_jax.preprocess.flow_png import PNG_SIDE, encode_png, png_flow, read_flow_png
from hfa_jax.preprocess.frames import (
  IMAGE_SUFFIXES,
  Frame,
  find_frame,
  frame_number,
  is_frame_file,
  list_frames,
  read_gray,
  to_gray,
)

__all__ = [
  'APEX_STRATEGIES',
  'IMAGE_SUFFIXES',
  'MIN_MOTION',
  'MIN_STRAIN',
  'NORMALISATION',
  'OPENCV_DEFAULTS',
  'PNG_SIDE',
  'TVL1',
  'WORK_SIDE',
  'Frame',
  'PreprocessError',
  'crop',
  'detect_face_box',
  'encode_png',
  'find_frame',
  'flow_for_clip',
  'flow_image',
  'frame_number',
  'init_worker',
  'is_frame_file',
  'list_frames',
  'motion_scores',
  'normalise',
  'optical_strain',
  'pick_apex',
  'png_flow',
  'read_flow_png',
  'read_gray',
  'to_gray',
  'tvl1_flow',
]
