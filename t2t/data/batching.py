"""Batches with a small fixed set of static shapes.

Training packs several sentence pairs into each row of length `row_len` (first fit over a
small pool of open rows), so every training batch has the one shape [R, row_len] and few
slots hold padding. Decoding sorts sentences by source length and cuts them into batches of
`rows` sentences whose source length is rounded up to one of a few buckets, so only a
handful of shapes are ever compiled.

Glossary: R rows per batch (global for this process), L row length, P devices.
Examples are pairs (src_ids, tgt_ids) of token-id lists without EOS/BOS.
"""

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from t2t.data.batch import BOS_ID, EOS_ID, Batch, unpacked
from t2t.data.encoded import EncodedPairs

Example = tuple[Sequence[int], Sequence[int]]

# Open rows kept while packing; more rows fill better, 16 is already within ~1% of optimal.
PACKING_POOL = 16
# Pairs of one epoch packed together: an epoch's shuffled pairs are packed this many at a
# time, so memory and the pause before a (resumed) run's first batch do not grow with the
# corpus. A corpus of at most this many pairs (Multi30k, the demo) is packed as one chunk.
PACKING_CHUNK = 1 << 17
DECODE_BUCKETS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def filter_by_length(examples: Sequence[Example], max_len: int):
  """Drops pairs that don't fit max_len tokens with EOS/BOS. Returns (kept, number dropped)."""
  kept = [ex for ex in examples if len(ex[0]) < max_len and len(ex[1]) < max_len]
  return kept, len(examples) - len(kept)


def _as_encoded(examples) -> EncodedPairs:
  return examples if isinstance(examples, EncodedPairs) else EncodedPairs.from_lists(examples)


def pack_rows(examples, order: np.ndarray, row_len: int) -> list[list[int]]:
  """First-fit packing of examples (in `order`) into rows; returns rows as lists of indices.

  `examples` is an EncodedPairs or a list of (src ids, tgt ids). The loop runs once per pair
  (not per token) over plain ints.
  """
  pairs = _as_encoded(examples)
  src_slots = (pairs.src_len[order] + 1).tolist()
  tgt_slots = (pairs.tgt_len[order] + 1).tolist()
  open_rows: list[tuple[int, int, list[int]]] = []  # (source slots used, target slots used, items)
  rows = []
  for i, s, t in zip(np.asarray(order).tolist(), src_slots, tgt_slots):
    for j, (su, tu, items) in enumerate(open_rows):
      if su + s <= row_len and tu + t <= row_len:
        items.append(i)
        open_rows[j] = (su + s, tu + t, items)
        break
    else:
      open_rows.append((s, t, [i]))
      if len(open_rows) > PACKING_POOL:
        rows.append(open_rows.pop(0)[2])  # the oldest row is the fullest on average
  rows.extend(items for _, _, items in open_rows)
  return rows


def rows_to_batch(examples, rows: Sequence[Sequence[int]], num_rows: int, row_len: int) -> Batch:
  """Lays out packed rows as a Batch [num_rows, row_len]; missing rows are all padding.

  Vectorised over the batch's pairs: tokens are gathered from the flat arrays of an
  EncodedPairs (a list of (src ids, tgt ids) is converted first).
  """
  pairs = _as_encoded(examples)
  per_row = np.fromiter(map(len, rows), np.int64, len(rows))
  items = np.fromiter(itertools.chain.from_iterable(rows), np.int64, int(per_row.sum()))  # [K]
  row_of = np.repeat(np.arange(len(rows)), per_row)                                       # [K]
  first_item = np.repeat(_exclusive_cumsum(per_row), per_row)                             # [K]
  seg = (np.arange(len(items)) - first_item + 1).astype(np.int32)                         # [K]
  arrays: dict[str, np.ndarray] = {}
  for side, tokens, start, length in (('src', pairs.src_tokens, pairs.src_start, pairs.src_len),
                                      ('tgt', pairs.tgt_tokens, pairs.tgt_start, pairs.tgt_len)):
    n = length[items].astype(np.int64) + 1                     # [K] slots: tokens + EOS (or BOS)
    ends = np.cumsum(n)
    row_start = ends[first_item] - n[first_item]               # [K] first slot of the item's row
    slot_item = np.repeat(np.arange(len(items)), n)            # [M] item of each used slot
    pos = np.arange(len(slot_item)) - np.repeat(ends - n, n)   # [M] position within the item
    dest = np.repeat(row_of * row_len + (ends - n - row_start), n) + pos  # [M] flat slot
    last = pos == n[slot_item] - 1                             # [M] the EOS slot of each item
    at = np.repeat(start[items], n) + pos                      # [M] token index (EOS: one past)
    content = tokens[np.where(last, 0, at)].astype(np.int32) if len(tokens) else np.zeros(len(at), np.int32)
    flat = {name: np.zeros(num_rows * row_len, np.int32) for name in ('tok', 'in', 'pos', 'seg')}
    flat['tok'][dest] = np.where(last, EOS_ID, content)        # tokens + EOS
    flat['pos'][dest] = pos
    flat['seg'][dest] = np.repeat(seg, n)
    shape = (num_rows, row_len)
    if side == 'src':
      arrays.update(src=flat['tok'], src_pos=flat['pos'], src_seg=flat['seg'])
    else:
      flat['in'][dest] = np.where(pos == 0, BOS_ID, np.roll(flat['tok'][dest], 1))  # BOS + tokens
      arrays.update(tgt_in=flat['in'], tgt_out=flat['tok'], tgt_pos=flat['pos'], tgt_seg=flat['seg'])
  return Batch(**{k: arrays[k].reshape(shape) for k in Batch._fields})


def _exclusive_cumsum(x: np.ndarray) -> np.ndarray:
  out = np.zeros(len(x), np.int64)
  np.cumsum(x[:-1], out=out[1:])
  return out


def fill_fraction(batch: Batch) -> float:
  """Fraction of source and target slots that hold real tokens."""
  real = np.count_nonzero(batch.src_seg) + np.count_nonzero(batch.tgt_seg)
  return real / (batch.src_seg.size + batch.tgt_seg.size)


def shard_for_devices(batch: Batch, num_devices: int) -> Batch:
  """[R, L] -> [P, R / P, L] for pmap."""
  return Batch(*(x.reshape((num_devices, -1) + x.shape[1:]) for x in batch))


@dataclasses.dataclass
class TrainBatches:
  """Endless packed training batches, reproducible from (seed, epoch, chunk, index).

  Each epoch shuffles all examples with a generator seeded by (seed, epoch), cuts the order
  into chunks of PACKING_CHUNK pairs and packs each chunk into rows (the rows of a chunk
  that do not fill a whole global batch are left out, as at the end of an epoch). Global
  batch i of a chunk is its rows [i * G, (i + 1) * G) and this process takes its own
  contiguous share of it. Every process computes the same packing, so the position
  (`state()`) is the same on all hosts and a resumed run continues with the exact batch it
  would have seen, after packing only the chunk it is in.

  sampler (config.spm_alpha > 0, t2t/data/sampling.py): re-segments each chunk's pairs,
  `sampler(pairs, epoch, chunk)`, before they are packed; a pure function of its arguments, so
  the position alone still says which batch comes next.
  """
  examples: EncodedPairs | Sequence[Example]
  global_rows: int   # G, rows per step over all processes
  row_len: int       # L
  seed: int
  process_index: int = 0
  process_count: int = 1
  epoch: int = 0
  index: int = 0     # batches of this chunk already returned
  chunk: int = 0     # chunk of this epoch being read
  sampler: Callable[[EncodedPairs, int, int], EncodedPairs] | None = None

  def __post_init__(self):
    if self.global_rows % self.process_count:
      raise ValueError(f'batch of {self.global_rows} rows does not split over {self.process_count} processes')
    self.examples = _as_encoded(self.examples)
    self.rows = self.global_rows // self.process_count  # R, this process's rows per step
    self._order, self._order_for = None, None
    self._chunk, self._chunk_for = None, None  # (pairs the rows index, rows) of one (epoch, chunk)

  def state(self) -> dict:
    return {'epoch': self.epoch, 'chunk': self.chunk, 'index': self.index, 'seed': self.seed}

  def restore(self, state: dict) -> None:
    self.epoch, self.index = int(state['epoch']), int(state['index'])
    self.chunk = int(state.get('chunk', 0))  # checkpoints from before chunking: one chunk

  def num_chunks(self) -> int:
    return max(-(-len(self.examples) // PACKING_CHUNK), 1)

  def _rows(self, epoch: int, chunk: int) -> tuple[EncodedPairs, list[list[int]]]:
    """(the pairs, their packed rows as lists of indices into them) of one chunk of one epoch."""
    if self._order_for != epoch:
      self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self.examples))
      self._order_for = epoch
    if self._chunk_for != (epoch, chunk):
      examples = self.examples
      assert isinstance(examples, EncodedPairs)  # __post_init__ converted it
      order = self._order[chunk * PACKING_CHUNK:(chunk + 1) * PACKING_CHUNK]
      if self.sampler is not None:
        examples = self.sampler(examples.select(order), epoch, chunk)
        order = np.arange(len(order))
      self._chunk = (examples, pack_rows(examples, order, self.row_len))
      self._chunk_for = (epoch, chunk)
    assert self._chunk is not None
    return self._chunk

  def _batches_in(self, rows) -> int:
    return max(len(rows) // self.global_rows, 1)

  def epoch_fill(self) -> float:
    """Fraction of source and target slots holding real tokens in the packed rows of this
    epoch's first chunk (the whole epoch for a corpus of at most PACKING_CHUNK pairs)."""
    examples, rows = self._rows(self.epoch, 0)
    items = np.fromiter(itertools.chain.from_iterable(rows), np.int64)
    real = int(examples.src_len[items].sum() + examples.tgt_len[items].sum()) + 2 * len(items)
    return real / (2 * len(rows) * self.row_len)

  def batches_per_epoch(self) -> int:
    """Exact for one chunk; else estimated from the first chunk's packing."""
    per_chunk = self._batches_in(self._rows(self.epoch, 0)[1])
    if self.num_chunks() == 1:
      return per_chunk
    return round(per_chunk * len(self.examples) / min(PACKING_CHUNK, len(self.examples)))

  def __iter__(self) -> Iterator[Batch]:
    return self

  def __next__(self) -> Batch:
    examples, rows = self._rows(self.epoch, self.chunk)
    if self.index >= self._batches_in(rows):
      self.chunk, self.index = self.chunk + 1, 0
      if self.chunk >= self.num_chunks():
        self.epoch, self.chunk = self.epoch + 1, 0
      examples, rows = self._rows(self.epoch, self.chunk)
    start = self.index * self.global_rows + self.process_index * self.rows
    self.index += 1
    return rows_to_batch(examples, rows[start:start + self.rows], self.rows, self.row_len)


def eval_batches(examples: Sequence[Example], rows: int, row_len: int) -> list[Batch]:
  """Packed batches covering every example once, in a fixed order (for validation loss)."""
  pairs = _as_encoded(examples)
  packed = pack_rows(pairs, np.arange(len(pairs)), row_len)
  return [rows_to_batch(pairs, packed[i:i + rows], rows, row_len)
          for i in range(0, len(packed), rows)]


@dataclasses.dataclass(frozen=True)
class DecodeBatch:
  """Sentences to translate: `batch.src*` is [rows, S]; `ids` maps rows to input positions."""
  batch: Batch
  ids: np.ndarray   # [rows] index of each row's sentence in the input list, -1 for padding rows
  src_len: int      # S, the bucket


def bucket_length(n: int, buckets: Sequence[int] = DECODE_BUCKETS) -> int:
  """The smallest bucket holding n tokens (n rounded up to a multiple of 64 past the last)."""
  for b in buckets:
    if n <= b:
      return b
  return -(-n // 64) * 64


def decode_batches(sources: Sequence[Sequence[int]], rows: int) -> list[DecodeBatch]:
  """Sorts sources by length and groups them into fixed-size batches of bucketed length.

  Sorting puts sentences of similar length together, so each batch is padded little and
  finishes decoding at about the same step.
  """
  order = sorted(range(len(sources)), key=lambda i: (len(sources[i]), i))
  out = []
  for start in range(0, len(order), rows):
    ids = order[start:start + rows]
    src_len = bucket_length(max(len(sources[i]) for i in ids) + 1)
    src_rows = [sources[i] for i in ids] + [[]] * (rows - len(ids))
    batch = unpacked(src_rows, [[]] * rows, src_len, 1)
    if len(ids) < rows:  # filler rows hold nothing at all, not even EOS
      batch = Batch(*(np.where(np.arange(rows)[:, None] < len(ids), x, 0) for x in batch))
    out.append(DecodeBatch(batch, np.array(ids + [-1] * (rows - len(ids))), src_len))
  return out
