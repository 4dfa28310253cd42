"""Read a built dataset into NumPy arrays, without TensorFlow.

    from datasets.load import load_arrays
    data = load_arrays('samm', size=64)   # {'flow': (N, 64, 64, 3) float32, 'subject': str ...}
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from datasets.common import registry

TEXT = ('subject', 'sample', 'database', 'action_units')


class DatasetNotBuiltError(FileNotFoundError):
    """The dataset is not in data_dir; the message is the command that builds it."""


def _build_command(name: str, config_name: str, data_dir: str | None, size: int,
                   default_size: int) -> str:
    cmd = f'python -m datasets.build {name} --manual_dir DIR'
    if data_dir:
        cmd += f' --data_dir {data_dir}'
    if size != default_size:
        cmd += f' --size {size}'
    if '_apex_max_motion' in config_name:
        cmd += ' --apex max_motion'
    if '_missing_apex_middle' in config_name:
        cmd += ' --missing_apex middle'
    return cmd


def dataset_path(name: str, data_dir=None, size: int | None = None,
                 config: str | None = None) -> pathlib.Path:
    """Folder of the newest built version of NAME/config; DatasetNotBuiltError if none."""
    from datasets.common import builder as base
    cls = registry.builder_class(name)
    default_size = cls.BUILDER_CONFIGS[0].size
    size = size or default_size
    config = config or base.config_name(size)
    root = pathlib.Path(data_dir or base.default_data_dir()).expanduser()
    versions = sorted((p for p in (root / name / config).glob('*.*.*')
                       if p.name[0].isdigit() and (p / 'dataset_info.json').exists()),
                      key=lambda p: tuple(int(x) for x in p.name.split('.') if x.isdigit()))
    if not versions:
        command = _build_command(name, config, os.fspath(data_dir) if data_dir else None,
                                 size, default_size)
        raise DatasetNotBuiltError(
            f'{name} ({config}) is not built in {root}. Build it with:\n  {command}\n'
            f'(DIR: the folder holding your copy; `python -m datasets.synthetic --database all '
            f'--out DIR` writes a synthetic one)')
    return versions[-1]


def load_arrays(name: str, data_dir=None, size: int | None = None,
                config: str | None = None) -> dict[str, np.ndarray]:
    """Every example of a built dataset, sorted by (database, subject, sample).

    Returns flow (N, S, S, 3) float32, emotion / composite_label / *_frame (N,) int64 and
    subject / sample / database / action_units (N,) str arrays. `config` picks a non-default
    config by name (e.g. 'size_224_apex_max_motion'); `size` the stored side of the default.
    """
    import tensorflow_datasets as tfds
    path = dataset_path(name, data_dir, size, config)
    source = tfds.builder_from_directory(os.fspath(path)).as_data_source(split='train')
    examples = [source[i] for i in range(len(source))]
    if not examples:
        raise DatasetNotBuiltError(f'{path} holds no examples; rebuild it')
    out = {}
    for key in examples[0]:
        values = [e[key] for e in examples]
        if key in TEXT:
            out[key] = np.array([v.decode('utf-8') if isinstance(v, bytes) else str(v)
                                 for v in values], dtype=str)
        else:
            out[key] = np.stack([np.asarray(v) for v in values])
    order = np.lexsort((out['sample'], out['subject'], out['database']))
    return {k: v[order] for k, v in out.items()}


def metadata(name: str, data_dir=None, size: int | None = None, config: str | None = None) -> dict:
    """The built dataset's metadata: emotions, composite_classes, source, skipped, notes."""
    import tensorflow_datasets as tfds
    path = dataset_path(name, data_dir, size, config)
    return dict(tfds.builder_from_directory(os.fspath(path)).info.metadata or {})
