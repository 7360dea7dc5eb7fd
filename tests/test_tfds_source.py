"""TFDS translation datasets, read through `tfds.testing.mock_data` so nothing is downloaded."""

import re
import subprocess
import sys

import pytest

from t2t.data.tfds_source import iter_tfds, load_tfds
from t2t.errors import UserError


@pytest.fixture(scope='module')
def tfds():
  return pytest.importorskip('tensorflow_datasets')


def _fixed_examples(tfds, examples):
  """A mock_data `as_dataset_fn` that serves `examples`, a list of {lang: text} dicts."""
  import tensorflow as tf  # (only with TFDS installed)

  def as_dataset(self, *args, **kwargs):
    del self, args, kwargs  # the same examples for every split
    columns = {lang: [e[lang] for e in examples] for lang in examples[0]}
    return tf.data.Dataset.from_tensor_slices(columns)

  return tfds.testing.mock_data(as_dataset_fn=as_dataset)


_EXAMPLES = [
    {'de': 'Hallo  Welt 0', 'en': ' Hello world 0 '},
    {'de': '', 'en': 'Nobody translated this'},
    {'de': 'Grüße\taus Köln 2', 'en': 'Greetings\u00a0from Cologne 2'},
    {'de': 'Drei 3', 'en': 'Three 3'},
]


@pytest.mark.parametrize('src_lang, tgt_lang', [('en', 'de'), ('de', 'en')])
def test_direction_follows_language_keys(tfds, src_lang, tgt_lang):
  with _fixed_examples(tfds, _EXAMPLES):
    pairs = load_tfds('wmt14_translate/de-en', 'train', src_lang, tgt_lang)
  by_lang = {'de': ['Hallo Welt 0', 'Grüße aus Köln 2', 'Drei 3'],
             'en': ['Hello world 0', 'Greetings from Cologne 2', 'Three 3']}
  # Normalised whitespace, and the pair with an empty German side is skipped.
  assert pairs == list(zip(by_lang[src_lang], by_lang[tgt_lang]))


def test_max_examples_counts_kept_pairs(tfds):
  with _fixed_examples(tfds, _EXAMPLES):
    assert load_tfds('wmt14_translate/de-en', 'train', 'en', 'de', max_examples=2) == [
        ('Hello world 0', 'Hallo Welt 0'), ('Greetings from Cologne 2', 'Grüße aus Köln 2')]


def test_random_mock_data_and_max_examples(tfds):
  # The default mock draws an independent random string of ' abcdefghij' per feature.
  with tfds.testing.mock_data(num_examples=40):
    everything = load_tfds('ted_hrlr_translate/pt_to_en', 'validation', 'pt', 'en')
    first = load_tfds('ted_hrlr_translate/pt_to_en', 'validation', 'pt', 'en', max_examples=7)
  assert len(everything) == 40
  assert first == everything[:7]
  assert all(src != tgt and re.fullmatch('[a-j]+( [a-j]+)*', src) for src, tgt in everything)


def test_missing_language_lists_available_keys(tfds):
  with tfds.testing.mock_data(num_examples=2):
    with pytest.raises(UserError) as info:
      load_tfds('wmt14_translate/de-en', 'train', 'en', 'fr')
  message = str(info.value)
  assert "wmt14_translate/de-en has no language 'fr'" in message
  assert '(its features: de, en)' in message
  assert '\n' not in message


def test_unknown_dataset_and_config(tfds):
  with pytest.raises(UserError, match="cannot open TFDS dataset 'no_such_translate'"):
    load_tfds('no_such_translate', 'train', 'en', 'de')
  with pytest.raises(UserError, match='configs: .*wmt14_translate/de-en') as info:
    load_tfds('wmt14_translate/en-de', 'train', 'en', 'de')
  assert '\n' not in str(info.value)


def test_unprepared_dataset_without_download(tfds, tmp_path):
  with pytest.raises(UserError) as info:
    load_tfds('ted_hrlr_translate/pt_to_en', 'train', 'pt', 'en', data_dir=str(tmp_path),
              download=False)
  message = str(info.value)
  assert f'not prepared in {tmp_path}' in message
  assert 'tfds build ted_hrlr_translate/pt_to_en' in message
  assert '\n' not in message


def test_unreachable_download_is_one_line(tfds, monkeypatch, tmp_path):
  def offline(self, *args, **kwargs):
    raise ConnectionError('Max retries exceeded with url: /data.tar.gz\n(name resolution)')

  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', offline)
  with pytest.raises(UserError) as info:
    load_tfds('ted_hrlr_translate/pt_to_en', 'train', 'pt', 'en', data_dir=str(tmp_path))
  message = str(info.value)
  assert 'cannot download TFDS dataset ted_hrlr_translate/pt_to_en' in message
  assert 'tfds build ted_hrlr_translate/pt_to_en' in message
  assert 'config.data.tfds_data_dir' in message
  assert '\n' not in message


def test_missing_tfds_is_a_user_error(monkeypatch):
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)  # makes the import fail
  with pytest.raises(UserError, match=re.escape("pip install 't2t[tfds]'")):
    load_tfds('wmt14_translate/de-en', 'train', 'en', 'de')


def test_import_does_not_import_tensorflow():
  code = ('import sys, t2t.data.tfds_source, t2t.data.text, t2t.data.tokenizer\n'
          "loaded = [m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules]\n"
          'assert not loaded, loaded\n')
  subprocess.run([sys.executable, '-c', code], check=True)


def test_iter_tfds_streams_bounded_chunks(tfds):
  """A WMT-sized split is handed on a tf.data batch at a time, never collected whole."""
  with tfds.testing.mock_data(num_examples=2500):
    chunks = iter_tfds('ted_hrlr_translate/pt_to_en', 'validation', 'pt', 'en')
    first = next(chunks)
    rest = list(chunks)
    everything = load_tfds('ted_hrlr_translate/pt_to_en', 'validation', 'pt', 'en')
  assert 0 < len(first) <= 1024 and all(len(c) <= 1024 for c in rest)
  assert first + [p for c in rest for p in c] == everything and len(everything) == 2500
