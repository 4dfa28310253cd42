"""Many processes, one run: JAX's multi-controller runtime (`jax.distributed`), started when
the environment says that this process is one of several of a job.

Every process runs the same command; the LOSO shards its fold axis over the devices of all
of them (hfa_jax.loso.program.fold_mesh), each process reads the dataset itself, process 0
writes the run's files, and every process takes part in the orbax checkpoints. How to launch
one on a TPU pod slice or with SLURM: docs/multihost.md.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import urllib.error
import urllib.request

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

# The variables of a SLURM job step (srun), as jax.distributed's own SLURM detection reads them.
SLURM_STEP = (
  'SLURM_JOB_ID',
  'SLURM_STEP_NODELIST',
  'SLURM_NTASKS',
  'SLURM_PROCID',
  'SLURM_LOCALID',
)
METADATA = 'http://metadata.google.internal/computeMetadata/v1/instance/attributes/'


def tpu_chips() -> int:
  """TPU chips attached to this host (0 off a TPU VM), read from the PCI bus and /dev, without
  starting any JAX backend."""
  try:
    from jax._src import hardware_utils  # noqa: PLC0415 (private: guarded)

    return hardware_utils.num_available_tpu_chips_and_device_id()[0]
  except (ImportError, AttributeError):
    return len(glob.glob('/dev/accel*')) or len(glob.glob('/dev/vfio/[0-9]*'))


def tpu_hosts(timeout: float = 2.0) -> int:
  """The hosts of this TPU slice: TPU_WORKER_HOSTNAMES where set (GKE), else on a Cloud TPU
  VM its metadata's worker list (what jax.distributed reads too); 1 anywhere else, or where
  the metadata server does not answer within `timeout` seconds (e.g. a Colab TPU)."""
  hosts = os.environ.get('TPU_WORKER_HOSTNAMES') or os.environ.get('TPU_PROCESS_ADDRESSES')
  if hosts:
    return len([h for h in hosts.split(',') if h.strip()])
  if not tpu_chips():
    return 1
  request = urllib.request.Request(
    METADATA + 'worker-network-endpoints', headers={'Metadata-Flavor': 'Google'}
  )
  try:
    with urllib.request.urlopen(request, timeout=timeout) as answer:
      endpoints = answer.read().decode()
  except (OSError, urllib.error.URLError, ValueError):
    return 1
  return max(1, len([w for w in endpoints.split(',') if w.strip()]))


def job_kind(coordinator_address=None, num_processes=None, process_id=None) -> str | None:
  """'options', 'slurm' or 'tpu': how this process is one of several of a job (the three
  options given, a SLURM step of several tasks, a TPU slice of several hosts); None for a
  single process. ValueError for options that do not go together."""
  given = [v is not None for v in (coordinator_address, num_processes, process_id)]
  if any(given):
    if not all(given):
      raise ValueError(
        '--coordinator_address, --num_processes and --process_id go together: give all three '
        '(the same address and count to every process, each its own id), or none on a TPU '
        'pod slice or in a SLURM step, where they are read from the environment'
      )
    if not 0 <= process_id < num_processes:
      raise ValueError(
        f'--process_id {process_id} with --num_processes {num_processes}: give each process '
        f'an id from 0 to {num_processes - 1}'
      )
    return 'options' if num_processes > 1 else None
  if all(k in os.environ for k in SLURM_STEP) and int(os.environ['SLURM_NTASKS']) > 1:
    return 'slurm'
  if tpu_hosts() > 1:
    return 'tpu'
  return None


def initialize(coordinator_address=None, num_processes=None, process_id=None) -> bool:
  """Starts jax.distributed where this process is one of several of a job (job_kind);
  returns whether it runs as one of several. Call it before anything touches JAX's devices.

  coordinator_address: 'HOST:PORT' of process 0, where it serves the others (a free port on
  that host); num_processes: how many; process_id: this one's, 0 .. num_processes - 1. Without
  them, a SLURM step (srun) of several tasks and a TPU pod slice are detected by JAX itself.
  On CPU the processes' collectives go over TCP with gloo (JAX 0.10's default; set here where
  a JAX has none). ValueError for options that do not go together,
  RuntimeError where JAX's backend is already running.
  """
  if jax.distributed.is_initialized():
    return True
  kind = job_kind(coordinator_address, num_processes, process_id)
  if kind is None:
    return False
  from jax._src import xla_bridge  # noqa: PLC0415 (private: only to say what went wrong)

  if xla_bridge.backends_are_initialized():
    raise RuntimeError(
      'this is one process of a multi-process job, but JAX already started its devices in '
      'it: call hfa_jax.distributed.initialize() before any JAX computation or jax.devices() '
      '(e.g. first thing in the script, or in a fresh Python process)'
    )
  if getattr(jax.config, 'jax_cpu_collectives_implementation', 'gloo') is None:
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if kind == 'options':
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  else:
    jax.distributed.initialize()
  return True


# ------------------------------------------------- what the processes of a run share


def processes() -> int:
  """How many processes run the job: jax.process_count() once jax.distributed runs, else 1
  (without starting JAX's backend)."""
  return jax.process_count() if jax.distributed.is_initialized() else 1


def process_index() -> int:
  """This process's index in the job: jax.process_index() once jax.distributed runs, else 0."""
  return jax.process_index() if jax.distributed.is_initialized() else 0


def is_main() -> bool:
  """Whether this process writes the run's files: process 0, or the only one."""
  return process_index() == 0


def host_copy(tree):
  """The arrays of `tree` as NumPy arrays on this host. An array that this process does not
  hold whole (sharded over several processes' devices) is first replicated onto every device
  by one jitted identity: a collective, so every process must call this with the same tree."""
  leaves = jax.tree.leaves(tree)
  spread = [x for x in leaves if isinstance(x, jax.Array) and not x.is_fully_addressable]
  if not spread:
    return jax.device_get(tree)
  if not isinstance(spread[0].sharding, NamedSharding):
    return multihost_utils.process_allgather(tree, tiled=True)
  return jax.device_get(_replicator(NamedSharding(spread[0].sharding.mesh, PartitionSpec()))(tree))


@functools.lru_cache(maxsize=8)
def _replicator(replicated: NamedSharding):
  return jax.jit(lambda tree: tree, out_shardings=replicated)


def first(value):
  """Process 0's `value` (a NumPy scalar or array) on every process: where each process
  decides by its own clock or memory, they act alike. A collective; `value` itself for one
  process."""
  if processes() == 1:
    return value
  return multihost_utils.broadcast_one_to_all(np.asarray(value))


def largest(value: int) -> int:
  """The largest of the processes' `value`s, on every process. A collective; `value` itself
  for one process."""
  if processes() == 1:
    return value
  return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def agree(text: str) -> bool:
  """Whether every process has the same `text` (e.g. its data's fingerprint). A collective;
  True for one process."""
  if processes() == 1:
    return True
  digest = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8)
  every = np.asarray(multihost_utils.process_allgather(digest))
  return bool((every == every[0]).all())


def barrier(name: str):
  """Waits until every process has come here (no-op for one process)."""
  if processes() > 1:
    multihost_utils.sync_global_devices(name)
