"""Tokenizers: one joint vocabulary for source and target (config.tokenizer_type).

  'unigram', 'bpe'  a SentencePiece model (`Tokenizer`), trained on the training split
  'byte'            UTF-8 bytes (`ByteTokenizer`, ByT5-style): no model to train, any UTF-8 text;
                    its file (`BYTE_FORMAT`) only records that the workdir uses bytes

Every tokenizer t2t trains or loads uses the special ids of `t2t.data.batch`:
PAD 0, EOS 1, BOS 2, UNK 3. `encode` adds neither BOS nor EOS; the batching code does.
`load` opens either kind from its file.
"""

import io
import json
import os
import random
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import sentencepiece as spm

from t2t.data.batch import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from t2t.errors import UserError
from t2t.files import write_atomic

TOKENIZER_TYPES = ('unigram', 'bpe', 'byte')
_SAMPLING_LOCK = threading.Lock()  # SentencePiece's random generator is one per process

# SentencePiece trains with this many threads whatever the machine; unigram EM sums
# per-thread statistics, so a fixed count keeps a model identical across machines.
_TRAIN_THREADS = 16

# `character_coverage='auto'`: SentencePiece's recommended values, 0.9995 for languages with a
# large character set (Chinese, Japanese, Korean) and 1.0 for the rest.
CJK_COVERAGE = 0.9995
# Unicode character names of the CJK scripts: Han ideographs, kana, Hangul, Bopomofo.
_CJK_NAME_PREFIXES = ('CJK UNIFIED IDEOGRAPH', 'CJK COMPATIBILITY IDEOGRAPH', 'HIRAGANA', 'KATAKANA',
                      'HALFWIDTH KATAKANA', 'HANGUL', 'HALFWIDTH HANGUL', 'BOPOMOFO')


class Tokenizer:
  """A loaded SentencePiece model with t2t's special ids.

  Attributes:
    path: the .model file it was loaded from.
  """

  def __init__(self, model_path: str):
    """Loads a SentencePiece model.

    Args:
      model_path: the `<prefix>.model` file written by `train_tokenizer`.
    Raises:
      UserError: the file is missing, is not a SentencePiece model, or uses other
        special ids than t2t's (PAD 0, EOS 1, BOS 2, UNK 3).
    """
    self.path = model_path
    if not os.path.isfile(model_path):
      raise UserError(f'no tokenizer model at {model_path}: check the path, or train one '
                      '(train_tokenizer writes <prefix>.model)')
    try:
      self._sp = spm.SentencePieceProcessor(model_file=model_path)
    except RuntimeError as e:
      raise UserError(f'{model_path} is not a SentencePiece model ({e}): retrain the '
                      'tokenizer or point at its .model file') from None
    found = (self._sp.pad_id(), self._sp.eos_id(), self._sp.bos_id(), self._sp.unk_id())
    if found != (PAD_ID, EOS_ID, BOS_ID, UNK_ID):
      raise UserError(
          f'{model_path} has special ids pad/eos/bos/unk = {found} but t2t needs '
          f'{(PAD_ID, EOS_ID, BOS_ID, UNK_ID)}: retrain it with t2t (train_tokenizer)')

  @property
  def vocab_size(self) -> int:
    """V, the number of pieces including the four special tokens."""
    return self._sp.get_piece_size()

  def encode(self, text: str) -> list[int]:
    """Token ids of one sentence, without BOS or EOS."""
    return self._sp.encode(text, out_type=int)

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of many sentences; SentencePiece encodes a list in parallel in C++."""
    return self._sp.encode(list(texts), out_type=int)

  def sample_batch(self, texts: Sequence[str], alpha: float, seed: int) -> list[list[int]]:
    """Sampled segmentations of many sentences (subword regularization), the same for the same seed.

    unigram: a segmentation drawn from the whole lattice with smoothing `alpha` (Kudo, 2018);
    bpe: BPE-dropout with rate `alpha` (Provilkov et al., 2020). SentencePiece draws from one
    generator that `set_random_generator_seed` resets; one thread and a lock keep the draws in
    order, so the result depends on (texts, alpha, seed) only.
    """
    with _SAMPLING_LOCK:
      spm.set_random_generator_seed(seed)
      return self._sp.encode(list(texts), out_type=int, enable_sampling=True, alpha=alpha, nbest_size=-1,
                             num_threads=1)

  def decode(self, ids: Iterable[int]) -> str:
    """Text of one row of ids (a list or a 1-D array, e.g. a [T] model output).

    Decoding stops at the first EOS, and PAD and BOS are dropped, so padded rows and
    decoder outputs can be passed as they are.
    """
    return self._sp.decode(_content_ids(ids))

  def decode_batch(self, rows: Iterable[Iterable[int]]) -> list[str]:
    """`decode` for each row, e.g. of a [B, T] array."""
    return self._sp.decode([_content_ids(row) for row in rows])

  def piece(self, id: int) -> str:  # noqa: A002 (sentencepiece names it id)
    """The subword string of one id, e.g. '▁Haus'; for labelling attention plots."""
    return self._sp.id_to_piece(int(id))

  def pieces(self, text: str) -> list[str]:
    """The subword strings `encode` would produce for `text`."""
    return self._sp.encode(text, out_type=str)


def _content_ids(ids):
  """Plain ints up to the first EOS, without PAD and BOS."""
  content = []
  for i in ids:
    i = int(i)
    if i == EOS_ID:
      break
    if i not in (PAD_ID, BOS_ID):
      content.append(i)
  return content


# The byte tokenizer's whole file: what it is and its id layout. Constant, so every byte workdir
# records the same bytes (and the same SHA-256, which the trainer and the encoded cache check).
BYTE_OFFSET = 4                                    # byte b is id b + 4, after PAD, EOS, BOS, UNK
SPECIAL_PIECES = ('<pad>', '</s>', '<s>', '<unk>')
BYTE_FORMAT = {'type': 'byte', 'format': 1, 'byte_offset': BYTE_OFFSET, 'specials': list(SPECIAL_PIECES)}


class ByteTokenizer:
  """ByT5-style tokens: byte b of the UTF-8 text is id b + 4, after the four special ids.

  V = 260. Nothing is normalised, so decode(encode(s)) == s for every string. Decoding bytes
  that are not valid UTF-8 (a model can emit any byte sequence) drops the broken bytes, as
  ByT5's tokenizer does; UNK (never produced by `encode`) decodes to nothing.

  Attributes:
    path: the file that records the workdir uses bytes (`write_byte_tokenizer`).
  """
  offset = BYTE_OFFSET

  def __init__(self, path: str):
    self.path = path
    try:
      with open(path, encoding='utf-8') as f:
        found = json.load(f)
    except FileNotFoundError:
      raise UserError(f'no byte tokenizer file at {path}: check the path') from None
    except (OSError, ValueError) as e:
      raise UserError(f'{path} is not a byte tokenizer file ({e}): delete it to have train.py '
                      'write it again') from None
    if found != BYTE_FORMAT:
      raise UserError(f'{path} describes {found!r}, not the byte tokenizer this t2t knows '
                      f'({BYTE_FORMAT!r}): retrain in a new --workdir')

  @property
  def vocab_size(self) -> int:
    """V = 4 special ids + 256 byte values."""
    return self.offset + 256

  def encode(self, text: str) -> list[int]:
    """Token ids of one sentence, without BOS or EOS: its UTF-8 bytes, shifted by 4."""
    return [b + self.offset for b in text.encode('utf-8')]

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    return [self.encode(t) for t in texts]

  def decode(self, ids: Iterable[int]) -> str:
    """Text of one row of ids, up to the first EOS; specials and broken UTF-8 are dropped."""
    data = bytes(i - self.offset for i in _content_ids(ids) if i >= self.offset)
    return data.decode('utf-8', errors='ignore')

  def decode_batch(self, rows: Iterable[Iterable[int]]) -> list[str]:
    return [self.decode(row) for row in rows]

  def piece(self, id: int) -> str:  # noqa: A002 (the name Tokenizer.piece uses)
    """'<s>' for the specials, the character of a printable ASCII byte, else '<0xAB>'."""
    id = int(id)
    if id < self.offset:
      return SPECIAL_PIECES[id]
    b = id - self.offset
    return chr(b) if 0x21 <= b < 0x7f else f'<0x{b:02X}>'

  def pieces(self, text: str) -> list[str]:
    return [self.piece(i) for i in self.encode(text)]


def write_byte_tokenizer(path: str) -> ByteTokenizer:
  """Writes the byte tokenizer's file (`BYTE_FORMAT`) at `path` and loads it."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  write_atomic(path, (json.dumps(BYTE_FORMAT, sort_keys=True) + '\n').encode('utf-8'))
  return ByteTokenizer(path)


def load(path: str) -> 'Tokenizer | ByteTokenizer':
  """The tokenizer saved at `path`: a byte tokenizer's .json file, else a SentencePiece .model."""
  return ByteTokenizer(path) if path.endswith('.json') else Tokenizer(path)


def train_tokenizer(texts: Iterable[str], model_prefix_path: str, vocab_size: int,
                    character_coverage: float = 1.0, model_type: str = 'unigram',
                    max_sentences: int = 1_000_000, seed: int = 0) -> Tokenizer:
  """Trains a SentencePiece model on in-memory sentences and loads it.

  Training is deterministic: at most `max_sentences` sentences are kept by a reservoir
  sample seeded with `seed`, SentencePiece's own shuffling is off and its thread count
  fixed, so the same texts, arguments and seed give the same model bytes.

  The vocabulary size is a hard limit: when the corpus cannot fill `vocab_size` pieces
  this raises instead of returning a smaller vocabulary, because the model's embedding
  and softmax are sized by the config's vocab_size and should not silently disagree.

  SentencePiece's default `nmt_nfkc` normalisation is kept, so decode(encode(s)) == s
  for text already in NFKC form (ordinary sentences); e.g. '…' comes back as '...'.

  Args:
    texts: sentences, source and target together for a joint vocabulary.
    model_prefix_path: writes `<prefix>.model` and `<prefix>.vocab` (a trailing '.model'
      is ignored); parent folders are created.
    vocab_size: V, the number of pieces including the four special tokens.
    character_coverage: fraction of characters covered by single-character pieces;
      1.0 for Latin-script languages, ~0.9995 for large alphabets (CJK).
    model_type: 'unigram', 'bpe', 'char' or 'word'.
    max_sentences: cap on the sentences trained on: 1M takes ~5 min and ~3 GiB on a
      2-core CPU (bench/RESULTS.md), 2M about twice that.
    seed: seed of the subsample.
  Returns:
    The trained Tokenizer, loaded from `<prefix>.model`.
  Raises:
    UserError: the corpus is empty, or `vocab_size` does not fit it.
  """
  prefix = model_prefix_path.removesuffix('.model')
  os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
  sentences = _reservoir_sample(texts, max_sentences, seed)
  spm.set_random_generator_seed(seed)  # any randomness left inside SentencePiece
  # Trained into memory rather than into files: the model then records no output path
  # (same bytes wherever it is written), and `write_atomic` can place it.
  model = io.BytesIO()
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model,
        vocab_size=vocab_size, character_coverage=character_coverage,
        model_type=model_type, pad_id=PAD_ID, eos_id=EOS_ID, bos_id=BOS_ID,
        unk_id=UNK_ID, input_sentence_size=0, shuffle_input_sentence=False,
        hard_vocab_limit=True, num_threads=_TRAIN_THREADS, minloglevel=1)
  except RuntimeError as e:
    raise _training_error(e, vocab_size, len(sentences)) from None
  write_atomic(prefix + '.vocab', _vocab_text(model.getvalue()).encode('utf-8'))
  # The .model goes last: once it exists, training has finished.
  write_atomic(prefix + '.model', model.getvalue())
  return Tokenizer(prefix + '.model')


def _vocab_text(model_bytes):
  """The .vocab listing SentencePiece writes next to a model: piece TAB score per line."""
  sp = spm.SentencePieceProcessor(model_proto=model_bytes)
  return ''.join(f'{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n'
                 for i in range(sp.get_piece_size()))


def _reservoir_sample(texts, k, seed):
  """A uniform sample of at most k texts, the same for the same input and seed."""
  rng = random.Random(seed)
  sample = []
  for i, text in enumerate(texts):
    if i < k:
      sample.append(text)
    else:
      j = rng.randrange(i + 1)
      if j < k:
        sample[j] = text
  return sample


def _training_error(error, vocab_size, n_sentences):
  """A UserError for the SentencePiece failures a user causes, else `error` itself."""
  message = str(error)
  if too_high := re.search(r'Vocabulary size (?:is )?too high.*?<= *(\d+)', message):
    return UserError(f'config.vocab_size {vocab_size} is too large for this corpus '
                     f'({n_sentences} sentences): set it to at most {too_high[1]}, or '
                     'train on more text')
  if too_small := re.search(r'smaller than required_chars\. *\d+ vs (\d+)', message):
    return UserError(f'config.vocab_size {vocab_size} is smaller than the {too_small[1]} '
                     'characters and special tokens the corpus needs: raise it to at '
                     f'least {too_small[1]}, or lower character_coverage')
  if '!sentences_.empty()' in message:
    return UserError('no sentences to train the tokenizer on: the training corpus is '
                     'empty; check the data source in the config')
  return error


def cjk_share(texts: Iterable[str]) -> float:
  """Fraction of the letters (Unicode category L*) in `texts` that belong to a CJK script."""
  counts: Counter[str] = Counter()
  for text in texts:
    counts.update(text)
  letters = cjk = 0
  for char, n in counts.items():
    if unicodedata.category(char).startswith('L'):
      letters += n
      if unicodedata.name(char, '').startswith(_CJK_NAME_PREFIXES):
        cjk += n
  return cjk / letters if letters else 0.0


def resolve_character_coverage(setting, sides: Sequence[Iterable[str]]) -> float:
  """The SentencePiece character_coverage for `config.character_coverage`.

  'auto': 0.9995 when CJK characters are more than half of the letters on at least one side
  (e.g. the source sentences or the target sentences of the tokenizer's training sample),
  else 1.0. Per side rather than over the joint text, because a joint vocabulary with English
  still holds the whole Japanese character set (on small_parallel_enja the Japanese side is 99.9%
  CJK letters but only 35% of all letters). A number (or its string, as the command line gives
  it) in (0, 1] is used as it is.

  Args:
    setting: 'auto', or a coverage such as 1.0, 0.9995 or '0.9995'.
    sides: one iterable of sentences per language side.
  Raises:
    UserError: `setting` is neither 'auto' nor a number in (0, 1].
  """
  if setting == 'auto':
    return CJK_COVERAGE if any(cjk_share(side) > 0.5 for side in sides) else 1.0
  try:
    coverage = float(setting)
  except (TypeError, ValueError):
    coverage = float('nan')
  if not 0.0 < coverage <= 1.0:
    raise UserError(f"config.character_coverage={setting!r}: use 'auto' or a number in (0, 1], "
                    "e.g. --config.character_coverage=0.9995")
  return coverage
