"""Encoded sentence pairs: flat token arrays plus per-pair starts and lengths, cached in the workdir.

The training split is tokenized once and kept on disk, so a resumed or repeated run memory-maps
it instead of reading and encoding the text again, and nothing holds a Python object per token.

<workdir>/encoded/<split>/ (written into a temporary folder and renamed into place when whole,
so a folder under that name was always completed; anything else is ignored and removed):
  src.bin, tgt.bin   the token ids of every pair, one side each, concatenated (uint16, or
                     int32 when V > 65536); pair i's source is src[src_start[i]:][:src_len[i]]
  lengths.npy        [2, P] int32: source and target length of each pair
  manifest.json      what made it: format, tokenizer SHA-256, data settings, counts

Glossary: P pairs, N tokens of one side.
"""

import dataclasses
import itertools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence

import numpy as np

from t2t.errors import UserError

FORMAT = 1
# Settings that, changed, make a cache belong to a different corpus: refused, like trainer.FIXED_FIELDS.
_FIXED_KEYS = ('source', 'path', 'tfds_name', 'src_lang', 'tgt_lang')


@dataclasses.dataclass(frozen=True)
class EncodedPairs:
  """P sentence pairs as token ids without EOS/BOS; arrays may be memory-mapped."""
  src_tokens: np.ndarray  # [N_src]
  tgt_tokens: np.ndarray  # [N_tgt]
  src_start: np.ndarray   # [P] int64, where pair i's source begins in src_tokens
  src_len: np.ndarray     # [P] int32
  tgt_start: np.ndarray   # [P] int64
  tgt_len: np.ndarray     # [P] int32

  def __len__(self) -> int:
    return len(self.src_len)

  def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(source ids, target ids) of pair i."""
    return (self.src_tokens[self.src_start[i]:self.src_start[i] + self.src_len[i]],
            self.tgt_tokens[self.tgt_start[i]:self.tgt_start[i] + self.tgt_len[i]])

  def select(self, indices: np.ndarray) -> 'EncodedPairs':
    """The pairs at `indices` (the token arrays are shared, not copied)."""
    return dataclasses.replace(self, src_start=self.src_start[indices], src_len=self.src_len[indices],
                               tgt_start=self.tgt_start[indices], tgt_len=self.tgt_len[indices])

  def filter_by_length(self, max_len: int) -> tuple['EncodedPairs', int]:
    """Drops pairs that don't fit max_len tokens with EOS/BOS. Returns (kept, number dropped)."""
    keep = np.flatnonzero((self.src_len < max_len) & (self.tgt_len < max_len))
    return self.select(keep), len(self) - len(keep)

  @classmethod
  def from_lists(cls, examples: Sequence[tuple[Sequence[int], Sequence[int]]]) -> 'EncodedPairs':
    """From [(src ids, tgt ids)] held in memory (tests, validation sets)."""
    src_tokens, src_len = _flatten([s for s, _ in examples], np.int32)
    tgt_tokens, tgt_len = _flatten([t for _, t in examples], np.int32)
    return cls(src_tokens, tgt_tokens, _starts(src_len), src_len, _starts(tgt_len), tgt_len)


def _flatten(rows, dtype) -> tuple[np.ndarray, np.ndarray]:
  """[[ids]] -> (all ids concatenated, [len(rows)] lengths), without a Python object per id kept."""
  lengths = np.fromiter(map(len, rows), np.int32, len(rows))
  flat = np.fromiter(itertools.chain.from_iterable(rows), dtype, int(lengths.sum()))
  return flat, lengths


def _starts(lengths: np.ndarray) -> np.ndarray:
  """Exclusive running sum: where each of the concatenated sequences begins."""
  starts = np.zeros(len(lengths), np.int64)
  np.cumsum(lengths[:-1], out=starts[1:])
  return starts


def cache_key(data_config, split: str, max_examples: int | None, tokenizer_sha256: str) -> dict:
  """What a cached split depends on; a cache with another key is not this corpus."""
  return {'format': FORMAT, 'tokenizer_sha256': tokenizer_sha256, 'split': split,
          'max_examples': max_examples or None, 'tfds_data_dir': data_config.tfds_data_dir or None,
          **{k: data_config[k] for k in _FIXED_KEYS}}


def load_or_build(folder: str, key: dict, pair_chunks, tokenizer) -> tuple[EncodedPairs, dict]:
  """The cached split in `folder` if it was made with `key`; else encodes `pair_chunks()` into it.

  Args:
    folder: e.g. <workdir>/encoded/train.
    key: `cache_key(...)` of the corpus wanted.
    pair_chunks: a callable returning an iterable of lists of (source, target) strings; only
      called when there is no usable cache.
    tokenizer: encodes with `encode_batch`.
  Returns:
    (pairs, manifest).
  Raises:
    UserError: the cache was made with another tokenizer or another corpus setting
      (`config.data.source/path/tfds_name/src_lang/tgt_lang`).
  """
  manifest = read_manifest(folder)
  if manifest is not None:
    _refuse_other_corpus(folder, manifest['key'], key)
    if manifest['key'] == key:
      return open_pairs(folder, manifest), manifest
    logging.warning('%s was encoded with other settings (%s): encoding again', folder,
                    ', '.join(f'{k} {manifest["key"].get(k)!r} -> {v!r}' for k, v in key.items()
                              if manifest['key'].get(k) != v))
  manifest = build(folder, key, pair_chunks(), tokenizer)
  return open_pairs(folder, manifest), manifest


def _refuse_other_corpus(folder, old, new):
  if old.get('tokenizer_sha256') != new['tokenizer_sha256']:
    raise UserError(f'{folder} was encoded with a tokenizer of SHA-256 {str(old.get("tokenizer_sha256"))[:16]}... '
                    f'but the tokenizer now is {new["tokenizer_sha256"][:16]}...: put the original '
                    'tokenizer back or use a new --workdir')
  for k in _FIXED_KEYS:
    if old.get(k) != new[k]:
      raise UserError(f'{folder} holds the corpus of config.data.{k}={old.get(k)!r}, now {new[k]!r}; '
                      'use a new --workdir or the same setting')


def read_manifest(folder: str) -> dict | None:
  """The manifest of a complete cache folder, or None when there is none (or it is not whole)."""
  try:
    with open(os.path.join(folder, 'manifest.json')) as f:
      manifest = json.load(f)
    whole = all(os.path.getsize(os.path.join(folder, f'{side}.bin')) == manifest[f'{side}_bytes']
                for side in ('src', 'tgt'))
  except (OSError, ValueError, KeyError):
    return None
  return manifest if whole and manifest.get('key', {}).get('format') == FORMAT else None


def open_pairs(folder: str, manifest: dict) -> EncodedPairs:
  """Memory-maps a cache folder's tokens; lengths (8 bytes a pair) are read into memory."""
  lengths = np.load(os.path.join(folder, 'lengths.npy'))
  dtype = np.dtype(manifest['dtype'])

  def tokens(side):
    path = os.path.join(folder, f'{side}.bin')
    if manifest[f'{side}_bytes'] == 0:
      return np.zeros(0, dtype)
    return np.memmap(path, dtype, mode='r')

  return EncodedPairs(tokens('src'), tokens('tgt'), _starts(lengths[0]), lengths[0],
                      _starts(lengths[1]), lengths[1])


def build(folder: str, key: dict, pair_chunks: Iterable[list[tuple[str, str]]], tokenizer) -> dict:
  """Encodes every chunk of pairs into `folder`, replacing what is there only once all is written.

  A run killed at any point leaves either the previous folder or the new one under `folder`,
  plus perhaps a `.<split>.tmp-*` folder that the next build removes. Returns the manifest.
  """
  parent = os.path.dirname(os.path.abspath(folder))
  os.makedirs(parent, exist_ok=True)
  name = os.path.basename(folder)
  for stale in os.listdir(parent):  # left by a preparation that was killed
    if stale.startswith(f'.{name}.tmp-'):
      shutil.rmtree(os.path.join(parent, stale), ignore_errors=True)
  tmp = tempfile.mkdtemp(prefix=f'.{name}.tmp-', dir=parent)
  try:
    manifest = _write(tmp, key, pair_chunks, tokenizer)
    if os.path.exists(folder):
      old = tempfile.mkdtemp(prefix=f'.{name}.tmp-', dir=parent)
      os.replace(folder, os.path.join(old, name))
      os.replace(tmp, folder)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, folder)
    _fsync_dir(parent)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return manifest


def _write(tmp, key, pair_chunks, tokenizer) -> dict:
  dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.int32
  lengths: list[np.ndarray] = []
  with open(os.path.join(tmp, 'src.bin'), 'wb') as src_file, \
       open(os.path.join(tmp, 'tgt.bin'), 'wb') as tgt_file:
    for chunk in pair_chunks:
      pair_lengths = []
      for side, f in ((0, src_file), (1, tgt_file)):
        flat, side_lengths = _flatten(tokenizer.encode_batch([p[side] for p in chunk]), dtype)
        f.write(flat.tobytes())
        pair_lengths.append(side_lengths)
      lengths.append(np.stack(pair_lengths))
    for f in (src_file, tgt_file):
      f.flush()
      os.fsync(f.fileno())
    sizes = {'src_bytes': src_file.tell(), 'tgt_bytes': tgt_file.tell()}
  all_lengths = np.concatenate(lengths, axis=1) if lengths else np.zeros((2, 0), np.int32)
  with open(os.path.join(tmp, 'lengths.npy'), 'wb') as f:
    np.save(f, all_lengths)
    f.flush()
    os.fsync(f.fileno())
  manifest = {'key': key, 'dtype': np.dtype(dtype).name, 'pairs': all_lengths.shape[1], **sizes}
  # The manifest goes last: a folder whose manifest names the right sizes is whole.
  with open(os.path.join(tmp, 'manifest.json'), 'w') as manifest_file:
    json.dump(manifest, manifest_file, indent=1, sort_keys=True)
    manifest_file.flush()
    os.fsync(manifest_file.fileno())
  return manifest


def _fsync_dir(path):
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)
