"""The errors a LOSO run raises for what its user can change (no JAX import)."""


class PlanError(ValueError):
  """The data or the chosen subjects cannot make the folds asked for."""


class NonFiniteError(RuntimeError):
  """A fold's model gave logits that are not finite (diverged training)."""


class RunInUseError(RuntimeError):
  """Another process is training into the same output folder."""


class RunMismatchError(ValueError):
  """The output folder holds a run with other settings or on other data."""
