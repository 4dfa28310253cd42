"""`python -m datasets.build` run in-process as the builder tests run it: one worker, no
progress bar."""

from datasets import build


def run_build(name, manual_dir, data_dir, *extra, size=None) -> int:
  """build.main's exit code for `name` from manual_dir into data_dir (at `size` if given)."""
  args = [name, '--manual_dir', str(manual_dir), '--data_dir', str(data_dir)]
  if size is not None:
    args += ['--size', str(size)]
  return build.main([*args, '--workers', '1', '--no_progress', *extra])
