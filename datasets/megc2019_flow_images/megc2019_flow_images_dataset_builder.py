"""MEGC2019 flow images in the STSTNet/HTNet format (CSV + one 28x28 RGB PNG a sample).

The PNG channels (u, v, optical strain, each scaled to 0..255 by its producer) are stored as
float32 in [0, 1]; the native side is 28 (`size_28`, default), other sides resize.
`emotion` and `composite_label` are both the CSV label (0 negative, 1 positive, 2 surprise).

Build: `python -m datasets.build megc2019_flow_images --manual_dir DIR` (from the repository
root), or `tfds build datasets/megc2019_flow_images --manual_dir DIR` where TensorFlow is
installed.
"""

from datasets.common import builder, labels
from datasets.megc2019_flow_images import rules

EMOTIONS = labels.COMPOSITE_CLASSES


class Builder(builder.FlowBuilder):
  """Precomputed MEGC2019 flow images; composite_label is the 3-class label."""

  EMOTIONS = EMOTIONS
  SUPERVISED_LABEL = 'composite_label'
  LAYOUT = rules.LAYOUT
  BUILDER_CONFIGS = builder.size_configs(sizes=(28, 32, 64, 224))
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    'Pass the folder holding the STSTNet/HTNet flow-image CSV and its PNG files as '
    '--manual_dir. Layout:\n' + rules.LAYOUT
  )

  def _find_samples(self, manual_dir):
    return rules.find_samples(manual_dir)
