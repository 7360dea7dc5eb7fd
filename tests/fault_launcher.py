"""`python tests/fault_launcher.py FAULT train.py-flags...`: train.py with one fault injected.

FAULT is `enospc:STEP` (the write of checkpoint STEP fails with ENOSPC inside orbax's background
commit, where a full disk fails it), `batch:N` (the N-th training batch raises in the prefetch
thread) or `pause:MODULE.FUNCTION` (the call prints "paused in FUNCTION" and sleeps 5 s before
running, so a test can signal the run in that phase). For tests only: nothing in t2t knows about it.
"""

import errno
import importlib
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail_checkpoint_write(step: str) -> None:
  from orbax.checkpoint._src.handlers import json_checkpoint_handler
  handler = json_checkpoint_handler.JsonCheckpointHandler
  original = handler._save_fn

  async def save_fn(self, item, directory):
    if f'{os.sep}{step}.orbax-checkpoint-tmp' in str(directory):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))
    return await original(self, item, directory)
  handler._save_fn = save_fn


def fail_batch(number: str) -> None:
  from t2t.data import batching
  original = batching.TrainBatches.__next__
  served = [0]

  def next_batch(self):
    served[0] += 1
    if served[0] == int(number):
      raise ValueError(f'injected failure in training batch {number}')
    return original(self)
  batching.TrainBatches.__next__ = next_batch


def pause_in(name: str) -> None:
  module_name, _, function_name = name.rpartition('.')
  module = importlib.import_module(module_name)
  original = getattr(module, function_name)

  def paused(*args, **kwargs):
    print(f'paused in {function_name}', file=sys.stderr, flush=True)
    time.sleep(5)
    return original(*args, **kwargs)
  setattr(module, function_name, paused)


if __name__ == '__main__':
  # A shell's background job ignores SIGINT, and its children inherit that: a test sending
  # SIGINT wants Python's usual KeyboardInterrupt.
  signal.signal(signal.SIGINT, signal.default_int_handler)
  kind, _, argument = sys.argv.pop(1).partition(':')
  {'enospc': fail_checkpoint_write, 'batch': fail_batch, 'pause': pause_in}[kind](argument)
  from t2t.commands import train
  train.run()
