"""bench/gpu_suite.sh cannot rot while no GPU is at hand: its --cpu-smoke mode runs every step on
the CPU with tiny shapes, and a broken step fails the suite loudly, naming the step."""

import json
import os
import re
import subprocess
import sys

from helpers import ROOT

SECTIONS = ('## 1 Environment', '## 2 Correctness on the device', '## 3 Training throughput',
            '## 4 Multi30k en->de')


def suite(out, *flags):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  return subprocess.run(['bash', 'bench/gpu_suite.sh', '--cpu-smoke', '--out', str(out), *flags], cwd=ROOT,
                        env={**env, 'PYTHON': sys.executable}, capture_output=True, text=True, timeout=1200)


def test_cpu_smoke_runs_every_step_and_reports_each(tmp_path):
  result = suite(tmp_path)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  summary = (tmp_path / 'summary.md').read_text()
  for section in SECTIONS:
    assert re.search(rf'^{re.escape(section)}.*: passed \(', summary, re.M), summary
  results = json.loads((tmp_path / 'results.json').read_text())
  steps = results['steps']
  assert steps['environment']['result']['pmap_ok'] is True
  assert steps['correctness']['result']['pytest_exit'] == 0
  assert steps['correctness']['result']['bf16_vs_f32']['relative_rms'] <= 0.05
  (run,) = steps['training']['result']['runs']
  assert run['dtype'] == 'bfloat16' and run['t2t_tokens_per_s'] > 0 and run['torch_tokens_per_s'] > 0
  m30k = steps['multi30k']['result']
  assert 'BLEU' in m30k['bleu_signature'] or 'nrefs' in m30k['bleu_signature']
  assert m30k['decode']['greedy']['tokens_per_s'] > 0 and m30k['decode']['beam4']['tokens_per_s'] > 0
  for step in steps.values():
    assert (tmp_path / step['log']).stat().st_size > 0
  assert len(list(tmp_path.rglob('*.*'))) <= 8  # the device machine returns at most 8 files


def test_a_broken_step_fails_the_suite_by_name_and_the_next_step_still_runs(tmp_path):
  result = suite(tmp_path, '--only', 'multi30k,environment', '--multi30k', str(tmp_path / 'absent'))
  assert result.returncode == 1
  assert 'step multi30k FAILED' in result.stderr and 'absent' in result.stderr
  summary = (tmp_path / 'summary.md').read_text()
  assert '## 4 Multi30k en->de: train, BLEU, decode speed: failed' in summary
  assert '## 1 Environment: passed' in summary  # the suite went on after the failure
  assert 'test2016.en' in summary  # the error says what is missing


def test_unknown_step_is_one_line_error(tmp_path):
  result = suite(tmp_path, '--only', 'trainig')
  assert result.returncode == 2 and result.stderr.strip() == (
      'error: --only trainig: the steps are environment,correctness,training,multi30k')
