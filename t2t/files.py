"""Writing files so that a crash leaves either the old file or the new one, never half of one."""

import os
import tempfile


def write_atomic(path: str, data: str | bytes) -> None:
  """Writes `data` (text as UTF-8, or bytes) to `path` through a temporary file and a rename.

  The temporary file sits in the same folder (a rename is atomic within one filesystem) under a
  unique hidden name, so two writers never share it; it is removed if the write fails.
  """
  directory, name = os.path.split(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp_path = tempfile.mkstemp(prefix=f'.{name}.', dir=directory)
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data.encode('utf-8') if isinstance(data, str) else data)
    os.replace(tmp_path, path)
  except BaseException:
    os.unlink(tmp_path)
    raise


def write_lines_atomic(path: str, lines) -> None:
  """Each of `lines` followed by a newline, written atomically (hypothesis files)."""
  write_atomic(path, ''.join(line + '\n' for line in lines))
