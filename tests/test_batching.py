"""Packing and decode batching: every pair once, pairs isolated, resumable, split over processes."""

import json

import numpy as np

from t2t.data import batching
from t2t.data.batch import BOS_ID, EOS_ID, Batch
from t2t.data.batching import (
  TrainBatches,
  decode_batches,
  eval_batches,
  fill_fraction,
  filter_by_length,
  pack_rows,
  rows_to_batch,
)
from t2t.data.encoded import EncodedPairs


def examples(n=300, seed=0):
  rng = np.random.default_rng(seed)
  return [(list(rng.integers(4, 50, rng.integers(1, 20))), list(rng.integers(4, 50, rng.integers(1, 20))))
          for _ in range(n)]


def unpack(batch):
  """Recovers (src, tgt) pairs from a packed batch via segment ids."""
  pairs = []
  for r in range(batch.src.shape[0]):
    for seg in range(1, batch.src_seg[r].max() + 1):
      src = batch.src[r][batch.src_seg[r] == seg]
      tgt_in = batch.tgt_in[r][batch.tgt_seg[r] == seg]
      tgt_out = batch.tgt_out[r][batch.tgt_seg[r] == seg]
      assert src[-1] == EOS_ID and tgt_in[0] == BOS_ID and tgt_out[-1] == EOS_ID
      np.testing.assert_array_equal(tgt_in[1:], tgt_out[:-1])
      np.testing.assert_array_equal(batch.src_pos[r][batch.src_seg[r] == seg], np.arange(len(src)))
      pairs.append((tuple(src[:-1]), tuple(tgt_out[:-1])))
  return pairs


def test_packing_keeps_every_pair_exactly_once_and_fills_rows():
  data = examples()
  rows = pack_rows(data, np.arange(len(data)), 32)
  assert sorted(i for r in rows for i in r) == list(range(len(data)))
  batch = rows_to_batch(data, rows, len(rows), 32)
  assert sorted(unpack(batch)) == sorted((tuple(s), tuple(t)) for s, t in data)
  assert fill_fraction(batch) > 0.85
  # The epoch-wide figure the trainer prints is the same count over the same packing.
  shuffled = pack_rows(data, np.random.default_rng([0, 0]).permutation(len(data)), 32)
  epoch = TrainBatches(data, 4, 32, seed=0)
  everything = rows_to_batch(data, shuffled, len(shuffled), 32)
  np.testing.assert_allclose(epoch.epoch_fill(), fill_fraction(everything))


def test_filter_drops_and_counts_long_pairs():
  data = [([5] * 3, [5] * 3), ([5] * 10, [5] * 2), ([5] * 2, [5] * 9)]
  kept, dropped = filter_by_length(data, 10)
  assert kept == data[:1] + data[2:] and dropped == 1


def test_train_batches_resume_at_the_same_batch():
  data = examples()
  a = TrainBatches(data, 4, 32, seed=3)
  seen = [next(a) for _ in range(a.batches_per_epoch() + 5)]  # crosses an epoch boundary
  assert a.epoch == 1
  b = TrainBatches(data, 4, 32, seed=3)
  for _ in range(10):
    next(b)
  c = TrainBatches(data, 4, 32, seed=3)
  c.restore(b.state())
  for expected in seen[10:]:  # includes the first batches of epoch 1
    np.testing.assert_array_equal(next(c).src, expected.src)


def test_epochs_differ_and_seeds_differ():
  data = examples()
  a = TrainBatches(data, 4, 32, seed=3)
  first = next(a).src
  a.restore({'epoch': 1, 'index': 0})
  assert not np.array_equal(next(a).src, first)
  assert not np.array_equal(next(TrainBatches(data, 4, 32, seed=4)).src, first)


def test_two_processes_split_one_global_batch():
  data = examples()
  whole = TrainBatches(data, 4, 32, seed=0)
  halves = [TrainBatches(data, 4, 32, seed=0, process_index=p, process_count=2) for p in range(2)]
  for _ in range(5):
    expected = next(whole)
    parts = [next(h) for h in halves]
    np.testing.assert_array_equal(np.concatenate([p.src for p in parts]), expected.src)
    np.testing.assert_array_equal(np.concatenate([p.tgt_out for p in parts]), expected.tgt_out)


def test_eval_batches_cover_everything_once():
  data = examples(50)
  pairs = [p for b in eval_batches(data, 4, 32) for p in unpack(b)]
  assert sorted(pairs) == sorted((tuple(s), tuple(t)) for s, t in data)


def test_decode_batches_sort_by_length_and_map_back():
  sources = [list(range(4, 4 + n)) for n in [30, 3, 12, 7, 50, 1, 9]]
  batches = decode_batches(sources, 3)
  seen = []
  for item in batches:
    assert item.batch.src.shape == (3, item.src_len)
    for row, index in enumerate(item.ids):
      if index < 0:
        assert not item.batch.src_seg[row].any()
        continue
      n = len(sources[index])
      np.testing.assert_array_equal(item.batch.src[row, :n], sources[index])
      assert item.batch.src[row, n] == EOS_ID
      seen.append(index)
  assert sorted(seen) == list(range(len(sources)))
  lengths = [len(sources[i]) for i in seen]
  assert lengths == sorted(lengths)
  assert {b.src_len for b in batches} <= {16, 32, 48, 64}


def reference_batches(data, global_rows, row_len, seed, count):
  """The packing t2t used before the encoded corpus (lists of ids, one Python loop per token),
  frozen here so the vectorised layout can be compared with it batch for batch."""
  def pack(order):
    open_rows, rows = [], []
    for i in order:
      s, t = len(data[i][0]) + 1, len(data[i][1]) + 1
      for j, (su, tu, items) in enumerate(open_rows):
        if su + s <= row_len and tu + t <= row_len:
          items.append(int(i))
          open_rows[j] = (su + s, tu + t, items)
          break
      else:
        open_rows.append((s, t, [int(i)]))
        if len(open_rows) > 16:
          rows.append(open_rows.pop(0)[2])
    return rows + [items for _, _, items in open_rows]

  def layout(rows):
    arrays = {k: np.zeros((global_rows, row_len), np.int32) for k in Batch._fields}
    for r, items in enumerate(rows):
      s_at = t_at = 0
      for seg, i in enumerate(items, start=1):
        src, tgt = data[i]
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

  epoch, index, out = 0, 0, []
  rows = pack(np.random.default_rng([seed, 0]).permutation(len(data)))
  while len(out) < count:
    if index >= max(len(rows) // global_rows, 1):
      epoch, index = epoch + 1, 0
      rows = pack(np.random.default_rng([seed, epoch]).permutation(len(data)))
    out.append(layout(rows[index * global_rows:(index + 1) * global_rows]))
    index += 1
  return out


def test_batches_equal_the_list_based_packing_of_before():
  """A corpus of one packing chunk (Multi30k, the demo) gets exactly the batches it used to."""
  data = examples(400, seed=5)
  batches = TrainBatches(EncodedPairs.from_lists(data), 6, 32, seed=2)
  expected = reference_batches(data, 6, 32, 2, batches.batches_per_epoch() + 4)  # into epoch 1
  for want in expected:
    got = next(batches)
    for field in Batch._fields:
      np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)


def test_chunked_packing_is_as_tight_and_resumes_exactly(monkeypatch):
  data = examples(3000, seed=1)
  whole = TrainBatches(data, 8, 32, seed=0)
  one_chunk_fill = whole.epoch_fill()
  monkeypatch.setattr(batching, 'PACKING_CHUNK', 500)
  a = TrainBatches(data, 8, 32, seed=0)
  assert a.num_chunks() == 6
  epoch = []
  while a.epoch == 0:
    epoch.append(next(a))
  epoch.pop()  # the first batch of epoch 1
  pairs = [p for b in epoch for p in unpack(b)]
  assert len(pairs) == len(set(pairs)) >= 0.97 * len(data)  # each at most once; few left out
  fills = [fill_fraction(b) for b in epoch]
  assert abs(np.mean(fills) - one_chunk_fill) < 0.01
  b = TrainBatches(data, 8, 32, seed=0)
  for _ in range(len(epoch) // 2 + 1):
    next(b)
  c = TrainBatches(data, 8, 32, seed=0)
  c.restore(json.loads(json.dumps(b.state())))  # as a checkpoint stores it
  assert c.state()['chunk'] > 0
  for expected in epoch[len(epoch) // 2 + 1:]:
    np.testing.assert_array_equal(next(c).tgt_out, expected.tgt_out)
