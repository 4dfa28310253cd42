"""MEGC2019 composite (See et al. 2019): 442 samples of CASME II, SAMM and SMIC-HS, 3 classes.

The composite is defined by the explicit list datasets/megc2019/megc2019_cde_samples.csv
(database, subject, sample, label; read by rules.py): only listed samples are built, the label
comes from the list (negative, positive, surprise), the `database` feature says where a sample
comes from.
The manual folder holds the three database copies in any subfolders; each is recognised by
its layout and spreadsheet.

Build: `python -m datasets.build megc2019 --manual_dir DIR` (from the repository root), or
`tfds build datasets/megc2019 --manual_dir DIR` (after `pip install -e ".[tfds-cli]"`).
"""

from datasets.casme2 import rules as casme2
from datasets.common import builder, layout
from datasets.common.labels import COMPOSITE_CLASSES
from datasets.common.samples import Problem
from datasets.megc2019 import rules
from datasets.samm import rules as samm
from datasets.smic import rules as smic

DATABASES = (casme2, samm, smic)
# Native emotions of all three databases (the `emotion` feature); composite_label is the class.
EMOTIONS = tuple(dict.fromkeys(casme2.EMOTIONS + samm.EMOTIONS + smic.EMOTIONS))
# The manual folder holds one copy of each database, in any subfolders.
LAYOUT = (
  '  DIR/ holding one copy of each of CASME II, SAMM and SMIC-HS, in any '
  'subfolders:\n' + '\n'.join(db.LAYOUT for db in DATABASES)
)


class Builder(builder.FlowBuilder):
  """MEGC2019 CDE composite flow images; composite_label is the 3-class label."""

  EMOTIONS = EMOTIONS
  SUPERVISED_LABEL = 'composite_label'
  LAYOUT = LAYOUT
  HOMEPAGE = 'https://facial-micro-expressiongc.github.io/MEGC2019/'
  BUILDER_CONFIGS = (
    builder.size_configs()
    + builder.size_configs(apex='max_motion')
    + builder.size_configs(missing_apex='middle')
  )
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    'Put your copies of CASME II, SAMM and SMIC (each as its owners ship it, see the '
    'casme2, samm and smic datasets) into one folder, in any subfolders, and pass it as '
    '--manual_dir. Layout:\n' + LAYOUT
  )

  def _find_samples(self, manual_dir):
    return composite_samples(manual_dir, self.builder_config.apex, self.builder_config.missing_apex)


def composite_samples(manual_dir, apex='middle', missing_apex='skip', listing=None):
  """The listed samples of the three copies, labelled from the list."""
  listing = listing or rules.composite_list()
  found, problems, sources = [], [], []
  for db in DATABASES:
    try:
      db_samples, db_problems, source = db.find_samples(
        manual_dir, apex=apex, missing_apex=missing_apex
      )
    except layout.ManualDirError as e:
      raise layout.ManualDirError(
        f'The MEGC2019 composite needs all of CASME II, SAMM and SMIC-HS under '
        f'{manual_dir}; for {db.TITLE}: {e}'
      ) from None
    database = db.NAME
    sources.append(f'{database}: {source}')
    wanted = {k for k in listing if k[0] == database}
    seen = set()
    for sample in db_samples:
      if sample.match_key in wanted:
        seen.add(sample.match_key)
        listed = listing[sample.match_key]
        rule = rules.composite_by_rule(database, sample.emotion)
        if rule != listed:
          sample.notes.append(
            f'emotion {sample.emotion!r} in the copy, '
            f'{COMPOSITE_CLASSES[listed]!r} in the MEGC2019 list (used)'
          )
        sample.composite_label = listed
        found.append(sample)
    for problem in db_problems:
      if problem.match_key is None or problem.match_key in wanted:
        seen.add(problem.match_key)
        problems.append(problem)
    missing = ['/'.join(listing.original(k)) for k in sorted(wanted - seen)]
    if missing:
      problems.append(
        Problem(
          f'{database}: {len(missing)} listed sample(s)',
          f'in the MEGC2019 composite list but not in the {db.TITLE} copy: ' + ', '.join(missing),
        )
      )
  return found, problems, '; '.join(sources)
