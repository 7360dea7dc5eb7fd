"""Token layout and the `Batch` that flows from the data pipeline into the jitted steps.

Glossary: B batch rows, S source length, T target length (static per batch shape).

Token ids are fixed across every tokenizer t2t makes:
  PAD_ID = 0  padding; segment id 0 marks the same slots
  EOS_ID = 1  ends every source and every target sequence
  BOS_ID = 2  first decoder input token
  UNK_ID = 3
Source rows are `tokens + [EOS]`; decoder input is `[BOS] + tokens`, decoder output
(labels) is `tokens + [EOS]`.

Rows may be packed: several sentence pairs share one row, told apart by segment ids
(1, 2, 3, ... within a row, 0 for padding) and with positions restarting at 0 for each
pair. Segment k of `src` is the source of segment k of `tgt_*`. Unpacked rows are the
special case with one segment per row.
"""

from typing import NamedTuple

import numpy as np

PAD_ID = 0
EOS_ID = 1
BOS_ID = 2
UNK_ID = 3


class Batch(NamedTuple):
  """One batch of int32 arrays. Leading axes may carry a device axis: [n_devices, B, ...]."""
  src: np.ndarray       # [B, S] source tokens, EOS-terminated, 0-padded
  src_pos: np.ndarray   # [B, S] position of each token within its segment
  src_seg: np.ndarray   # [B, S] segment id, 0 for padding
  tgt_in: np.ndarray    # [B, T] decoder input: BOS + target tokens
  tgt_out: np.ndarray   # [B, T] labels: target tokens + EOS, 0 where padding
  tgt_pos: np.ndarray   # [B, T]
  tgt_seg: np.ndarray   # [B, T]


def unpacked(src_rows, tgt_rows, src_len, tgt_len):
  """Builds a Batch with one pair per row.

  Args:
    src_rows: sequences of source ids, without EOS.
    tgt_rows: sequences of target ids, without BOS/EOS (may be empty lists for decoding).
    src_len: S, static row length for sources (each row must fit len + 1).
    tgt_len: T, static row length for targets (each row must fit len + 1).
  Returns:
    Batch with arrays [len(src_rows), S] and [len(src_rows), T].
  """
  b = len(src_rows)
  arrays = {k: np.zeros((b, src_len if k.startswith('src') else tgt_len), np.int32)
            for k in Batch._fields}
  for i, (s, t) in enumerate(zip(src_rows, tgt_rows)):
    s = list(s) + [EOS_ID]
    n = len(t) + 1
    arrays['src'][i, :len(s)] = s
    arrays['src_pos'][i, :len(s)] = np.arange(len(s))
    arrays['src_seg'][i, :len(s)] = 1
    arrays['tgt_in'][i, :n] = [BOS_ID] + list(t)
    arrays['tgt_out'][i, :n] = list(t) + [EOS_ID]
    arrays['tgt_pos'][i, :n] = np.arange(n)
    arrays['tgt_seg'][i, :n] = 1
  return Batch(**arrays)
