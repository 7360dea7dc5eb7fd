"""Parallel corpora stored as two line-aligned text files, one sentence per line.

Line i of the source file translates line i of the target file, as in Multi30k
(`<data_dir>/<split>.<lang>`: train.en / train.de, val.*, test2016.*).
"""

import os

from t2t.errors import UserError

# How many directory entries a missing-file message lists before it elides the rest.
_MAX_LISTED = 12


def normalize(line: str) -> str:
  """Strips a sentence and turns each inner run of whitespace into one space.

  `str.split()` splits on every Unicode whitespace character, so TABs, no-break spaces
  and stray carriage returns all go, while the words themselves are untouched.
  """
  return ' '.join(line.split())


def split_paths(data_dir: str, split: str, src_lang: str, tgt_lang: str) -> tuple[str, str]:
  """Returns the source and target file of one split in the Multi30k layout.

  Args:
    data_dir: folder holding the corpus, e.g. `config.data.path`.
    split: file stem of the split, e.g. 'train', 'val' or 'test2016'.
    src_lang: source language code, the source file's extension (e.g. 'en').
    tgt_lang: target language code, the target file's extension (e.g. 'de').
  Returns:
    (`<data_dir>/<split>.<src_lang>`, `<data_dir>/<split>.<tgt_lang>`).
  """
  data_dir = os.path.expanduser(data_dir)
  return (os.path.join(data_dir, f'{split}.{src_lang}'),
          os.path.join(data_dir, f'{split}.{tgt_lang}'))


def read_parallel(src_path: str, tgt_path: str) -> tuple[list[tuple[str, str]], dict]:
  """Reads line-aligned sentence pairs from two UTF-8 files.

  Each line is stripped and its internal runs of whitespace (spaces, TABs, no-break
  spaces ...) become one space. A pair where either side is then empty is skipped, never
  shifted: the remaining pairs keep their alignment.

  Args:
    src_path: source-language file, one sentence per line.
    tgt_path: target-language file, same number of lines.
  Returns:
    (pairs, stats): pairs is a list of (source, target) strings; stats is a dict with
    'lines' (lines per file), 'empty_skipped' (pairs dropped because a side was empty)
    and 'pairs' (len(pairs)).
  Raises:
    UserError: a file is missing or unreadable, is not valid UTF-8, the two files have
      different line counts, or no non-empty pair remains.
  """
  stats: dict = {}
  pairs = list(iter_parallel(src_path, tgt_path, stats))
  return pairs, stats


def iter_parallel(src_path: str, tgt_path: str, stats: dict):
  """`read_parallel` one pair at a time, for corpora too large to hold as Python strings.

  Yields (source, target) strings; fills `stats` ('lines', 'empty_skipped', 'pairs') once the
  files are read to the end. Raises the same UserErrors as `read_parallel`, a line-count
  mismatch only when the shorter file ends.
  """
  # Both files are opened before either is read, so a missing target is reported at once.
  with _open(src_path) as src_file, _open(tgt_path) as tgt_file:
    src_lines = decoded_lines(src_file, src_path)
    tgt_lines = decoded_lines(tgt_file, tgt_path)
    lines = empty = 0
    for src in src_lines:
      tgt = next(tgt_lines, None)
      if tgt is None:
        n_src = lines + 1 + sum(1 for _ in src_lines)
        _raise_count_mismatch(src_path, n_src, tgt_path, lines)
      lines += 1
      if src and tgt:
        yield src, tgt
      else:
        empty += 1
    n_tgt_rest = sum(1 for _ in tgt_lines)
    if n_tgt_rest:
      _raise_count_mismatch(src_path, lines, tgt_path, lines + n_tgt_rest)
  if lines == empty:
    what = ('both files are empty' if lines == 0 else
            f'all {lines} lines are empty on at least one side')
    raise UserError(f'no sentence pairs in {src_path} and {tgt_path}: {what}; '
                    'check that config.data.path points at the corpus')
  stats.update(lines=lines, empty_skipped=empty, pairs=lines - empty)


def count_lines(path: str) -> int:
  """Lines in a file, as iter_parallel counts them (a last line without a newline counts), read
  as bytes in 1 MiB blocks: cheap enough to check a corpus that is only partly read."""
  lines, last = 0, b'\n'
  with _open(path) as f:
    while block := f.read(1 << 20):
      lines += block.count(b'\n')
      last = block[-1:]
  return lines + (last != b'\n')


def check_line_counts(src_path: str, tgt_path: str) -> None:
  """Raises iter_parallel's UserError when the two files differ in line count."""
  n_src, n_tgt = count_lines(src_path), count_lines(tgt_path)
  if n_src != n_tgt:
    _raise_count_mismatch(src_path, n_src, tgt_path, n_tgt)


def read_lines(path: str, setting: str = 'config.data.path') -> list[str]:
  """Every line of a UTF-8 file, normalised like read_parallel; empty lines are kept (as '')
  so outputs stay aligned with the input. setting: the flag or config field that named the
  file, for the error message (e.g. '--prefix_file')."""
  with _open(path, setting) as f:
    return list(decoded_lines(f, path))


def _open(path, setting: str = 'config.data.path'):
  """Opens a corpus file in binary mode, turning OS errors into UserErrors that name `setting`."""
  try:
    return open(path, 'rb')
  except FileNotFoundError:
    raise UserError(_missing_file_message(path, setting)) from None
  except OSError as e:
    raise UserError(f'cannot read {path}: {e.strerror}; check {setting}') from None


def decoded_lines(f, path, on_invalid=None):
  """Yields the normalised lines of an open binary file (or stream), one at a time.

  A line that is not valid UTF-8 raises a UserError naming it; with `on_invalid`, a function
  of the error message, that function is called instead and the line is yielded as ''
  (translating a stream keeps its output aligned and goes on).
  """
  # Binary mode splits on b'\n' only, so a stray '\r' or U+2028 inside a sentence
  # cannot become a line break in one file and shift every later pair.
  offset = 0
  for number, raw in enumerate(f, start=1):
    try:
      text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
      where = f'{path} line {number} (byte offset {offset + e.start}) is not valid UTF-8'
      offset += len(raw)
      if on_invalid is None:
        raise UserError(f'{where}: re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8') from None
      on_invalid(where)
      yield ''
      continue
    offset += len(raw)
    if number == 1:
      text = text.removeprefix('\ufeff')  # a byte-order mark is not part of the sentence
    yield normalize(text)


def _missing_file_message(path, setting: str):
  directory = os.path.dirname(path) or '.'
  what = 'config.data.path and the split name' if setting == 'config.data.path' else setting
  message = f'no such file {path}: check {what}'
  if not os.path.isdir(directory):
    return message + f' (directory {directory} does not exist)'
  names = sorted(n for n in os.listdir(directory)
                 if os.path.isfile(os.path.join(directory, n)))
  if not names:
    return message + f' ({directory} has no files)'
  listed = ', '.join(names[:_MAX_LISTED])
  if len(names) > _MAX_LISTED:
    listed += f' ... ({len(names) - _MAX_LISTED} more)'
  return message + f' (found: {listed})'


def _raise_count_mismatch(src_path, n_src, tgt_path, n_tgt):
  raise UserError(
      f'{src_path} has {n_src} lines but {tgt_path} has {n_tgt}: the files must be '
      'line-aligned (line i of one translates line i of the other); check that both '
      'come from the same split and version of the corpus')
