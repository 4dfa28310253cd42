"""SMIC-HS (Li et al. 2013): one example per micro-expression clip of the high-speed camera.

SMIC has no annotation file: onset = first frame, offset = last frame, the label is the
folder name, and the apex is chosen by the config's strategy ('middle' frame by default,
'max_motion' in the `size_N_apex_max_motion` configs).

Build: `python -m datasets.build smic --manual_dir DIR [--apex max_motion]` (from the
repository root), or `tfds build datasets/smic --manual_dir DIR` (after
`pip install -e ".[tfds-cli]"`).
"""

from datasets.common import builder
from datasets.megc2019 import rules as megc2019
from datasets.smic import rules

EMOTIONS = rules.EMOTIONS


class Builder(builder.FlowBuilder):
  """SMIC-HS flow images (u, v, optical strain) from the first frame to the apex."""

  EMOTIONS = EMOTIONS
  LAYOUT = rules.LAYOUT
  HOMEPAGE = 'https://www.oulu.fi/en/university/faculties-and-units/faculty-information-technology-and-electrical-engineering/center-machine-vision-and-signal-analysis'
  BUILDER_CONFIGS = builder.size_configs() + builder.size_configs(apex='max_motion')
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    'Request SMIC from its owners (University of Oulu), unzip it and pass the folder as '
    '--manual_dir (SMIC_all_raw or SMIC_all_cropped, or its HS folder; VIS and NIR are '
    'ignored; with both releases present the cropped one is used). Layout:\n' + rules.LAYOUT
  )

  def _find_samples(self, manual_dir):
    config = self.builder_config
    found, problems, source = rules.find_samples(
      manual_dir, apex=config.apex, missing_apex=config.missing_apex
    )
    megc2019.label(found)  # composite_label: the class in the MEGC2019 list, -1 if not listed
    return found, problems, source
