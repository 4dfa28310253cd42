"""SAMM (Davison et al. 2018): one example per annotated micro-movement clip.

Build: `python -m datasets.build samm --manual_dir DIR` (from the repository root), or
`tfds build datasets/samm --manual_dir DIR` (after `pip install -e ".[tfds-cli]"`).
"""

from datasets.samm import rules
from datasets.common import builder
from datasets.megc2019 import rules as megc2019

EMOTIONS = rules.EMOTIONS


class Builder(builder.FlowBuilder):
  """SAMM flow images (u, v, optical strain) from onset to apex."""

  EMOTIONS = EMOTIONS
  LAYOUT = rules.LAYOUT
  HOMEPAGE = 'http://www2.docm.mmu.ac.uk/STAFF/m.yap/dataset.php'
  BUILDER_CONFIGS = builder.size_configs() + builder.size_configs(missing_apex='middle')
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    'Request SAMM from its owners (Manchester Metropolitan University), unzip it and pass '
    'the folder as --manual_dir. Layout:\n' + rules.LAYOUT
  )

  def _find_samples(self, manual_dir):
    config = self.builder_config
    found, problems, source = rules.find_samples(
      manual_dir, apex=config.apex, missing_apex=config.missing_apex
    )
    megc2019.label(found)  # composite_label: the class in the MEGC2019 list, -1 if not listed
    return found, problems, source
