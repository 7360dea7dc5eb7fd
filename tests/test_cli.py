"""The command line as the README drives it: train.py then evaluate.py, and one-line errors."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import builtin_corpus, run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
  """A small text corpus in the Multi30k layout, cut from the built-in corpus."""
  return builtin_corpus(tmp_path_factory.mktemp('corpus'), train=1500, val=20, test=24)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, corpus):
  workdir = tmp_path_factory.mktemp('run') / 'w'
  result = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(workdir),
               '--config.data.source=text', f'--config.data.path={corpus}',
               '--config.num_train_steps=12', '--config.eval_every_steps=12')
  return workdir, result


def test_train_then_evaluate(trained):
  workdir, result = trained
  assert 'padding efficiency' in result.stderr
  for name in ('spm.model', 'model_config.json', 'config.json', 'metrics.jsonl'):
    assert (workdir / name).exists(), name
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['10', '12']
  assert any(name.startswith('events.out.tfevents') for name in os.listdir(workdir / 'tb'))
  evaluation = run('evaluate.py', '--workdir', str(workdir), '--beam_size', '2')
  assert 'BLEU = ' in evaluation.stdout and 'nrefs:1|case:mixed|eff:no|tok:13a' in evaluation.stdout
  assert 'sentences/s' in evaluation.stdout
  hypotheses = (workdir / 'test.beam2.hyp').read_text(encoding='utf-8').splitlines()
  assert len(hypotheses) == 24


def test_changed_data_or_model_is_refused(trained, corpus):
  workdir, _ = trained
  again = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(workdir),
              '--config.num_train_steps=12', check=False)
  assert again.returncode == 2
  assert again.stderr.strip().splitlines()[-1].startswith('error: ')
  assert 'config.data.path' in again.stderr or 'config.data.source' in again.stderr
  bigger = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(workdir),
               '--config.data.source=text', f'--config.data.path={corpus}',
               '--config.model.d_model=64', check=False)
  assert bigger.returncode == 2 and 'config.model.d_model was 32, now 64' in bigger.stderr


def one_line_error(result):
  assert result.returncode != 0
  lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
  assert lines, result.stderr
  return lines[-1]


def test_missing_data_file_is_one_line_naming_the_file(tmp_path, corpus):
  empty = tmp_path / 'nodata'
  empty.mkdir()
  line = one_line_error(run('train.py', '--config', 'configs/tiny.py', '--workdir', str(tmp_path / 'w'),
                            '--config.data.source=text', f'--config.data.path={empty}', check=False))
  assert line.startswith('error: ') and str(empty / 'train.en') in line


def test_line_count_mismatch_names_both_files(tmp_path):
  (tmp_path / 'train.en').write_text('a\nb\nc\n')
  (tmp_path / 'train.de').write_text('x\ny\n')
  line = one_line_error(run('train.py', '--config', 'configs/tiny.py', '--workdir', str(tmp_path / 'w'),
                            '--config.data.source=text', f'--config.data.path={tmp_path}', check=False))
  assert 'train.en has 3 lines' in line and 'train.de has 2' in line


def test_unknown_config_field_is_rejected(tmp_path):
  result = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(tmp_path / 'w'),
               '--config.num_trian_steps=5', check=False)
  assert result.returncode != 0 and 'num_trian_steps' in result.stderr
  assert not (tmp_path / 'w').exists()


def test_evaluate_without_checkpoint_is_one_line(tmp_path):
  line = one_line_error(run('evaluate.py', '--workdir', str(tmp_path), check=False))
  assert line.startswith('error: ') and str(tmp_path) in line


def test_rerun_resumes_from_the_latest_checkpoint(trained, corpus):
  workdir, _ = trained
  result = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(workdir),
               '--config.data.source=text', f'--config.data.path={corpus}',
               '--config.num_train_steps=14', '--config.eval_every_steps=100')
  assert 'resumed from step 12 of 14' in result.stderr
  steps = [json.loads(l)['step'] for l in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert max(steps) == 14 and sorted(os.listdir(workdir / 'checkpoints')) == ['10', '12', '14']


def test_replaced_tokenizer_is_refused_and_nothing_is_overwritten(trained, corpus, tmp_path):
  from t2t.data.tokenizer import train_tokenizer
  source, _ = trained
  workdir = tmp_path / 'w'
  shutil.copytree(source, workdir)
  texts = (corpus / 'train.en').read_text(encoding='utf-8').splitlines()
  other = train_tokenizer(texts, str(tmp_path / 'other'), 250)
  shutil.copy(other.path, workdir / 'spm.model')
  saved = ('config.json', 'model_config.json', 'metrics.jsonl')
  before = {name: (workdir / name).read_bytes() for name in saved}
  checkpoints = sorted(os.listdir(workdir / 'checkpoints'))
  line = one_line_error(run('train.py', '--config', 'configs/tiny.py', '--workdir', str(workdir),
                            '--config.data.source=text', f'--config.data.path={corpus}',
                            '--config.num_train_steps=14', check=False))
  assert line.startswith(f'error: {workdir / "spm.model"} has SHA-256 ')
  assert 'spm.model.sha256' in line and 'put the original tokenizer back' in line
  assert {name: (workdir / name).read_bytes() for name in before} == before
  assert sorted(os.listdir(workdir / 'checkpoints')) == checkpoints


def test_corpus_empty_after_length_filter_is_one_line(tmp_path, corpus):
  result = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(tmp_path / 'w'),
               '--config.data.source=text', f'--config.data.path={corpus}', '--config.max_len=2', check=False)
  assert result.returncode == 2
  assert one_line_error(result) == 'error: no training pair fits config.max_len=2: raise it'
  assert not (tmp_path / 'w' / 'checkpoints').exists()


def test_unknown_bleu_tokenizer_fails_before_training(tmp_path):
  line = one_line_error(run('train.py', '--config', 'configs/tiny.py', '--workdir', str(tmp_path / 'w'),
                            '--config.bleu_tokenize=13b', check=False))
  assert line.startswith("error: config.bleu_tokenize='13b' is not a sacreBLEU tokenizer")
  assert not (tmp_path / 'w' / 'spm.model').exists()


@pytest.mark.parametrize('flag,message', [
    ('--config.model.d_model=0', 'error: config.model.d_model=0: use an integer >= 1'),
    ('--config.learning_rate=-0.001', 'error: config.learning_rate=-0.001: use a number > 0'),
    ('--config.model.dropout=2.0', 'error: config.model.dropout=2.0: use a number in [0, 1)'),
])
def test_a_value_out_of_range_is_refused_before_anything_is_written(tmp_path, flag, message):
  """(Every field and range: tests/test_configs.py.)"""
  result = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(tmp_path / 'w'), flag, check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [message]
  assert not (tmp_path / 'w').exists()


@pytest.mark.parametrize('below', ['', 'sub'])
def test_a_workdir_that_is_a_file_is_one_line(tmp_path, below):
  (tmp_path / 'file').write_text('not a folder')
  workdir = tmp_path / 'file' / below if below else tmp_path / 'file'
  result = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(workdir), check=False)
  assert result.returncode == 2
  line, = result.stderr.strip().splitlines()
  assert line.startswith('error: ') and str(workdir) in line and 'Traceback' not in result.stderr


def test_a_bug_is_one_line_unless_t2t_debug_asks_for_the_traceback():
  code = ('from t2t import cli\n'
          'def main(argv):\n'
          '  raise ValueError("broken\\nsecond line")\n'
          'cli.run(main)\n')
  for debug in ('', '1'):
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, 'T2T_DEBUG': debug})
    assert result.returncode == 1
    if debug:
      assert 'Traceback' in result.stderr and 'second line' in result.stderr
    else:
      assert result.stderr.strip().splitlines() == [(
          'error: internal error ValueError: broken (rerun with T2T_DEBUG=1 for the traceback, and please '
          'report it)')]
