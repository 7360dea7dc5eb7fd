"""From `config.data` to token ids: pick the source, train or load the tokenizer, encode.

Sources (config.data.source):
  'builtin'  the synthetic English->German corpus shipped with t2t (offline demo)
  'text'     <config.data.path>/<split>.<lang> files, one sentence per line
  'tfds'     any TensorFlow Datasets translation dataset (config.data.tfds_name)
"""

import logging
import os
import sys

import jax

from t2t import demo_corpus
from t2t.data import text
from t2t.data.tokenizer import Tokenizer, resolve_character_coverage, train_tokenizer
from t2t.errors import UserError
from t2t.files import write_atomic
from t2t.workdir import TOKENIZER_MODEL, TOKENIZER_NAME  # noqa: F401  (TOKENIZER_NAME: export.py)


def load_pairs(data_config, split: str, max_examples: int | None = None) -> list[tuple[str, str]]:
  """Sentence pairs (source, target) of one split, in the configured direction."""
  source = data_config.source
  if source == 'builtin':
    pairs = demo_corpus.load_builtin(split)
    if (data_config.src_lang, data_config.tgt_lang) == ('de', 'en'):
      pairs = [(de, en) for en, de in pairs]
    elif (data_config.src_lang, data_config.tgt_lang) != ('en', 'de'):
      raise UserError('the builtin corpus is English-German: set config.data.src_lang/tgt_lang '
                      "to 'en'/'de' or 'de'/'en'")
  elif source == 'text':
    if not data_config.path:
      raise UserError("config.data.path is empty: set it to the folder holding <split>.<lang> files, "
                      "e.g. --config.data.path=../shared/data/multi30k")
    src_path, tgt_path = text.split_paths(data_config.path, split, data_config.src_lang,
                                          data_config.tgt_lang)
    pairs, stats = text.read_parallel(src_path, tgt_path)
    if stats.get('empty_skipped'):
      logging.warning('%s/%s: skipped %d pairs with an empty side', src_path, tgt_path,
                      stats['empty_skipped'])
  elif source == 'tfds':
    from t2t.data import tfds_source  # keeps TensorFlow out of every other path
    pairs = tfds_source.load_tfds(data_config.tfds_name, split, data_config.src_lang,
                                  data_config.tgt_lang, data_config.tfds_data_dir or None,
                                  max_examples=max_examples)
  else:
    raise UserError(f"config.data.source={source!r}: use 'builtin', 'text' or 'tfds'")
  return pairs[:max_examples] if max_examples else pairs


def get_tokenizer(config, workdir: str, train_pairs) -> Tokenizer:
  """The workdir's tokenizer; trained on the training pairs (joint vocabulary) on first use.

  `config.tokenizer_path` names an existing SentencePiece model to copy in instead.
  """
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
  texts = [s for pair in train_pairs for s in pair]
  coverage = resolve_character_coverage(config.get('character_coverage', 'auto'),
                                        [[s for s, _ in train_pairs], [t for _, t in train_pairs]])
  # Every process trains the same deterministic model; only process 0 writes it.
  prefix = os.path.join(workdir, TOKENIZER_NAME)
  if jax.process_index() != 0:
    prefix = os.path.join(workdir, f'.{TOKENIZER_NAME}.process{jax.process_index()}')
  print(f'tokenizer: SentencePiece character_coverage {coverage:g}', file=sys.stderr)
  return train_tokenizer(texts, prefix, config.vocab_size, character_coverage=coverage,
                         seed=config.seed)


def encode_pairs(tokenizer: Tokenizer, pairs):
  """[(src text, tgt text)] -> [(src ids, tgt ids)] without EOS/BOS."""
  src = tokenizer.encode_batch([s for s, _ in pairs])
  tgt = tokenizer.encode_batch([t for _, t in pairs])
  return list(zip(src, tgt))

