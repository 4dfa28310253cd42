"""`python -m hfa_jax COMMAND [options]`: the project's commands from any folder (hfa_jax.cli)."""

import sys

from hfa_jax.cli import main

sys.exit(main())
