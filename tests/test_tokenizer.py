"""SentencePiece training and the Tokenizer wrapper: ids, round trips, determinism, errors."""

import os
import random
import unicodedata

import numpy as np
import pytest

from t2t.data import tokenizer as tokenizer_lib
from t2t.data.batch import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from t2t.data.tokenizer import ByteTokenizer, Tokenizer, cjk_share, resolve_character_coverage, train_tokenizer
from t2t.errors import UserError

_EN = ['the', 'a', 'man', 'woman', 'dog', 'child', 'is', 'runs', 'eats', 'in', 'park',
       'street', 'red', 'small', 'with', 'ball', 'house', 'water', 'two', 'people']
_DE = ['der', 'die', 'das', 'ein', 'Mann', 'Frau', 'Hund', 'Kind', 'läuft', 'isst',
       'über', 'Straße', 'größer', 'schön', 'Mädchen', 'Bäume', 'Fußball', 'grün', 'zwei',
       'Häuser']


def _corpus(n=300, seed=0):
  """Short English and German sentences with punctuation, umlauts and ß."""
  rng = random.Random(seed)
  sentences = []
  for i in range(n):
    words = _EN if i % 2 else _DE
    sentence = ' '.join(rng.choice(words) for _ in range(rng.randint(3, 9)))
    sentences.append(sentence.capitalize() + rng.choice(['.', '!', '?', ', ja.', ' (2).']))
  return sentences


@pytest.fixture(scope='module')
def tokenizer(tmp_path_factory):
  prefix = tmp_path_factory.mktemp('tok') / 'spm'
  return train_tokenizer(_corpus(), str(prefix), vocab_size=120)


def test_special_ids_are_fixed(tokenizer):
  assert tokenizer.vocab_size == 120
  assert [tokenizer.piece(i) for i in (PAD_ID, EOS_ID, BOS_ID, UNK_ID)] == [
      '<pad>', '</s>', '<s>', '<unk>']
  ids = tokenizer.encode('Der Mann läuft.')
  assert ids and not {PAD_ID, EOS_ID, BOS_ID} & set(ids)  # encode adds no specials


@pytest.mark.parametrize('text', [
    'Der Mann läuft über die Straße.',
    'Zwei Mädchen, größer als die Bäume!',
    'A small dog eats in the park?',
    'the red ball (2).',
])
def test_round_trip(tokenizer, text):
  assert tokenizer.decode(tokenizer.encode(text)) == text


def test_batch_matches_single(tokenizer):
  texts = _corpus(20, seed=1)
  ids = tokenizer.encode_batch(texts)
  assert ids == [tokenizer.encode(t) for t in texts]
  assert tokenizer.decode_batch(ids) == texts


def test_decode_stops_at_eos_and_drops_pad_and_bos(tokenizer):
  first, second = tokenizer.encode('Der Hund.'), tokenizer.encode('Die Frau.')
  row = np.array([BOS_ID] + first + [EOS_ID] + second + [EOS_ID, PAD_ID, PAD_ID], np.int32)
  assert tokenizer.decode(row) == 'Der Hund.'
  width = max(len(first), len(second)) + 4
  rows = [[BOS_ID] + first, second + [EOS_ID, UNK_ID]]  # UNK after EOS must not show
  padded = np.array([row + [PAD_ID] * (width - len(row)) for row in rows])
  assert tokenizer.decode_batch(padded) == ['Der Hund.', 'Die Frau.']


def test_pieces_match_ids(tokenizer):
  text = 'Ein Kind isst.'
  assert tokenizer.pieces(text) == [tokenizer.piece(i) for i in tokenizer.encode(text)]


def test_training_is_deterministic(tmp_path):
  texts = _corpus(400, seed=2)
  a = train_tokenizer(texts, str(tmp_path / 'a'), vocab_size=100, max_sentences=250, seed=3)
  b = train_tokenizer(iter(texts), str(tmp_path / 'b'), vocab_size=100, max_sentences=250,
                      seed=3)
  assert (tmp_path / 'a.model').read_bytes() == (tmp_path / 'b.model').read_bytes()
  assert a.encode_batch(texts) == b.encode_batch(texts)


def test_training_writes_only_final_files(tmp_path):
  train_tokenizer(_corpus(100), str(tmp_path / 'out' / 'spm.model'), vocab_size=60)
  assert sorted(os.listdir(tmp_path / 'out')) == ['spm.model', 'spm.vocab']


def test_too_large_vocab_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match=r'config\.vocab_size 5000 .* at most \d+') as info:
    train_tokenizer(_corpus(50), str(tmp_path / 'spm'), vocab_size=5000)
  assert '\n' not in str(info.value)
  assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_too_small_vocab_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match=r'config\.vocab_size 10 .* at least \d+'):
    train_tokenizer(_corpus(50), str(tmp_path / 'spm'), vocab_size=10)


def test_empty_corpus_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match='empty'):
    train_tokenizer([], str(tmp_path / 'spm'), vocab_size=50)


def test_loading_errors(tmp_path):
  with pytest.raises(UserError, match='no tokenizer model at .*missing.model'):
    Tokenizer(str(tmp_path / 'missing.model'))
  (tmp_path / 'junk.model').write_bytes(b'not a model')
  with pytest.raises(UserError, match='junk.model is not a SentencePiece model'):
    Tokenizer(str(tmp_path / 'junk.model'))


# Japanese as it is usually written (no spaces), and as small_parallel_enja distributes it.
_JA = ['私は学生です。', '彼は東京に住んでいます。', 'この本はとても面白かった。', '明日は雨が降るでしょう。',
       'コーヒーを一杯ください。', '駅までどのくらいかかりますか？', '彼 は 水泳 が 得意 で は な かっ た 。',
       '誰 が 一番 に 着 く か 私 に は 分か り ま せ ん 。']


def test_coverage_auto_follows_the_script():
  german, english = _corpus(200)[::2], _corpus(200)[1::2]
  assert resolve_character_coverage('auto', [english, german]) == 1.0
  assert resolve_character_coverage('auto', [english, _JA]) == 0.9995
  assert resolve_character_coverage('auto', [_JA, english]) == 0.9995
  # Joint text with long English sentences: Japanese is a minority of all letters, but one
  # side is Japanese, which is what fills a vocabulary with characters.
  long_english = [' '.join(['international'] * 20)] * len(_JA)
  assert cjk_share(_JA + long_english) < 0.5
  assert resolve_character_coverage('auto', [long_english, _JA]) == 0.9995
  assert cjk_share(['Straße 東京']) == pytest.approx(2 / 8)  # letters only: no spaces, digits


def test_coverage_can_be_set():
  assert resolve_character_coverage(0.98, [_JA]) == 0.98
  assert resolve_character_coverage('0.9995', [['abc']]) == 0.9995  # from --config.character_coverage
  for bad in ('full', '0', '1.5'):
    with pytest.raises(UserError, match=r'config.character_coverage'):
      resolve_character_coverage(bad, [_JA])


def test_japanese_round_trip(tmp_path):
  rng = random.Random(0)
  corpus = [rng.choice(_JA) for _ in range(400)] + _corpus(100)
  coverage = resolve_character_coverage('auto', [_corpus(100), _JA])
  tokenizer = train_tokenizer(corpus, str(tmp_path / 'spm'), vocab_size=150, character_coverage=coverage)
  for text in _JA + ['私は東京の学生です。']:
    ids = tokenizer.encode(text)
    assert UNK_ID not in ids
    # SentencePiece's nmt_nfkc normalisation: full-width '？' comes back as '?'.
    assert tokenizer.decode(ids) == unicodedata.normalize('NFKC', text)
  assert tokenizer.decode(tokenizer.encode('駅まで？')) == '駅まで?'


# --- config.tokenizer_type 'byte' and 'bpe' ------------------------------------------------------

_UTF8 = ['Crème brûlée à São Paulo, naïve Ångström', '東京で寿司を食べました。', '서울 날씨가 좋네요',
         'Emoji: 👩‍👩‍👧 🇩🇪 🎉 ✓', 'Ελληνικά καὶ русский', 'tabs\tand  double  spaces ', '…！？ﬁ',
         '\u200b zero width and é (e + combining acute)', '']


@pytest.fixture
def byte_tokenizer(tmp_path):
  return tokenizer_lib.write_byte_tokenizer(str(tmp_path / 'bytes.json'))


@pytest.mark.parametrize('text', _UTF8)
def test_byte_round_trips_any_utf8(byte_tokenizer, text):
  ids = byte_tokenizer.encode(text)
  assert len(ids) == len(text.encode('utf-8')) and min(ids, default=4) >= 4
  assert byte_tokenizer.decode(ids) == text  # exact: no normalisation (unlike SentencePiece's NFKC)
  assert byte_tokenizer.decode(ids + [EOS_ID, 70, 71]) == text  # stops at EOS


def test_byte_round_trips_random_code_points(byte_tokenizer):
  rng = random.Random(0)
  planes = [(0x20, 0x7e), (0xa0, 0x24f), (0x3040, 0x30ff), (0x4e00, 0x9fff), (0xac00, 0xd7a3),
            (0x1f300, 0x1faff), (0x10000, 0x10ffff)]
  texts = [''.join(chr(rng.randint(*rng.choice(planes))) for _ in range(rng.randint(1, 40)))
           for _ in range(200)]
  assert byte_tokenizer.decode_batch(byte_tokenizer.encode_batch(texts)) == texts


def test_byte_ids_pieces_and_broken_bytes(byte_tokenizer):
  assert byte_tokenizer.vocab_size == 260
  assert [byte_tokenizer.piece(i) for i in (PAD_ID, EOS_ID, BOS_ID, UNK_ID)] == ['<pad>', '</s>', '<s>', '<unk>']
  assert byte_tokenizer.pieces('aé') == ['a', '<0xC3>', '<0xA9>']
  assert byte_tokenizer.encode('A') == [ord('A') + 4]
  # A model may emit a cut multi-byte character: it is dropped, the rest decodes.
  broken = byte_tokenizer.encode('ab') + byte_tokenizer.encode('é')[:1] + byte_tokenizer.encode('c')
  assert byte_tokenizer.decode([BOS_ID, *broken, PAD_ID]) == 'abc'


def test_byte_file_is_constant_and_checked(tmp_path, byte_tokenizer):
  again = tokenizer_lib.write_byte_tokenizer(str(tmp_path / 'again' / 'bytes.json'))
  with open(again.path, 'rb') as a, open(byte_tokenizer.path, 'rb') as b:
    assert a.read() == b.read()  # same SHA-256 in every workdir: the cache key and resume check rely on it
  assert isinstance(tokenizer_lib.load(byte_tokenizer.path), ByteTokenizer)
  (tmp_path / 'other.json').write_text('{"type": "byte", "format": 2}')
  with pytest.raises(UserError, match='not the byte tokenizer'):
    ByteTokenizer(str(tmp_path / 'other.json'))
  (tmp_path / 'junk.json').write_text('{')
  with pytest.raises(UserError, match='junk.json is not a byte tokenizer file'):
    tokenizer_lib.load(str(tmp_path / 'junk.json'))


def test_bpe_trains_and_round_trips(tmp_path, tokenizer):
  bpe = train_tokenizer(_corpus(), str(tmp_path / 'bpe'), vocab_size=120, model_type='bpe')
  assert isinstance(tokenizer_lib.load(bpe.path), Tokenizer) and bpe.vocab_size == 120
  assert [bpe.piece(i) for i in (PAD_ID, EOS_ID, BOS_ID, UNK_ID)] == ['<pad>', '</s>', '<s>', '<unk>']
  texts = _corpus(30, seed=3)
  assert bpe.decode_batch(bpe.encode_batch(texts)) == texts
  with open(bpe.path, 'rb') as b, open(tokenizer.path, 'rb') as u:
    assert b.read() != u.read()  # another model: another SHA-256, so another encoded-cache key
  assert [bpe.pieces(t) for t in texts] != [tokenizer.pieces(t) for t in texts]
