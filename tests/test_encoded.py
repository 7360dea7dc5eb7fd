"""The encoded training corpus in the workdir: round trip, reuse, refusal, killed preparations."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT, builtin_corpus

import configs.tiny
from t2t import workdir as wd
from t2t.data import encoded, pipeline
from t2t.errors import UserError


class CharTokenizer:
  """One id per character: enough to test storage without training SentencePiece."""
  vocab_size = 1004

  def encode_batch(self, texts):
    return [[ord(c) % 1000 + 4 for c in text] for text in texts]


PAIRS = [(f'source {i} ' + 'x' * (i % 7), f'Ziel {i}' + 'y' * (i % 5)) for i in range(250)]
KEY = {'format': encoded.FORMAT, 'tokenizer_sha256': 'a' * 64, 'split': 'train', 'max_examples': None,
       'tfds_data_dir': None, 'source': 'text', 'path': '/corpus', 'tfds_name': '', 'src_lang': 'en',
       'tgt_lang': 'de'}


def chunks(pairs, size=64):
  return lambda: (pairs[i:i + size] for i in range(0, len(pairs), size))


def must_not_read():
  raise AssertionError('the cache was not reused: the corpus was read again')


def assert_holds(pairs, expected):
  assert len(pairs) == len(expected)
  tokenizer = CharTokenizer()
  for i, (src, tgt) in enumerate(expected):
    got_src, got_tgt = pairs.pair(i)
    np.testing.assert_array_equal(got_src, tokenizer.encode_batch([src])[0])
    np.testing.assert_array_equal(got_tgt, tokenizer.encode_batch([tgt])[0])


def test_round_trip_and_reuse(tmp_path):
  folder = str(tmp_path / 'encoded' / 'train')
  built, manifest = encoded.load_or_build(folder, KEY, chunks(PAIRS), CharTokenizer())
  assert manifest['pairs'] == len(PAIRS) and manifest['dtype'] == 'uint16'
  assert_holds(built, PAIRS)
  again, _ = encoded.load_or_build(folder, KEY, must_not_read, CharTokenizer())
  assert isinstance(again.src_tokens, np.memmap)
  assert_holds(again, PAIRS)
  kept, dropped = again.filter_by_length(12)
  assert dropped == sum(len(s) >= 12 or len(t) >= 12 for s, t in PAIRS) > 0
  assert_holds(kept, [p for p in PAIRS if len(p[0]) < 12 and len(p[1]) < 12])
  assert sorted(os.listdir(tmp_path / 'encoded')) == ['train']


@pytest.mark.parametrize('field, value', [('tokenizer_sha256', 'b' * 64), ('path', '/other'),
                                          ('src_lang', 'fr')])
def test_another_tokenizer_or_corpus_is_refused(tmp_path, field, value):
  folder = str(tmp_path / 'train')
  encoded.load_or_build(folder, KEY, chunks(PAIRS), CharTokenizer())
  with pytest.raises(UserError) as error:
    encoded.load_or_build(folder, {**KEY, field: value}, must_not_read, CharTokenizer())
  assert folder in str(error.value) and '\n' not in str(error.value)
  assert_holds(encoded.load_or_build(folder, KEY, must_not_read, CharTokenizer())[0], PAIRS)


def test_other_limit_encodes_again(tmp_path):
  folder = str(tmp_path / 'train')
  encoded.load_or_build(folder, KEY, chunks(PAIRS), CharTokenizer())
  fewer, _ = encoded.load_or_build(folder, {**KEY, 'max_examples': 100}, chunks(PAIRS[:100]),
                                   CharTokenizer())
  assert_holds(fewer, PAIRS[:100])


_KILLED_BUILD = '''
import sys, time
from t2t.data import encoded
sys.path.insert(0, 'tests')
from test_encoded import KEY, PAIRS, CharTokenizer
def slow():
  for i in range(0, len(PAIRS), 64):
    yield PAIRS[i:i + 64]
    if i == 128:
      print('written', flush=True)
      time.sleep(600)
encoded.load_or_build(sys.argv[1], {**KEY, 'max_examples': 7}, slow, CharTokenizer())
'''


@pytest.mark.parametrize('existing', [False, True])
def test_killed_preparation_is_never_trusted(tmp_path, existing):
  """SIGKILL in the middle of writing: what is left is the old cache or nothing, never a part."""
  folder = str(tmp_path / 'encoded' / 'train')
  if existing:
    encoded.load_or_build(folder, KEY, chunks(PAIRS[:30]), CharTokenizer())
  process = subprocess.Popen([sys.executable, '-c', _KILLED_BUILD, folder], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, env={**os.environ, 'PYTHONPATH': ROOT})
  assert process.stdout.readline().strip() == 'written'
  process.send_signal(signal.SIGKILL)
  process.wait(timeout=60)
  process.stdout.close()
  assert any(n.startswith('.train.tmp-') for n in os.listdir(tmp_path / 'encoded'))  # it was writing
  manifest = encoded.read_manifest(folder)
  if existing:
    assert manifest['key'] == KEY
    assert_holds(encoded.load_or_build(folder, KEY, must_not_read, CharTokenizer())[0], PAIRS[:30])
  else:
    assert manifest is None
  rebuilt, _ = encoded.load_or_build(folder, {**KEY, 'max_examples': 7}, chunks(PAIRS), CharTokenizer())
  assert_holds(rebuilt, PAIRS)
  assert sorted(os.listdir(tmp_path / 'encoded')) == ['train']  # the killed run's leftovers are gone


def test_pipeline_encodes_once_and_refuses_a_replaced_tokenizer(tmp_path, monkeypatch):
  config = configs.tiny.get_config()
  config.data.source = 'text'
  config.data.path = str(builtin_corpus(tmp_path, train=300, val=5))
  workdir = str(tmp_path / 'w')
  tokenizer = pipeline.get_tokenizer(config, workdir)
  first = pipeline.encoded_train_pairs(config, workdir, tokenizer)
  expected = pipeline.encode_pairs(tokenizer, pipeline.load_pairs(config.data, 'train'))
  assert len(first) == 300
  for i in (0, 123, 299):
    np.testing.assert_array_equal(first.pair(i)[1], expected[i][1])
  other = pipeline.get_tokenizer(configs.tiny.get_config(), str(tmp_path / 'other'))
  monkeypatch.setattr(pipeline, 'iter_pairs', lambda *a, **k: must_not_read())
  second = pipeline.encoded_train_pairs(config, workdir, pipeline.get_tokenizer(config, workdir))
  np.testing.assert_array_equal(second.tgt_tokens, first.tgt_tokens)
  os.replace(other.path, tokenizer.path)
  with pytest.raises(UserError, match='tokenizer'):
    pipeline.encoded_train_pairs(config, workdir, pipeline.get_tokenizer(config, workdir))


@pytest.mark.parametrize('kind', ['byte', 'bpe'])
def test_pipeline_tokenizer_types(tmp_path, kind):
  config = configs.tiny.get_config()
  config.data.source = 'text'
  config.data.path = str(builtin_corpus(tmp_path, train=300, val=5))
  unigram = pipeline.get_tokenizer(config, str(tmp_path / 'unigram'))
  config.tokenizer_type = kind
  workdir = str(tmp_path / 'w')
  tokenizer = pipeline.get_tokenizer(config, workdir)
  assert os.path.basename(tokenizer.path) == {'byte': 'bytes.json', 'bpe': 'spm.model'}[kind]
  assert wd.tokenizer_path(workdir) == tokenizer.path
  assert type(wd.load_tokenizer(workdir)) is type(tokenizer)
  assert tokenizer.vocab_size == (260 if kind == 'byte' else config.vocab_size)
  # The cache key holds the tokenizer file's SHA-256: each type has its own.
  assert wd.file_sha256(tokenizer.path) != wd.file_sha256(unigram.path)
  pairs = pipeline.encoded_train_pairs(config, workdir, tokenizer)
  text = pipeline.load_pairs(config.data, 'train')
  assert tokenizer.decode(pairs.pair(7)[1]) == text[7][1]
  if kind == 'byte':
    assert list(pairs.pair(7)[0]) == [b + 4 for b in text[7][0].encode('utf-8')]
    assert not os.path.exists(os.path.join(workdir, 'spm.model'))
