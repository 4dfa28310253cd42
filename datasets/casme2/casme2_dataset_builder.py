"""CASME II (Yan et al. 2014): one example per annotated micro-expression clip.

Build: `python -m datasets.build casme2 --manual_dir DIR` (from the repository root), or
`tfds build datasets/casme2 --manual_dir DIR` (after `pip install -e ".[tfds-cli]"`).
"""

from datasets.casme2 import rules
from datasets.common import builder
from datasets.megc2019 import rules as megc2019

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
    config = self.builder_config
    found, problems, source = rules.find_samples(
      manual_dir, apex=config.apex, missing_apex=config.missing_apex
    )
    megc2019.label(found)  # composite_label: the class in the MEGC2019 list, -1 if not listed
    return found, problems, source
