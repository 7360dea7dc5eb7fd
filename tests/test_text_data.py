"""Reading line-aligned parallel text files, and the errors a user can act on."""

import re

import pytest

from t2t.data.text import read_lines, read_parallel, split_paths
from t2t.errors import UserError


def _write(path, data):
  path.write_bytes(data.encode('utf-8') if isinstance(data, str) else data)
  return str(path)


def test_split_paths_follow_multi30k_layout(tmp_path):
  assert split_paths(str(tmp_path), 'test2016', 'en', 'de') == (
      str(tmp_path / 'test2016.en'), str(tmp_path / 'test2016.de'))


def test_reads_pairs_and_normalises_whitespace(tmp_path):
  src = _write(tmp_path / 'train.en',
               ' A man\u00a0runs. \nTwo\t\tdogs  play.\r\n\ufeffNot a BOM here.\n')
  tgt = _write(tmp_path / 'train.de',
               '\ufeffEin Mann läuft.\t\n \u00a0Zwei Hunde spielen. \nKein BOM.')
  pairs, stats = read_parallel(src, tgt)
  assert pairs == [('A man runs.', 'Ein Mann läuft.'),
                   ('Two dogs play.', 'Zwei Hunde spielen.'),
                   ('\ufeffNot a BOM here.', 'Kein BOM.')]  # only a first-line BOM is dropped
  assert stats == {'lines': 3, 'empty_skipped': 0, 'pairs': 3}


def test_empty_sides_are_skipped_without_shifting(tmp_path):
  src = _write(tmp_path / 'train.en', 'one\n\nthree\n   \nfive\nsix\n')
  tgt = _write(tmp_path / 'train.de', 'eins\nzwei\n\nvier\n\u00a0\t\nsechs\n')
  pairs, stats = read_parallel(src, tgt)
  assert pairs == [('one', 'eins'), ('six', 'sechs')]
  assert stats == {'lines': 6, 'empty_skipped': 4, 'pairs': 2}


def test_carriage_return_inside_a_line_does_not_split_it(tmp_path):
  src = _write(tmp_path / 'a.en', 'left\rright\nnext\n')
  tgt = _write(tmp_path / 'a.de', 'links rechts\nweiter\n')
  pairs, _ = read_parallel(src, tgt)
  assert pairs == [('left right', 'links rechts'), ('next', 'weiter')]


def test_missing_file_lists_what_is_there(tmp_path):
  for name in ('train.en', 'train.de', 'val.en', 'val.de'):
    _write(tmp_path / name, 'x\n')
  src, tgt = split_paths(str(tmp_path), 'test2016', 'en', 'de')
  with pytest.raises(UserError) as info:
    read_parallel(src, tgt)
  message = str(info.value)
  assert '\n' not in message
  assert f'no such file {src}' in message
  assert 'config.data.path' in message
  assert 'found: train.de, train.en, val.de, val.en' in message


def test_missing_line_file_names_the_flag_that_named_it(tmp_path):
  with pytest.raises(UserError) as info:
    read_lines(str(tmp_path / 'prefixes.de'), '--prefix_file')
  assert 'check --prefix_file' in str(info.value) and 'config.data.path' not in str(info.value)


def test_missing_target_is_reported(tmp_path):
  src = _write(tmp_path / 'train.en', 'x\n')
  with pytest.raises(UserError, match=re.escape(f'no such file {tmp_path / "train.fr"}')):
    read_parallel(src, str(tmp_path / 'train.fr'))


def test_missing_directory(tmp_path):
  src, tgt = split_paths(str(tmp_path / 'nowhere'), 'train', 'en', 'de')
  with pytest.raises(UserError, match='does not exist'):
    read_parallel(src, tgt)


@pytest.mark.parametrize('n_src, n_tgt', [(3, 5), (5, 3)])
def test_line_count_mismatch_names_both_files_and_counts(tmp_path, n_src, n_tgt):
  src = _write(tmp_path / 'train.en', 'a\n' * n_src)
  tgt = _write(tmp_path / 'train.de', 'b\n' * n_tgt)
  with pytest.raises(UserError) as info:
    read_parallel(src, tgt)
  message = str(info.value)
  assert f'{src} has {n_src} lines but {tgt} has {n_tgt}' in message
  assert '\n' not in message


def test_invalid_utf8_names_file_line_and_offset(tmp_path):
  src = _write(tmp_path / 'train.en', 'ok\nfine\nthird\n')
  # 'ok\n' is 3 bytes, 'Gr' 2 more: the Latin-1 'ü' (0xfc) sits at byte offset 5.
  tgt = _write(tmp_path / 'train.de', b'ok\nGr\xfcn\ndrei\n')
  with pytest.raises(UserError) as info:
    read_parallel(src, tgt)
  message = str(info.value)
  assert f'{tgt} line 2 (byte offset 5) is not valid UTF-8' in message
  assert '\n' not in message


@pytest.mark.parametrize('src_text, tgt_text, reason', [
    ('', '', 'both files are empty'),
    ('a\n\n \n', '\nb\n\n', 'all 3 lines are empty on at least one side'),
])
def test_empty_corpus(tmp_path, src_text, tgt_text, reason):
  src = _write(tmp_path / 'train.en', src_text)
  tgt = _write(tmp_path / 'train.de', tgt_text)
  with pytest.raises(UserError, match=re.escape(f'no sentence pairs in {src} and {tgt}: {reason}')):
    read_parallel(src, tgt)


def _text_config(folder):
  import ml_collections
  return ml_collections.ConfigDict({'source': 'text', 'path': str(folder), 'src_lang': 'en', 'tgt_lang': 'de'})


def test_a_partly_read_corpus_still_has_its_line_counts_checked(tmp_path):
  from t2t.data import pipeline
  _write(tmp_path / 'train.en', 'a\nb\nc\nd')  # 4 lines, the last without a newline
  _write(tmp_path / 'train.de', 'A\nB\nC\n')
  with pytest.raises(UserError, match=re.escape('train.en has 4 lines but') + '.*train.de has 3'):
    pipeline.load_pairs(_text_config(tmp_path), 'train', max_examples=2)
  _write(tmp_path / 'train.de', 'A\nB\nC\nD\n')
  assert pipeline.load_pairs(_text_config(tmp_path), 'train', max_examples=2) == [('a', 'A'), ('b', 'B')]


def test_empty_sides_are_reported_once_per_file_pair(tmp_path, caplog):
  from t2t.data import pipeline
  _write(tmp_path / 'train.en', 'a\n\nc\n')
  _write(tmp_path / 'train.de', 'A\nB\nC\n')
  for _ in range(2):  # as training reads it: once for the tokenizer, once to encode
    assert pipeline.load_pairs(_text_config(tmp_path), 'train') == [('a', 'A'), ('c', 'C')]
  assert [r.getMessage() for r in caplog.records if 'empty side' in r.getMessage()] == [
      f'{tmp_path / "train.en"}/{tmp_path / "train.de"}: skipped 1 pairs with an empty side']
