"""The base TFDS builder of the micro-expression datasets: configs, features, build loop.

Each database's builder (datasets/<name>/<name>_dataset_builder.py) only says how to find its
samples in the manual folder; this class turns them into examples: flows computed in parallel
worker processes (cached on disk), bad samples skipped with their reason or stopping the build,
and a report kept on `builder.report` and in `builder.info.metadata`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil

import numpy as np
import tensorflow_datasets as tfds
from tqdm.auto import tqdm

from hfa_jax import preprocess

from datasets.common import flows, layout
from datasets.common.labels import COMPOSITE_CLASSES
from datasets.common.report import BuildReport
from datasets.common.samples import Problem, Sample

ON_ERROR = ('skip', 'stop')
MISSING_APEX = ('skip', 'middle')


class BuildStopped(Exception):
  """--on_error stop met a bad sample; nothing was written."""


@dataclasses.dataclass(eq=False)
class FlowConfig(tfds.core.BuilderConfig):
  """Stored side `size`; SMIC apex strategy; what to do with a missing (`/`) apex."""

  size: int = 224
  apex: str = 'middle'
  missing_apex: str = 'skip'


def config_name(size: int, apex: str = 'middle', missing_apex: str = 'skip') -> str:
  name = f'size_{size}'
  if apex != 'middle':
    name += f'_apex_{apex}'
  if missing_apex != 'skip':
    name += f'_missing_apex_{missing_apex}'
  return name


def make_config(size: int, apex: str = 'middle', missing_apex: str = 'skip') -> FlowConfig:
  if size < 8:
    raise ValueError(f'--size {size} is too small (at least 8)')
  if missing_apex not in MISSING_APEX:
    raise ValueError(f'missing_apex must be one of {MISSING_APEX}, not {missing_apex!r}')
  text = f'flow images {size}x{size}'
  if apex != 'middle':
    text += f', SMIC apex by {apex!r}'
  if missing_apex != 'skip':
    text += ", '/' apex -> middle frame"
  return FlowConfig(
    name=config_name(size, apex, missing_apex),
    description=text,
    size=size,
    apex=apex,
    missing_apex=missing_apex,
  )


def features(size: int, emotions: tuple[str, ...]) -> tfds.features.FeaturesDict:
  """The features of every dataset: `flow` (size, size, 3) float32, the labels as ClassLabels
  (int64; `composite_label` -1 outside the MEGC2019 composite), texts and frame numbers."""
  frame = lambda: tfds.features.Tensor(shape=(), dtype=np.int64)
  return tfds.features.FeaturesDict(
    {
      'flow': tfds.features.Tensor(shape=(size, size, 3), dtype=np.float32),
      'emotion': tfds.features.ClassLabel(names=emotions),
      'composite_label': tfds.features.ClassLabel(names=COMPOSITE_CLASSES),
      'subject': tfds.features.Text(),
      'sample': tfds.features.Text(),
      'database': tfds.features.Text(),
      'onset_frame': frame(),
      'apex_frame': frame(),
      'offset_frame': frame(),
      'action_units': tfds.features.Text(),
    }
  )


class FlowBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class; subclasses set EMOTIONS, LAYOUT, BUILDER_CONFIGS and implement `_find_samples`."""

  VERSION = tfds.core.Version('1.0.1')
  RELEASE_NOTES = {
    '1.0.0': 'Initial release.',
    '1.0.1': 'emotion and composite_label are ClassLabel features with their names (the same '
    'int64 values; composite_label -1 outside the composite); supervised_keys (flow, label).',
  }
  EMOTIONS: tuple[str, ...] = ()
  # The label of `supervised_keys` (flow, label): the native emotion of a database, whose
  # every sample has one; the composite datasets set composite_label.
  SUPERVISED_LABEL = 'emotion'
  LAYOUT = ''  # how --manual_dir is laid out, for messages (from datasets/<name>/rules.py)
  HOMEPAGE = ''

  def __init__(
    self,
    *,
    on_error: str = 'skip',
    workers: int | None = None,
    cache_dir: str | None = None,
    progress: bool = True,
    **kwargs,
  ):
    if on_error not in ON_ERROR:
      raise ValueError(f'on_error must be one of {ON_ERROR}, not {on_error!r}')
    super().__init__(**kwargs)
    self.on_error = on_error
    self.workers = workers or flows.default_workers()
    self.progress = progress
    root = self.data_path.parent.parent.parent
    self.cache_dir = cache_dir or os.fspath(
      root / '.flow_cache' / self.name / self.builder_config.name
    )
    self.report = BuildReport(self.name)

  # -- to implement --------------------------------------------------------------------
  def _find_samples(self, manual_dir: pathlib.Path) -> tuple[list[Sample], list[Problem], str]:
    """Samples to build, problems found while reading, and a description of the source."""
    raise NotImplementedError

  # -- TFDS ------------------------------------------------------------------------------
  def _log_download_bytes(self) -> None:
    # TFDS would announce a download ("Downloading and preparing dataset Unknown size"):
    # nothing is downloaded here, the build reads the local copy.
    print(
      f'building {self.name} ({self.builder_config.name}) from the local copy into {self.data_dir}',
      flush=True,
    )

  def _log_download_done(self) -> None:
    pass  # the build command prints its own report

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      features=features(self.builder_config.size, self.EMOTIONS),
      supervised_keys=('flow', self.SUPERVISED_LABEL),
      homepage=self.HOMEPAGE or None,
      metadata=tfds.core.MetadataDict(
        emotions=list(self.EMOTIONS), composite_classes=list(COMPOSITE_CLASSES)
      ),
    )

  def _split_generators(self, dl_manager):
    samples, problems, source = self._find_samples(self._manual_dir(dl_manager))
    self.report = BuildReport(self.name, source=source)
    return {'train': self._generate_examples(samples, problems)}

  def _manual_dir(self, dl_manager) -> pathlib.Path:
    """dl_manager.manual_dir; ManualDirError with the expected layout if missing or empty."""
    try:
      manual_dir = dl_manager.manual_dir
    except AssertionError as e:  # TFDS: 'Manual directory DIR does not exist or is empty. ...'
      raise layout.expected(self.LAYOUT, str(e).split(' Create it', 1)[0]) from None
    return layout.check_dir(os.fspath(manual_dir), self.LAYOUT)

  def _generate_examples(self, samples: list[Sample], problems: list[Problem]):
    for problem in problems:
      self._bad(problem)
    if not samples:
      raise BuildStopped(
        f'{self.name}: no sample could be built from the manual folder '
        '(every one is listed as skipped above); nothing was written'
        if problems
        else f'{self.name}: the manual folder holds no samples'
      )
    by_key = {s.key: s for s in samples}
    jobs = [self._job(s) for s in samples]
    bar = tqdm(total=len(jobs), desc=f'{self.name} flows', unit='sample', disable=not self.progress)
    # Reading PNGs is cheaper than starting worker processes.
    workers = 1 if all(isinstance(j, flows.PngJob) for j in jobs) else self.workers
    results = flows.run_all(jobs, workers, self.cache_dir)
    try:
      for result in results:
        bar.update()
        sample = by_key[result.key]
        example = self._example(sample, result)
        if isinstance(example, Problem):
          self._bad(example)
          continue
        notes = sample.notes + ([result.note] if result.note else [])
        self.report.notes += [(sample.key, n) for n in notes]
        self.report.add(sample.subject, sample.emotion, sample.composite_label, sample.database)
        yield sample.key, example
    finally:
      results.close()
      bar.close()
    self.info.metadata.update(self.report.metadata())

  def _bad(self, problem: Problem) -> None:
    if self.on_error == 'stop':
      then = (
        'to build its sample from its first row (duplicates are listed in the summary)'
        if problem.duplicate
        else 'to leave such samples out (they are listed in the summary)'
      )
      raise BuildStopped(
        f'{self.name}: stopped at a bad sample (--on_error stop); nothing '
        f'was written.\n  {problem}\nFix it, or rerun with --on_error skip {then}.'
      )
    entries = self.report.duplicates if problem.duplicate else self.report.skipped
    entries.append((problem.where, problem.reason))

  def _job(self, sample: Sample):
    size = self.builder_config.size
    if sample.flow_path:
      return flows.PngJob(sample.key, sample.flow_path, size)
    return flows.FrameJob(
      sample.key,
      sample.onset_path,
      sample.apex_path,
      size,
      crop=sample.crop,
      frames=sample.frames,
      apex_strategy=None if sample.apex_path else self.builder_config.apex,
    )

  def _example(self, sample: Sample, result: flows.Result) -> dict | Problem:
    if result.error:
      return Problem(sample.key, result.error, sample.match_key)
    flow = np.asarray(result.flow, dtype=np.float32)
    size = self.builder_config.size
    if flow.shape != (size, size, 3) or not np.isfinite(flow).all():
      return Problem(
        sample.key,
        f'flow of shape {flow.shape} with non-finite values or '
        f'not ({size}, {size}, 3); report this as a bug',
        sample.match_key,
      )
    if result.apex_index is not None:
      sample.apex_frame = preprocess.frame_number(sample.frames[result.apex_index])
    return {
      'flow': flow,
      'emotion': self.EMOTIONS.index(sample.emotion),
      'composite_label': sample.composite_label,
      'subject': sample.subject,
      'sample': sample.sample,
      'database': sample.database,
      'onset_frame': sample.onset_frame,
      'apex_frame': sample.apex_frame,
      'offset_frame': sample.offset_frame,
      'action_units': sample.action_units,
    }

  def remove_cache(self) -> None:
    """Drop the cached flows of this config (after a successful build)."""
    shutil.rmtree(self.cache_dir, ignore_errors=True)


def size_configs(sizes=(224, 128, 64, 32), **options) -> list[FlowConfig]:
  return [make_config(s, **options) for s in sizes]


def default_data_dir() -> str:
  """Where built datasets go when no --data_dir is given (TFDS's default)."""
  return os.path.expanduser(os.environ.get('TFDS_DATA_DIR') or '~/tensorflow_datasets')


def select_config(
  cls, size: int | None = None, apex: str = 'middle', missing_apex: str = 'skip'
) -> str | FlowConfig:
  """The config name if predefined, else a new FlowConfig (any `size`)."""
  size = size or cls.BUILDER_CONFIGS[0].size
  name = config_name(size, apex, missing_apex)
  if name in cls.builder_configs:
    return name
  return make_config(size, apex, missing_apex)
