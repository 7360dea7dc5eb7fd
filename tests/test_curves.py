"""Training curves: metrics.jsonl read back by step (a resumed run's records win), PNG written."""

import json

import pytest

from t2t import curves
from t2t.errors import UserError


def write_metrics(workdir, records):
  workdir.mkdir(exist_ok=True)
  (workdir / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
  return workdir


def test_records_are_sorted_by_step_and_a_resumed_run_overrides(tmp_path):
  workdir = write_metrics(tmp_path / 'w', [
      {'step': 10, 'split': 'train', 'loss': 5.0}, {'step': 20, 'split': 'train', 'loss': 4.0},
      {'step': 20, 'split': 'eval', 'loss': 4.5, 'bleu': 3.0},
      {'step': 20, 'split': 'train', 'loss': 3.9}, {'step': 15, 'split': 'train', 'loss': 4.4}])
  metrics = curves.read_metrics(str(workdir))
  assert [(r['step'], r['loss']) for r in metrics['train']] == [(10, 5.0), (15, 4.4), (20, 3.9)]
  assert metrics['eval'] == [{'step': 20, 'split': 'eval', 'loss': 4.5, 'bleu': 3.0}]


def test_png_is_written_for_several_workdirs(tmp_path):
  a = write_metrics(tmp_path / 'a', [{'step': s, 'split': 'train', 'loss': 9.0 / s} for s in (1, 2, 3)]
                    + [{'step': 3, 'split': 'eval', 'loss': 2.0, 'bleu': 10.0}])
  b = write_metrics(tmp_path / 'b', [{'step': 1, 'split': 'train', 'loss': 8.0}])
  out = tmp_path / 'curves.png'
  curves.main(['--workdir', str(a), str(b), '--out', str(out)])
  assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_errors_name_the_file_and_line(tmp_path):
  with pytest.raises(UserError, match='metrics.jsonl not found'):
    curves.read_metrics(str(tmp_path))
  (tmp_path / 'metrics.jsonl').write_text('{"step": 1, "split": "train", "loss": 1.0}\n{"step": 2, "spl\n')
  with pytest.raises(UserError, match=r'metrics.jsonl:2: not JSON'):
    curves.read_metrics(str(tmp_path))
