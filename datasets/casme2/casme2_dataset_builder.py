"""CASME II (Yan et al. 2014): one example per annotated micro-expression clip.

Build: `python -m datasets.build casme2 --manual_dir DIR` (from the repository root), or
`tfds build datasets/casme2 --manual_dir DIR` (after `pip install -e ".[tfds-cli]"`).
"""

from datasets.casme2 import rules
from datasets.common import builder

EMOTIONS = rules.EMOTIONS


class Builder(builder.FlowBuilder):
  """CASME II flow images (u, v, optical strain) from onset to apex."""

  EMOTIONS = EMOTIONS
  LAYOUT = rules.LAYOUT
  HOMEPAGE = 'http://casme.psych.ac.cn/casme/e2'
  BUILDER_CONFIGS = builder.size_configs() + builder.size_configs(missing_apex='middle')
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    'Request CASME II from its owners (http://casme.psych.ac.cn/casme/e2), unzip it and '
    'pass the folder as --manual_dir. The raw (CASME2_RAW_selected) or the cropped '
    '(Cropped, reg_img*.jpg) release both work, also nested after unzipping; with both '
    'present the cropped one is used. Layout:\n' + rules.LAYOUT
  )

  def _find_samples(self, manual_dir):
    return rules.find_samples(manual_dir, self.builder_config.missing_apex)
