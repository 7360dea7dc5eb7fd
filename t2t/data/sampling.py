"""Subword regularization (config.spm_alpha): a fresh SentencePiece segmentation of the training pairs.

The encoded cache (t2t/data/encoded.py) keeps one deterministic encoding of the training split.
With sampling on, `TrainBatches` hands each chunk of an epoch's shuffled pairs (all of Multi30k is
one chunk) to a `SubwordSampler` before packing it: the cached ids are decoded back to text and
encoded again with SentencePiece sampling, seeded by (config.seed, epoch, chunk, side). A resumed
run therefore re-samples exactly the chunk it stopped in, and packs it into the same rows.
Validation and test encodings never pass through here.

A side keeps its cached (deterministic) ids when its sample would not fit config.max_len, or when
it holds UNK (decoding UNK does not give its text back).
"""

import numpy as np

from t2t.data.batch import UNK_ID
from t2t.data.encoded import EncodedPairs
from t2t.data.tokenizer import Tokenizer


def sampling_seed(*key: int) -> int:
  """A 32-bit SentencePiece seed for (seed, epoch, chunk, side); never 2**32 - 1 (SentencePiece's
  'no seed set', which would seed from the clock)."""
  return int(np.random.SeedSequence(list(key)).generate_state(1)[0]) % (2**32 - 1)


class SubwordSampler:
  """Re-segments chunks of training pairs; `sampler(pairs, epoch, chunk)` is a pure function."""

  def __init__(self, tokenizer: Tokenizer, alpha: float, max_len: int, seed: int):
    self.tokenizer, self.alpha, self.max_len, self.seed = tokenizer, alpha, max_len, seed

  def __call__(self, pairs: EncodedPairs, epoch: int, chunk: int) -> EncodedPairs:
    """The same P pairs, sampled segmentations, held in memory."""
    sides = []
    for side in (0, 1):
      cached = [pairs.pair(i)[side].tolist() for i in range(len(pairs))]
      sampled = self.tokenizer.sample_batch(self.tokenizer.decode_batch(cached), self.alpha,
                                            sampling_seed(self.seed, epoch, chunk, side))
      sides.append([new if len(new) < self.max_len and UNK_ID not in old else old
                    for old, new in zip(cached, sampled)])
    return EncodedPairs.from_lists(list(zip(*sides)))
