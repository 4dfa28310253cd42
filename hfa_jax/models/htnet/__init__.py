"""HTNet, a hierarchical transformer baseline for micro-expression recognition from flow.

Wang, Zhang, Luo, Sankaranarayana, "HTNet for micro-expression recognition", Neurocomputing
602:128196, 2024 (doi 10.1016/j.neucom.2024.128196; arXiv:2307.14637).
Code: github.com/wangzhifengharrison/HTNet: Model.py (class HTNet, commit 1ea5293; an
adaptation of vit-pytorch's NesT with widths that grow 256 -> 512 -> 1024, a 3x3/2 max-pool
in the aggregation and a LayerNorm of sqrt(var + eps)) and main_HTNet.py (the input and the
training; commits 1ea5293 and 788b88e, the same settings).

Layout (files): regions.py the input stage, transformer.py the transformer layer and the
aggregation block, network.py the module, convert.py `variables_from_torch`.

The published configuration (main_HTNet.py: image_size 28, patch_size 7, dim 256, heads 3,
num_hierarchies 3, block_repeats (2, 2, 10), mlp_mult 4, dropout 0; the module's defaults):
- patch embedding: 7x7 patches of the 28x28 input, one 1x1 conv of their 147 values to
  256 channels: a 4x4 map;
- three levels; level i (0, 1, 2) splits its map into 4x4, 2x2, 1x1 blocks of 1x1
  positions, runs `depths[i]` pre-norm transformer blocks (heads 3, 6, 12 of width
  256 // 3 = 85, 512 // 6 = 85, 1024 // 12 = 85; 1x1-conv feed-forward x4, exact GELU) in
  each block separately after adding a learned position embedding, then (levels 0, 1)
  aggregates: 3x3 conv to twice the width, channel LayerNorm, max-pool 3/2/1 (4x4 -> 2x2
  -> 1x1);
- head: channel LayerNorm (1024), mean over positions, Linear to the classes.
At 28 px each block holds ONE position, so every self-attention is over a single token
(its softmax is 1 and it passes v through `to_out`): as published, the transformer layers
act as per-position MLPs and all mixing between regions comes from the aggregation convs.
Parameters at 28 px, 3 classes: 139,582,982, the original's count (torch, same
configuration; block_repeats (2, 2, 8), the older script's comment, would give 114,429,446).
The paper's text was not available here to compare a count with.

What the authors' input is (main_HTNet.py, `whole_face_block_coordinates`,
`crop_optical_flow_block`, `main`): the published 28x28 flow images
(`datasets/STSNet_whole_norm_u_v_os`, the STSTNet images of the MEGC2019 composite, whole
faces) read with cv2.imread (BGR: strain, v, u; 0..255, not rescaled); around five MTCNN
landmarks of each sample's apex frame, resized to 28x28, four 14x14 windows are cut and
tiled into the network's 28x28 input (regions.py describes the slice, which takes the
landmark's x as the row, and the fixed landmarks used where no face is found).

What was checked: `classify` (the network on the original's input) against the original
Model.py in PyTorch 2.13 on deterministic weights and two 28x28 inputs
(tests/fixtures/make_htnet_fixture.py, tests/test_htnet.py): eval logits agree to 3e-6
(max abs; rtol 1e-4, atol 1e-5 in the test); the parameter count; the region cut, the
fallback slice and the pixel conversion on hand-made images.

Differences from the original, and why:
- Regions: fixed centres for every sample instead of per-sample MTCNN landmarks (no
  landmarks come with the flow images). `REGIONS` (row, col) at 28 px: upper-left (7, 7),
  lower-left (19, 8), upper-right (7, 21), lower-right (19, 20), tiled in the original's
  order [[upper-left, lower-left], [upper-right, lower-right]] (its l_eye, l_lips, r_eye,
  r_lips). Measured once by experiments/htnet_regions.py on the development flow images
  (CASME II 145 + SMIC 164 samples; SAMM unseen): per 14x14 quadrant of the mean strain
  map, the centroid of the strain above the map's median ((6.1, 6.7), (18.5, 7.8),
  (6.0, 20.1), (18.3, 19.2): the eyes and the nasolabial/mouth-corner areas); the window
  rows c-7..c+6 whose middle is nearest, clamped to 7..21 as the original clamps. The
  original's own fallback cuts at (9, 11), (21, 10), (10, 21), (20, 21)
  (`ORIGINAL_FALLBACK`, for comparison; `regions=ORIGINAL_FALLBACK` selects it).
- Input stage inside the module: `original_input` cuts the regions from the project's flow
  image (u, v, strain in [-1, 1], 28 px or a multiple of 28, windows scaled) and, with
  `pixel_input` (default), makes the original's pixels, (x + 1) * 127.5 in BGR order (the
  PNG's values exactly), so `classify` sees what the original saw; `pixel_input=False`
  feeds the tiled [-1, 1] image in the project's channel order.
- Initialisation: weights as PyTorch's defaults (U(+-1/sqrt(fan_in))), position embeddings
  N(0, 1) as the original; biases zero (PyTorch draws them U(+-1/sqrt(fan_in))), as the
  project's other baselines.
- Layout: NHWC; 1x1 convolutions as Linear layers over channels; softmax in float32;
  `dtype` sets the compute dtype (parameters and logits float32).
- The published configuration has no dropout; `dropout` (the original's argument) acts at
  the original's places (attention probabilities, after `to_out`, after the GELU and after
  the second feed-forward conv) in training only.
- Other sides: S a multiple of 28 (patch 7 times 2 ** (levels - 1)); the original's
  image_size fixes its position embeddings' length, here it follows the input at init.

Loading the original's weights (e.g. the authors' per-subject `.pth` files, which were
trained on their own landmark regions): `variables_from_torch(torch.load(path))` gives the
variables of `HTNet()`; `classify` then reproduces the original on its input and
`__call__` runs it on the project's flow images with the fixed regions.
"""

from hfa_jax.models.htnet.convert import variables_from_torch
from hfa_jax.models.htnet.network import HTNet
from hfa_jax.models.htnet.regions import ORIGINAL_FALLBACK, REGIONS, cut_regions, to_pixels

__all__ = [
  'HTNet',
  'ORIGINAL_FALLBACK',
  'REGIONS',
  'cut_regions',
  'to_pixels',
  'variables_from_torch',
]
