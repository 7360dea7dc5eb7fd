"""Subword regularization (config.spm_alpha): sampled segmentations differ across epochs, keep the
text, and are the same again for the same seed and position, so a resumed run sees the same batches."""

import numpy as np
import pytest
from helpers import builtin_corpus

import configs.tiny
from t2t import demo_corpus, trainer
from t2t.data.batching import TrainBatches
from t2t.data.encoded import EncodedPairs
from t2t.data.sampling import SubwordSampler
from t2t.data.tokenizer import train_tokenizer

PAIRS = demo_corpus.load_builtin('train')[:400]


@pytest.fixture(scope='module', params=['unigram', 'bpe'])
def setup(request, tmp_path_factory):
  tokenizer = train_tokenizer([s for pair in PAIRS for s in pair], str(tmp_path_factory.mktemp('tok') / 'spm'),
                              vocab_size=400, model_type=request.param)
  pairs = EncodedPairs.from_lists([(tokenizer.encode(s), tokenizer.encode(t)) for s, t in PAIRS])
  return tokenizer, pairs


def as_lists(pairs):
  return [tuple(side.tolist() for side in pairs.pair(i)) for i in range(len(pairs))]


def test_samples_keep_the_text_differ_by_epoch_and_repeat_by_seed(setup):
  tokenizer, pairs = setup
  sampler = SubwordSampler(tokenizer, alpha=0.3, max_len=64, seed=0)
  epoch0, epoch1 = as_lists(sampler(pairs, 0, 0)), as_lists(sampler(pairs, 1, 0))
  cached = as_lists(pairs)
  assert epoch0 != cached and epoch1 != epoch0
  changed = sum(a != b for a, b in zip(epoch0, epoch1))
  assert changed > len(pairs) // 4, changed
  for (src, tgt), (text_src, text_tgt) in zip(epoch0, PAIRS):  # another segmentation of the same text
    assert tokenizer.decode(src) == tokenizer.decode(tokenizer.encode(text_src))
    assert tokenizer.decode(tgt) == tokenizer.decode(tokenizer.encode(text_tgt))
  # No hidden generator state: the same (seed, epoch, chunk) gives the same samples, whatever ran before.
  assert as_lists(sampler(pairs, 0, 0)) == epoch0
  assert as_lists(SubwordSampler(tokenizer, 0.3, 64, seed=1)(pairs, 0, 0)) != epoch0


def test_a_sample_that_would_not_fit_keeps_the_cached_ids(setup):
  tokenizer, pairs = setup
  longest = int(max(pairs.src_len.max(), pairs.tgt_len.max())) + 1
  tight = as_lists(SubwordSampler(tokenizer, alpha=0.9, max_len=longest, seed=0)(pairs, 0, 0))
  assert all(len(side) < longest for pair in tight for side in pair)
  assert tight != as_lists(pairs)


def batches(pairs, sampler, skip=0):
  it = TrainBatches(pairs.filter_by_length(48)[0], global_rows=4, row_len=48, seed=3, sampler=sampler)
  for _ in range(skip):
    next(it)
  return it


def test_resumed_batches_are_the_uninterrupted_ones(setup):
  tokenizer, pairs = setup
  sampler = SubwordSampler(tokenizer, alpha=0.2, max_len=48, seed=3)
  reference = batches(pairs, sampler)
  per_epoch = reference.batches_per_epoch()
  expected = [next(reference) for _ in range(per_epoch + 5)]  # into the second epoch
  plain = batches(pairs, None)
  assert not np.array_equal(next(plain).src, expected[0].src)  # sampling changed the batches
  for stop in (3, per_epoch + 2):
    paused = batches(pairs, sampler, skip=stop)
    resumed = batches(pairs, SubwordSampler(tokenizer, 0.2, 48, seed=3))  # a new process
    resumed.restore(paused.state())
    for want in expected[stop:stop + 3]:
      got = next(resumed)
      for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
  # The second epoch is segmented anew: the same sentence, other pieces.
  first_epoch = {tuple(row) for b in expected[:per_epoch] for row in b.src}
  assert not {tuple(row) for row in expected[per_epoch].src} <= first_epoch


def test_only_training_batches_are_sampled(tmp_path):
  config = configs.tiny.get_config()
  config.data.source = 'text'
  config.data.path = str(builtin_corpus(tmp_path, train=300, val=12))
  plain = trainer.prepare_data(config, str(tmp_path / 'plain'))
  config.spm_alpha = 0.3
  sampled = trainer.prepare_data(config, str(tmp_path / 'sampled'))
  assert sampled.train.sampler is not None and plain.train.sampler is None
  assert sampled.eval_examples == plain.eval_examples  # the same tokenizer: the same validation ids
  assert not np.array_equal(next(sampled.train).tgt_out, next(plain.train).tgt_out)
