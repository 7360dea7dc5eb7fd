"""train.py that pauses after step K, so a test can stop the run at a known point.

  python tests/paused_train.py K <train.py flags>

After step K has run (before its logging and checkpoint) it waits for earlier checkpoint
writes, prints "paused after step K" and waits for a signal (SIGTERM/SIGINT), which the
trainer then handles as in production. The hook is the trainer's `after_step` argument.
"""

import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's t2t

from t2t import trainer  # noqa: E402
from t2t.commands import train  # noqa: E402


def pause_after(pause_step: int, step: int, checkpointer, stop) -> None:
  if step != pause_step:
    return
  checkpointer.wait()
  print(f'paused after step {step}', file=sys.stderr, flush=True)
  while not stop.requested(step):
    time.sleep(0.05)


if __name__ == '__main__':
  pause_step = int(sys.argv.pop(1))
  trainer.train_and_evaluate = functools.partial(trainer.train_and_evaluate,
                                                 after_step=functools.partial(pause_after, pause_step))
  train.run()
