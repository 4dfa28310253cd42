"""The original PyTorch HFA-Net (DualInception) timed like experiments.benchmark times ours.

Used by `python -m experiments.benchmark --compare_torch PATH`. Nothing of the original is
copied: it is imported from the user's own checkout at PATH (needs torch and timm).
"""

from __future__ import annotations

import os
import statistics
import sys

from experiments.timing import time_steps


def bench_torch(path: str, sides, batch, steps, threads: int, num_classes: int) -> list[dict] | str:
  """Train-step and eval rows of the original at `path`, for each input side.

  Returns rows, or a sentence saying why it was skipped (torch, timm or the code missing).
  """
  path = os.path.abspath(os.path.expanduser(path))
  if not os.path.isfile(os.path.join(path, 'model', 'model_dual_msff.py')):
    return f'skipped: {path} has no model/model_dual_msff.py'
  try:
    import torch
    import torch.nn.functional as F
  except ImportError:
    return 'skipped: torch is not installed'
  sys.path.insert(0, path)
  try:
    from model.model_dual_msff import DualInception
  except ImportError as e:
    return f'skipped: the original does not import ({e})'
  finally:
    sys.path.remove(path)
  torch.set_num_threads(threads)
  # XLA:CPU flushes denormals to zero; PyTorch does not by default, and this network's CPU
  # step is then far slower at some sizes (docs/performance.md). Compare like with like.
  torch.set_flush_denormal(True)
  torch.manual_seed(0)
  rows = []
  for side in sides:
    net = DualInception(num_classes=num_classes).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.randn(batch, 3, side, side)
    y = torch.randint(0, num_classes, (batch,))

    def train_step():
      opt.zero_grad(set_to_none=True)
      loss = F.cross_entropy(net(x), y)
      loss.backward()
      opt.step()

    def eval_step():
      with torch.no_grad():
        net(x)

    for kind, step, warmup in (('torch_train', train_step, 2), ('torch_eval', eval_step, 1)):
      if kind == 'torch_eval':
        net.eval()
      times = time_steps(step, steps, warmup=warmup)
      rows.append(
        {
          'kind': kind,
          'side': side,
          'batch': batch,
          'folds': 1,
          'threads': threads,
          'torch': torch.__version__,
          'step_s': statistics.median(times),
          'step_s_all': times,
          'samples_per_s': batch / statistics.median(times),
        }
      )
    print(
      f"  original (PyTorch) side {side:>3}: train {rows[-2]['samples_per_s']:.1f}, "
      f"eval {rows[-1]['samples_per_s']:.1f} samples/s",
      flush=True,
    )
  return rows
