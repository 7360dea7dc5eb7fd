"""Where training numbers go: a progress bar, TensorBoard event files and metrics.jsonl.

TensorBoard files are written by tensorboardX, which needs no TensorFlow.
"""

import json
import os
import sys
import time
from typing import Any

import jax
from tqdm import tqdm

from t2t import workdir as wd


class Monitor:
  """Progress bar plus metric writers; only process 0 writes files or draws the bar."""

  def __init__(self, workdir: str, total_steps: int, start_step: int):
    self.main = jax.process_index() == 0
    self.bar = tqdm(total=total_steps, initial=start_step, unit='step', dynamic_ncols=True,
                    disable=not self.main, file=sys.stderr, smoothing=0.1)
    self._jsonl: Any = None
    self._tb: Any = None
    if self.main:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(wd.path(workdir, wd.METRICS), 'a')
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(wd.path(workdir, wd.TENSORBOARD))

  def advance(self, steps: int, postfix: dict | None = None) -> None:
    """Moves the bar; postfix values (loss, lr, tok/s) are shown beside it."""
    if postfix:
      self.bar.set_postfix({k: _short(v) for k, v in postfix.items()}, refresh=False)
    self.bar.update(steps)

  def write(self, step: int, prefix: str, metrics: dict) -> None:
    """Appends one JSON line and TensorBoard scalars named '<prefix>/<metric>'."""
    if not self.main:
      return
    record = {'step': int(step), 'split': prefix, 'time': time.time(),
              **{k: float(v) for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()
    for key, value in metrics.items():
      self._tb.add_scalar(f'{prefix}/{key}', float(value), int(step))
    self._tb.flush()

  def message(self, text: str) -> None:
    """A line printed above the bar without breaking it."""
    if self.main:
      self.bar.write(text, file=sys.stderr)

  def close(self) -> None:
    self.bar.close()
    if self.main:
      self._jsonl.close()
      self._tb.close()


def _short(value):
  if isinstance(value, float):
    return f'{value:.3g}' if abs(value) < 1e4 else f'{value:.0f}'
  return value
