"""Orbax checkpoints of the training state: save, restore, keep the last N, average.

Where they live in a workdir (checkpoints/, best/) is t2t/workdir.py's business.

A checkpoint is written under a temporary name (`<step>.orbax-checkpoint-tmp-*`) and renamed
when complete (orbax's AtomicRenameTemporaryPath on local disks), so a crash mid-save leaves
the previous checkpoints intact; leftover temporary folders are ignored and removed on the next
run. A step folder that exists but does not restore (truncated or missing files) is moved
aside to `<step>.damaged` with a warning, and the previous checkpoint is used. A write that
fails for lack of space stops the run with one line naming the step and the newest complete
checkpoint (`DiskFull`); the temporary folder it leaves is removed on the next run.

  python -m t2t.checkpoint --workdir DIR --fingerprint   # "step N sha256 HEX" of the parameters
"""

import errno
import hashlib
import logging
import os
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import flags

from t2t import cli
from t2t import workdir as wd
from t2t.errors import UserError

DAMAGED_SUFFIX = '.damaged'


class DiskFull(UserError):
  """A checkpoint write failed with ENOSPC (orbax reports it from a background thread)."""


def is_disk_full(error: BaseException | None) -> bool:
  """True if `error` or anything it was raised from is ENOSPC (tensorstore says so in text)."""
  while error is not None:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if 'No space left on device' in str(error) or "os_error_code='28'" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


class Checkpointer:
  """Saves and restores {state, data position} under <workdir>/<folder>, keeping the last K."""

  def __init__(self, workdir: str, keep: int = 3, read_only: bool = False, folder: str = wd.CHECKPOINTS):
    self.directory = os.path.join(os.path.abspath(workdir), folder)
    # Read-only (evaluation, possibly while a run trains): no pruning, no creating, and no
    # removal of the temporary folder of a save in progress. The settings orbax would
    # otherwise override with a warning are given as it wants them.
    options = ocp.CheckpointManagerOptions(
        max_to_keep=None if read_only else keep, save_interval_steps=0 if read_only else 1,
        create=not read_only, read_only=read_only, cleanup_tmp_directories=not read_only)
    self.manager = ocp.CheckpointManager(self.directory, options=options)
    self._pending: int | None = None  # the step of a save that may still be writing in the background
    self._failed = False

  def step_path(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state, data_state: dict) -> None:
    """state: an unreplicated pytree {step, params, opt_state}; data_state: JSON-able dict.

    The write continues in the background; its failure is raised by the next save or wait.
    """
    self.wait()  # orbax would wait here anyway; an earlier write's failure names its own step
    self._pending = step
    try:
      self.manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=True)
    except Exception as e:  # noqa: BLE001  (re-raised unless the disk is full)
      self._write_failed(e)

  def wait(self) -> None:
    """Blocks until the background write (if any) is on disk."""
    if self._pending is None:
      return
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # noqa: BLE001  (re-raised unless the disk is full)
      self._write_failed(e)
    self._pending = None

  def _write_failed(self, error: Exception) -> None:
    step, self._pending, self._failed = self._pending, None, True
    if not is_disk_full(error):
      raise error
    good = [s for s in self.complete_steps() if s != step]
    raise DiskFull(f'no space left on device while writing checkpoint {step} in {self.directory}; '
                   f'the newest good checkpoint is {good[-1] if good else "none"}: free space, '
                   'then rerun the same command to resume from it') from None

  def complete_steps(self) -> list[int]:
    """Steps whose folders are complete on disk (renamed from their temporary name)."""
    if not os.path.isdir(self.directory):
      return []
    return sorted(int(n) for n in os.listdir(self.directory) if n.isdigit())

  def restore(self, target_state, step: int | None = None):
    """Restores into the structure of `target_state`. Returns (state, data_state)."""
    step = self.latest_step() if step is None else step
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target_state)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
    return restored.state, restored.data

  def restore_latest_good(self, target_state):
    """The newest checkpoint that restores, as (step, state, data_state).

    Newer step folders that fail to restore while an older one works are damaged (a torn
    copy, a truncated file): they are moved aside to `<step>.damaged`, never deleted, so the
    run can write that step again. If no checkpoint restores, nothing is moved and the error
    names the newest one (a changed optimizer setting fails this way too).
    """
    damaged = []
    for step in reversed(self.all_steps()):
      try:
        state, data_state = self.restore(target_state, step)
      except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise many types)
        logging.warning('checkpoint %s does not restore (%s: %s); trying the previous one',
                        self.step_path(step), type(e).__name__, _first_line(e))
        damaged.append((step, e))
        continue
      for bad, _ in damaged:
        self._set_aside(bad)
      if damaged:
        self.manager.reload()
      return step, state, data_state
    step, error = damaged[0]
    raise UserError(f'no checkpoint in {self.directory} restores; the newest, {self.step_path(step)}, '
                    f'fails with {type(error).__name__}: {_first_line(error)}; if the optimizer '
                    f'config changed (e.g. config.grad_accum_steps) use the old setting, '
                    f'else a new --workdir')

  def _set_aside(self, step: int) -> None:
    path = self.step_path(step)
    if jax.process_index() == 0:
      os.replace(path, path + DAMAGED_SUFFIX)
      print(f'warning: checkpoint {path} is damaged; moved to {path + DAMAGED_SUFFIX}, '
            f'resuming from the previous one', file=sys.stderr)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f't2t set aside {path}')

  def restore_params(self, step: int | None = None):
    """Only the parameters of one checkpoint (no optimizer state needed), as numpy arrays."""
    if step is not None:
      return self._params_at(step)
    steps = self.all_steps()
    if not steps:
      raise UserError(f'{self.directory}: no checkpoint found; train first with '
                      f'`python train.py --workdir {os.path.dirname(self.directory)}`')
    # Evaluation never changes the workdir: a damaged newest checkpoint is skipped, not moved.
    for step in reversed(steps):
      try:
        return self._params_at(step)
      except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise many types)
        print(f'warning: checkpoint {self.step_path(step)} does not restore ({type(e).__name__}: '
              f'{_first_line(e)}); using the previous one', file=sys.stderr)
    raise UserError(f'no checkpoint in {self.directory} restores: retrain, or restore the files from a backup')

  def _params_at(self, step: int):
    restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    return jax.tree_util.tree_map(np.asarray, restored.state['params'])

  def average_params(self, last: int):
    """Element-wise mean of the last `last` checkpoints' parameters (Vaswani et al. 2017).

    Returns:
      (params, the steps averaged).
    """
    steps = self.all_steps()[-last:]
    if not steps:
      self.restore_params()  # raises the "no checkpoint" error
    return self.mean_params(steps), steps

  def mean_params(self, steps: list[int]):
    """Element-wise mean of these checkpoints' parameters (float64 sum, float32 result); one step
    gives that checkpoint's parameters unchanged."""
    if len(steps) == 1:
      return self.restore_params(steps[0])
    total = None
    for step in steps:
      params = jax.tree_util.tree_map(lambda x: x.astype(np.float64), self.restore_params(step))
      total = params if total is None else jax.tree_util.tree_map(np.add, total, params)
    return jax.tree_util.tree_map(lambda x: (x / len(steps)).astype(np.float32), total)

  def close(self) -> None:
    # Orbax removes leftover temporary folders in the background and waits for that only before
    # its next save; wait here too, so a closed Checkpointer has left no temporaries behind
    # (without it tests/test_faults.py's pruning test failed in 3 of 11 runs on a loaded machine).
    wait_for_cleanup = getattr(self.manager, '_maybe_await_cleanup_tmp_directory', None)  # orbax 0.12
    try:
      if wait_for_cleanup is not None:
        wait_for_cleanup()
      self.manager.close()
    except Exception:  # noqa: BLE001
      if not self._failed:  # after a failed write, its error has been reported already
        raise


def fingerprint(params) -> str:
  """SHA-256 over every parameter: sorted key paths, each with its dtype, shape and bytes."""
  digest = hashlib.sha256()
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  for key, value in sorted(((jax.tree_util.keystr(p), np.asarray(v)) for p, v in leaves),
                           key=lambda item: item[0]):
    digest.update(f'{key} {value.dtype.str} {value.shape}\n'.encode())
    digest.update(np.ascontiguousarray(value).tobytes())
  return digest.hexdigest()


def _first_line(error: Exception) -> str:
  return (str(error).strip().splitlines() or [''])[0][:300]


def _define_flags(values) -> None:
  flags.DEFINE_string('workdir', None, 'A folder written by train.py.', required=True, flag_values=values)
  flags.DEFINE_bool('fingerprint', False, 'Print "step N sha256 HEX" of the latest checkpoint\'s parameters.',
                    flag_values=values)
  flags.DEFINE_integer('step', None, 'A checkpoint other than the latest.', flag_values=values)


def _main(values, rest) -> None:
  if rest or not values.fingerprint:
    raise UserError('nothing to do: pass --fingerprint')
  if not os.path.isdir(wd.path(values.workdir, wd.CHECKPOINTS)):
    raise UserError(f'{values.workdir}: no checkpoints folder; '
                    '--workdir must be a folder written by train.py')
  checkpointer = Checkpointer(values.workdir, read_only=True)
  try:
    step = checkpointer.latest_step() if values.step is None else values.step
    if step not in checkpointer.all_steps():
      which = 'found' if step is None else f'at step {step}'
      raise UserError(f'{checkpointer.directory}: no checkpoint {which}; '
                      f'steps present: {checkpointer.all_steps() or "none"}')
    print(f'step {step} sha256 {fingerprint(checkpointer.restore_params(step))}')
  finally:
    checkpointer.close()


def main(argv=None) -> None:
  """`python -m t2t.checkpoint --workdir W --fingerprint [--step N]`; argv default sys.argv[1:]."""
  cli.run_tool('python -m t2t.checkpoint', __doc__.splitlines()[0], _define_flags, _main, argv)


if __name__ == '__main__':
  main()
