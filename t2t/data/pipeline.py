"""From `config.data` to token ids: pick the source, train or load the tokenizer, encode.

Sources (config.data.source):
  'builtin'  the synthetic English->German corpus shipped with t2t (offline demo, t2t/demo_corpus.py)
  'text'     <config.data.path>/<split>.<lang> files, one sentence per line
  'tfds'     any TensorFlow Datasets translation dataset (config.data.tfds_name)

The training split is streamed, never held as Python strings: one pass samples sentences for
the tokenizer (first run only), one encodes into the workdir's cache (t2t/data/encoded.py),
which later runs memory-map instead.
"""

import itertools
import logging
import os
import sys
from collections.abc import Iterator

import jax

from t2t import demo_corpus
from t2t import workdir as wd
from t2t.data import encoded, text
from t2t.data.tokenizer import ByteTokenizer, Tokenizer, resolve_character_coverage, train_tokenizer, write_byte_tokenizer
from t2t.errors import UserError
from t2t.files import write_atomic
from t2t.workdir import BYTE_TOKENIZER, TOKENIZER_MODEL, TOKENIZER_NAME

# Pairs read, encoded and written per step when building the encoded training corpus.
CHUNK_PAIRS = 65536
# (source, target) files whose empty-side pairs were reported: the train split is read twice.
_WARNED_EMPTY: set = set()


def load_pairs(data_config, split: str, max_examples: int | None = None) -> list[tuple[str, str]]:
  """Sentence pairs (source, target) of one split, in the configured direction."""
  return [pair for chunk in iter_pairs(data_config, split, max_examples) for pair in chunk]


def iter_pairs(data_config, split: str, max_examples: int | None = None):
  """`load_pairs` as lists of at most CHUNK_PAIRS pairs, read as they are needed.

  Text files and TFDS are streamed, so a WMT-sized split is never held as Python strings.
  """
  source = data_config.source
  if source == 'builtin':
    pairs = demo_corpus.load_builtin(split)
    if (data_config.src_lang, data_config.tgt_lang) == ('de', 'en'):
      pairs = [(de, en) for en, de in pairs]
    elif (data_config.src_lang, data_config.tgt_lang) != ('en', 'de'):
      raise UserError('the builtin corpus is English-German: set config.data.src_lang/tgt_lang '
                      "to 'en'/'de' or 'de'/'en'")
    yield from _chunks(pairs[:max_examples] if max_examples else pairs)
  elif source == 'text':
    if not data_config.path:
      raise UserError("config.data.path is empty: set it to the folder holding <split>.<lang> files, "
                      "e.g. --config.data.path=../shared/data/multi30k")
    src_path, tgt_path = text.split_paths(data_config.path, split, data_config.src_lang,
                                          data_config.tgt_lang)
    stats: dict = {}
    streamed: Iterator[tuple[str, str]] = text.iter_parallel(src_path, tgt_path, stats)
    if max_examples:
      # The files are read only up to max_examples pairs: their line counts are compared apart.
      text.check_line_counts(src_path, tgt_path)
      streamed = itertools.islice(streamed, max_examples)
    yield from _chunks(streamed)
    if stats.get('empty_skipped') and (src_path, tgt_path) not in _WARNED_EMPTY:
      _WARNED_EMPTY.add((src_path, tgt_path))  # once, though the train split is read twice (tokenizer, encoding)
      logging.warning('%s/%s: skipped %d pairs with an empty side', src_path, tgt_path,
                      stats['empty_skipped'])
  elif source == 'tfds':
    from t2t.data import tfds_source  # keeps TensorFlow out of every other path
    yield from tfds_source.iter_tfds(data_config.tfds_name, split, data_config.src_lang,
                                     data_config.tgt_lang, data_config.tfds_data_dir or None,
                                     max_examples=max_examples)
  else:
    raise UserError(f"config.data.source={source!r}: use 'builtin', 'text' or 'tfds'")


def _chunks(pairs):
  iterator = iter(pairs)
  while chunk := list(itertools.islice(iterator, CHUNK_PAIRS)):
    yield chunk


def get_tokenizer(config, workdir: str) -> Tokenizer | ByteTokenizer:
  """The workdir's tokenizer; trained on the training split (joint vocabulary) on first use.

  config.tokenizer_type 'unigram' or 'bpe': SentencePiece's model type; `config.tokenizer_path`
  names an existing SentencePiece model to copy in instead. Training reads the split once,
  keeping a bounded sample (see `train_tokenizer`). 'byte': nothing to train; the workdir
  records bytes.json (config.vocab_size does not apply: V is 260).
  """
  if config.get('tokenizer_type', 'unigram') == 'byte':
    return _byte_tokenizer(workdir)
  path = os.path.join(workdir, TOKENIZER_MODEL)
  if os.path.exists(path):
    return Tokenizer(path)
  if config.tokenizer_path:
    if not os.path.exists(config.tokenizer_path):
      raise UserError(f'config.tokenizer_path={config.tokenizer_path}: file not found')
    if jax.process_index() == 0:
      with open(config.tokenizer_path, 'rb') as f:
        write_atomic(path, f.read())
    return Tokenizer(config.tokenizer_path)
  chunks = iter_pairs(config.data, config.data.train_split, config.data.max_train_examples or None)
  first: list = next(chunks, [])
  # 'auto' looks at the first CHUNK_PAIRS pairs (the whole split for corpora up to that size).
  coverage = resolve_character_coverage(config.get('character_coverage', 'auto'),
                                        [[s for s, _ in first], [t for _, t in first]])
  texts = (s for chunk in itertools.chain([first], chunks) for pair in chunk for s in pair)
  # Every process trains the same deterministic model; only process 0 writes it.
  prefix = os.path.join(workdir, TOKENIZER_NAME)
  if jax.process_index() != 0:
    prefix = os.path.join(workdir, f'.{TOKENIZER_NAME}.process{jax.process_index()}')
  print(f'tokenizer: SentencePiece character_coverage {coverage:g}', file=sys.stderr)
  return train_tokenizer(texts, prefix, config.vocab_size, character_coverage=coverage,
                         model_type=config.get('tokenizer_type', 'unigram'), seed=config.seed)


def _byte_tokenizer(workdir: str) -> ByteTokenizer:
  """<workdir>/bytes.json, written on first use (by process 0; the others write their own copy)."""
  path = os.path.join(workdir, BYTE_TOKENIZER)
  if os.path.exists(path):
    return ByteTokenizer(path)
  if jax.process_index() != 0:
    path = os.path.join(workdir, f'.process{jax.process_index()}.{BYTE_TOKENIZER}')
  return write_byte_tokenizer(path)


def encoded_train_pairs(config, workdir: str, tokenizer: Tokenizer | ByteTokenizer) -> encoded.EncodedPairs:
  """The training split as token ids, from <workdir>/encoded/ (encoded and written on first use).

  Process 0 keeps the cache in the workdir; another process uses it when it is there and
  complete, else encodes into a folder of its own (the workdir need not be shared). The key holds
  the tokenizer file's SHA-256, so it tells unigram, bpe and byte (and any two models) apart.
  """
  split, limit = config.data.train_split, config.data.max_train_examples or None
  key = encoded.cache_key(config.data, split, limit, wd.file_sha256(tokenizer.path))
  folder = wd.encoded_path(workdir, split)
  if jax.process_index() != 0 and encoded.read_manifest(folder) is None:
    folder = wd.encoded_path(workdir, f'.{split}.process{jax.process_index()}')
  pairs, _ = encoded.load_or_build(folder, key, lambda: iter_pairs(config.data, split, limit),
                                   tokenizer)
  return pairs


def encode_pairs(tokenizer: Tokenizer | ByteTokenizer, pairs):
  """[(src text, tgt text)] -> [(src ids, tgt ids)] without EOS/BOS."""
  src = tokenizer.encode_batch([s for s, _ in pairs])
  tgt = tokenizer.encode_batch([t for _, t in pairs])
  return list(zip(src, tgt))
