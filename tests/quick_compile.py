"""Compiler options for tests whose time is compiling: a large network's program run once or
a few times on tiny inputs, or only compiled (its memory analysed).

Without LLVM's optimisation of the CPU code, HFA-Net's programs compile about a quarter
faster; the program and its XLA passes are the same, its last float bits are not (HFA-Net's
logits within 4e-6, its gradients within 2e-5 of the optimised code's). So these options are
for tests that check a program against its own properties or with a tolerance, never for
those that compare it bitwise with the optimised code (the native kernels' tests).

    jax.jit(step, compiler_options=QUICK_COMPILE)
"""

QUICK_COMPILE = {'xla_backend_optimization_level': 0}
