"""Native CPU kernels (XLA FFI custom calls in C++) and their typed Python wrappers.

    build.py   compiles depthwise_cpu.cc, conv_cpu.cc and adamw_cpu.cc on first use and
               registers them
    ffi.py     the FFI target names and one typed wrapper per target

`native_available()` says whether the wrappers may be called (CPU programs, float32);
`hfa_jax.ops` chooses between them and the pure-JAX forms. `unavailable_reason()` says why
not; `compiler_found()` whether a build could be expected to succeed; within `xla_forms()`
programs are traced with the XLA forms GPU and TPU programs run.
"""

from hfa_jax.kernels.build import (
  build,
  cache_dir,
  cache_root,
  compiler_found,
  native_available,
  switched_off,
  unavailable_reason,
  xla_forms,
)
from hfa_jax.kernels.ffi import (
  ADAMW,
  CONV_FORWARD,
  CONV_WEIGHT_GRAD,
  DEPTHWISE_FORWARD,
  DEPTHWISE_WEIGHT_GRAD,
  SGD,
  STEM_BACKWARD,
  STEM_FORWARD,
  TARGETS,
  AdamWHyperparams,
  AdamWStepScalars,
  adamw,
  conv_forward,
  conv_weight_grad,
  depthwise_forward,
  depthwise_weight_grad,
  sgd,
  stem_backward,
  stem_forward,
)

__all__ = [
  'ADAMW',
  'CONV_FORWARD',
  'CONV_WEIGHT_GRAD',
  'DEPTHWISE_FORWARD',
  'DEPTHWISE_WEIGHT_GRAD',
  'SGD',
  'STEM_BACKWARD',
  'STEM_FORWARD',
  'TARGETS',
  'AdamWHyperparams',
  'AdamWStepScalars',
  'adamw',
  'build',
  'cache_dir',
  'cache_root',
  'compiler_found',
  'conv_forward',
  'conv_weight_grad',
  'depthwise_forward',
  'depthwise_weight_grad',
  'native_available',
  'sgd',
  'stem_backward',
  'stem_forward',
  'switched_off',
  'unavailable_reason',
  'xla_forms',
]
