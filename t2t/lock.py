"""One training run per workdir: an advisory `fcntl.flock` on <workdir>/train.lock.

The kernel drops the lock when the process ends, however it ends (SIGKILL, OOM, power loss
of a local disk), so a dead run never leaves a stale lock: the file stays, the lock does not.
The file holds the owner's pid, host and start time, so the refusal can name it. Only
training takes the lock; evaluate.py and translate.py only read the workdir and stay allowed
while it trains. In a multi-process job only process 0 takes it (the others write nothing
of their own), so hosts sharing a workdir do not lock each other out.
"""

import errno
import fcntl
import os
import socket
import time

from t2t.errors import UserError

LOCK_FILE = 'train.lock'


class WorkdirLock:
  """Held while one train.py writes a workdir. Use as a context manager."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd = None

  def __enter__(self):
    make_workdir(self.workdir)
    try:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise UserError(f'cannot write {self.path}: {e.strerror}; --workdir must be a folder you can '
                      'write to (check its permissions or free space)') from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      owner = os.pread(fd, 4096, 0).decode('utf-8', 'replace').strip() or 'another process'
      os.close(fd)
      if e.errno in (errno.EAGAIN, errno.EACCES):
        raise UserError(f'{self.workdir} is being trained by {owner} ({self.path}); wait for it to '
                        'finish or stop it, or use another --workdir') from None
      raise UserError(f'cannot lock {self.path}: {e.strerror}') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()} since '
                  f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n'.encode(), 0)
    self._fd = fd
    return self

  def __exit__(self, *exc_info):
    if self._fd is not None:
      os.close(self._fd)  # closing the descriptor releases the lock
      self._fd = None


def make_workdir(workdir: str) -> None:
  """Creates the workdir (and parents), refusing in one line a path that is not a folder."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f'--workdir {workdir} is an existing file, not a folder: choose another path')
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f'cannot create --workdir {workdir}: {e.strerror}; choose a path you can '
                    'write to') from None
