"""A bad --config file is one line naming the file (and line), exit 2, no traceback."""

import pytest
from helpers import run

from t2t.config import check_config_file, load_config_file
from t2t.errors import UserError


def test_missing_file_names_it(tmp_path):
  with pytest.raises(UserError, match=f'--config {tmp_path / "none.py"}: No such file'):
    load_config_file(str(tmp_path / 'none.py'))


def test_syntax_error_names_file_and_line(tmp_path):
  path = tmp_path / 'bad.py'
  path.write_text('def get_config():\n  x = 1\n  return x +\n')
  with pytest.raises(UserError, match=f'{path}:3: Python syntax error'):
    check_config_file(str(path))


def test_file_without_get_config(tmp_path):
  path = tmp_path / 'empty.py'
  path.write_text('x = 1\n')
  with pytest.raises(UserError, match='no get_config'):
    load_config_file(str(path))


def test_good_file_loads(tmp_path):
  path = tmp_path / 'good.py'
  path.write_text('def get_config():\n  return {"seed": 3}\n')
  assert load_config_file(str(path)) == {'seed': 3}


@pytest.mark.parametrize('text, expected', [
    (None, 'error: --config {path}: No such file or directory'),
    ('def get_config()\n  return 1\n', 'error: {path}:1: Python syntax error'),
])
def test_train_refuses_a_bad_config_file(tmp_path, text, expected):
  path = tmp_path / 'config.py'
  if text is not None:
    path.write_text(text)
  result = run('train.py', f'--config={path}', '--workdir', str(tmp_path / 'w'), '--config.seed=1', check=False)
  assert result.returncode == 2, result.stderr[-2000:]
  assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
  assert result.stderr.startswith(expected.format(path=path)), result.stderr
  assert not (tmp_path / 'w').exists()
