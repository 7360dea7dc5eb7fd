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
from typing import Iterator, Sequence

import numpy as np

from t2t.data.batch import BOS_ID, EOS_ID, Batch, unpacked

Example = tuple[Sequence[int], Sequence[int]]

# Open rows kept while packing; more rows fill better, 16 is already within ~1% of optimal.
PACKING_POOL = 16
DECODE_BUCKETS = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def filter_by_length(examples: Sequence[Example], max_len: int):
  """Drops pairs that don't fit max_len tokens with EOS/BOS. Returns (kept, number dropped)."""
  kept = [ex for ex in examples if len(ex[0]) < max_len and len(ex[1]) < max_len]
  return kept, len(examples) - len(kept)


def pack_rows(examples: Sequence[Example], order: np.ndarray, row_len: int) -> list[list[int]]:
  """First-fit packing of examples (in `order`) into rows; returns rows as lists of indices."""
  open_rows: list[tuple[int, int, list[int]]] = []  # (source slots used, target slots used, items)
  rows = []
  for i in order:
    s, t = len(examples[i][0]) + 1, len(examples[i][1]) + 1
    for j, (su, tu, items) in enumerate(open_rows):
      if su + s <= row_len and tu + t <= row_len:
        items.append(int(i))
        open_rows[j] = (su + s, tu + t, items)
        break
    else:
      open_rows.append((s, t, [int(i)]))
      if len(open_rows) > PACKING_POOL:
        rows.append(open_rows.pop(0)[2])  # the oldest row is the fullest on average
  rows.extend(items for _, _, items in open_rows)
  return rows


def rows_to_batch(examples: Sequence[Example], rows: Sequence[Sequence[int]], num_rows: int,
                  row_len: int) -> Batch:
  """Lays out packed rows as a Batch [num_rows, row_len]; missing rows are all padding."""
  arrays = {k: np.zeros((num_rows, row_len), np.int32) for k in Batch._fields}
  for r, items in enumerate(rows):
    s_at = t_at = 0
    for seg, i in enumerate(items, start=1):
      src, tgt = examples[i]
      s, t = len(src) + 1, len(tgt) + 1
      arrays['src'][r, s_at:s_at + s] = list(src) + [EOS_ID]
      arrays['src_pos'][r, s_at:s_at + s] = np.arange(s)
      arrays['src_seg'][r, s_at:s_at + s] = seg
      arrays['tgt_in'][r, t_at:t_at + t] = [BOS_ID] + list(tgt)
      arrays['tgt_out'][r, t_at:t_at + t] = list(tgt) + [EOS_ID]
      arrays['tgt_pos'][r, t_at:t_at + t] = np.arange(t)
      arrays['tgt_seg'][r, t_at:t_at + t] = seg
      s_at, t_at = s_at + s, t_at + t
  return Batch(**arrays)


def fill_fraction(batch: Batch) -> float:
  """Fraction of source and target slots that hold real tokens."""
  real = np.count_nonzero(batch.src_seg) + np.count_nonzero(batch.tgt_seg)
  return real / (batch.src_seg.size + batch.tgt_seg.size)


def shard_for_devices(batch: Batch, num_devices: int) -> Batch:
  """[R, L] -> [P, R / P, L] for pmap."""
  return Batch(*(x.reshape((num_devices, -1) + x.shape[1:]) for x in batch))


@dataclasses.dataclass
class TrainBatches:
  """Endless packed training batches, reproducible from (seed, epoch, index).

  Each epoch shuffles all examples with a generator seeded by (seed, epoch) and packs them
  into rows; global batch i is rows [i * G, (i + 1) * G) and this process takes its own
  contiguous share of it. Every process computes the same packing, so the position
  (`state()`) is the same on all hosts and a resumed run continues with the exact batch it
  would have seen.
  """
  examples: Sequence[Example]
  global_rows: int   # G, rows per step over all processes
  row_len: int       # L
  seed: int
  process_index: int = 0
  process_count: int = 1
  epoch: int = 0
  index: int = 0     # batches of this epoch already returned

  def __post_init__(self):
    if self.global_rows % self.process_count:
      raise ValueError(f'batch of {self.global_rows} rows does not split over {self.process_count} processes')
    self.rows = self.global_rows // self.process_count  # R, this process's rows per step
    self._epoch_rows = None
    self._epoch_rows_for = None

  def state(self) -> dict:
    return {'epoch': self.epoch, 'index': self.index, 'seed': self.seed}

  def restore(self, state: dict) -> None:
    self.epoch, self.index = int(state['epoch']), int(state['index'])

  def _rows(self) -> list[list[int]]:
    if self._epoch_rows_for != self.epoch:
      order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.examples))
      self._epoch_rows = pack_rows(self.examples, order, self.row_len)
      self._epoch_rows_for = self.epoch
    return self._epoch_rows

  def epoch_fill(self) -> float:
    """Fraction of source and target slots holding real tokens over this epoch's packed rows."""
    rows = self._rows()
    real = sum(len(self.examples[i][0]) + len(self.examples[i][1]) + 2 for r in rows for i in r)
    return real / (2 * len(rows) * self.row_len)

  def batches_per_epoch(self) -> int:
    return max(len(self._rows()) // self.global_rows, 1)

  def __iter__(self) -> Iterator[Batch]:
    return self

  def __next__(self) -> Batch:
    if self.index >= self.batches_per_epoch():
      self.epoch, self.index = self.epoch + 1, 0
    start = self.index * self.global_rows + self.process_index * self.rows
    rows = self._rows()[start:start + self.rows]
    self.index += 1
    return rows_to_batch(self.examples, rows, self.rows, self.row_len)


def eval_batches(examples: Sequence[Example], rows: int, row_len: int) -> list[Batch]:
  """Packed batches covering every example once, in a fixed order (for validation loss)."""
  packed = pack_rows(examples, np.arange(len(examples)), row_len)
  return [rows_to_batch(examples, packed[i:i + rows], rows, row_len)
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
