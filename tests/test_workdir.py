"""The workdir's own files: a damaged JSON file is one line naming it, never a traceback."""

import pytest

from t2t import workdir as wd
from t2t.errors import UserError


@pytest.mark.parametrize('content', [b'{"model": ', b'\xff\xfe not json'])
def test_a_damaged_json_file_is_one_line_naming_it(tmp_path, content):
  (tmp_path / wd.TRAIN_CONFIG).write_bytes(content)
  with pytest.raises(UserError, match=r'config\.json: not valid JSON .*restore it'):
    wd.read_json(str(tmp_path / wd.TRAIN_CONFIG))


def test_a_missing_json_file_reads_as_none(tmp_path):
  assert wd.read_json(str(tmp_path / 'absent.json')) is None


def test_a_changed_tokenizer_type_is_refused_and_a_missing_one_is_the_default(tmp_path):
  import json

  import configs.tiny
  from t2t import trainer
  config = configs.tiny.get_config()
  saved = json.loads(config.to_json_best_effort())
  del saved['tokenizer_type']  # a workdir made before the field existed
  (tmp_path / wd.TRAIN_CONFIG).write_text(json.dumps(saved))
  trainer.check_workdir(config, str(tmp_path))  # unigram then, unigram now
  config.tokenizer_type = 'byte'
  with pytest.raises(UserError, match="config.tokenizer_type was 'unigram', now 'byte'; use a new --workdir"):
    trainer.check_workdir(config, str(tmp_path))


@pytest.mark.parametrize('target', ['ctranslate2', 'hf'])
def test_a_byte_tokenizer_workdir_is_not_exported(tmp_path, target):
  import importlib

  from t2t.data.tokenizer import write_byte_tokenizer
  write_byte_tokenizer(str(tmp_path / wd.BYTE_TOKENIZER))
  exporter = importlib.import_module(f't2t.export.{target}')
  with pytest.raises(UserError, match=r"bytes\.json: config\.tokenizer_type='byte' cannot be exported to"):
    exporter.export(str(tmp_path), str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()
