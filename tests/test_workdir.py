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
