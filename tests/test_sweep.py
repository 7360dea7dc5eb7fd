"""The ablation harness, `python -m t2t.sweep`: every combination trains and is scored, a rerun skips
what is done, and a bad --vary is one line before anything runs."""

import json
import os

import pytest
from helpers import builtin_corpus, run

from t2t import sweep

SWEEP = ['-m', 't2t.sweep', '--config', 'configs/tiny.py']


def one_line(result):
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  return lines[0]


@pytest.mark.parametrize('flags,message', [
    (['--vary', 'model.no_such_field=1,2'], 'error: configs/tiny.py has no config.model.no_such_field '
                                            '(config.model has: activation_dropout, attention_dropout'),
    (['--vary', 'no_such_group.x=1'], 'error: configs/tiny.py has no config.no_such_group.x (config has: '),
    (['--vary', 'model.d_model=32,wide'], "error: config.model.d_model='wide': use a int like its current value 32"),
    (['--vary', 'model.d_model'], "error: --vary 'model.d_model': use --vary field=value,value,..."),
    (['--vary', 'model.d_model=32,0'], 'error: model.d_model=0+seed=0: config.model.d_model=0: use an integer >= 1'),
    (['--vary', 'model.d_model=32', '--steps', '2', '--minutes', '1'], 'error: give exactly one budget'),
])
def test_a_bad_sweep_is_one_line_before_anything_runs(tmp_path, flags, message):
  budget = [] if '--minutes' in flags else ['--steps', '2']
  line = one_line(run(*SWEEP, '--workdir', str(tmp_path / 's'), *flags, *budget, check=False))
  assert line.startswith(message)
  assert not (tmp_path / 's').exists()


def test_parallel_runs_are_pinned_one_core_each():
  class Flags:
    config, workdir = 'c.py', 'w'
  run_ = sweep.Run((('model.norm', 'rmsnorm'),), 1)
  assert run_.name == 'model.norm=rmsnorm+seed=1'
  command = sweep.train_command(Flags, run_, [('max_len', 16)], {'steps': 5}, core=3)
  assert command[:3] == ['taskset', '-c', '3']
  assert command[-5:] == ['--config.max_len=16', '--config.model.norm=rmsnorm', '--config.seed=1',
                          '--config.final_eval=False', '--config.num_train_steps=5']
  assert sweep.train_command(Flags, run_, [], {'minutes': 1.0}, core=None)[0] != 'taskset'


def test_sweep_trains_scores_summarizes_and_a_rerun_skips(tmp_path):
  corpus = builtin_corpus(tmp_path, train=300, val=6, test=4)
  workdir = tmp_path / 'sweep'
  command = [*SWEEP, '--workdir', str(workdir), '--vary', 'model.d_model=16,32', '--seeds', '0', '--steps', '3',
             '--set', 'data.source=text', '--set', f'data.path={corpus}', '--set', 'eval_every_steps=1000',
             '--set', 'eval_bleu_sentences=2', '--set', 'final_beam_size=2', '--set', 'max_len=24']
  first = run(*command)
  results = json.loads((workdir / 'results.json').read_text())
  assert [r['name'] for r in results['runs']] == ['model.d_model=16+seed=0', 'model.d_model=32+seed=0']
  small, large = results['runs']
  for record in results['runs']:
    assert record['status'] == 'scored' and record['steps'] == 3
    assert 0 <= record['bleu_greedy'] <= 100 and 0 <= record['bleu_beam'] <= 100 and record['chrf'] >= 0
    assert record['tokens_per_sec'] > 0 and record['wall_seconds'] > 0 and 'test_bleu' not in record
    assert sorted(os.listdir(workdir / record['name'] / 'checkpoints')) == ['3']
    assert not any('test' in name for name in os.listdir(workdir / record['name']))  # test split untouched
  assert large['params'] > small['params']
  assert [v['variant'] for v in results['variants']] == ['model.d_model=16', 'model.d_model=32']
  assert results['variants'][0]['bleu_beam'] == {'mean': small['bleu_beam'], 'sd': 0.0}
  table = (workdir / 'results.md').read_text()
  assert '| model.d_model=32+seed=0 | 32 | 0 | 3 |' in table and '| model.d_model=16 | 0 |' in table
  assert (workdir / 'results.png').read_bytes()[:4] == b'\x89PNG'
  assert first.stderr.count('trained') == 2

  # A rerun trains and scores nothing again (no train.py, no scoring process) and writes the same results.
  again = run(*command)
  assert again.stderr.count('done before, skipped') == 2 and 'scoring' not in again.stderr
  assert json.loads((workdir / 'results.json').read_text()) == results
  (workdir / 'results.json').unlink()
  run(*command, '--report')  # reads the runs' records only
  assert json.loads((workdir / 'results.json').read_text()) == results

  # A rerun after the config changed would mix two configs in one table: refused, naming the field.
  line = one_line(run(*command, '--set', 'label_smoothing=0.2', check=False))
  assert line.startswith(f"error: {workdir / 'model.d_model=16+seed=0'} was trained with another config "
                         "(label_smoothing 0.1 -> 0.2)"), line


def test_one_at_a_time_changes_one_field_per_variant_from_the_config():
  from t2t.config import load_config_file
  config = load_config_file('configs/tiny.py')
  varied = [('model.norm', ['layernorm', 'rmsnorm']), ('model.ffn', ['relu', 'gelu', 'swiglu'])]
  assert config.model.norm == 'layernorm' and config.model.ffn == 'relu'
  assert sweep.combinations(varied, config, 'one_at_a_time') == [
      (), (('model.norm', 'rmsnorm'),), (('model.ffn', 'gelu'),), (('model.ffn', 'swiglu'),)]
  assert len(sweep.combinations(varied, config, 'grid')) == 6
  assert sweep.Run((), 1).variant == 'baseline' and sweep.Run((), 1).name == 'seed=1'
  # The table shows the config's value where a run leaves a field as it is.
  records = [{'name': 'seed=0', 'values': {}, 'seed': 0, 'bleu_beam': 1.0},
             {'name': 'model.ffn=gelu+seed=0', 'values': {'model.ffn': 'gelu'}, 'seed': 0, 'bleu_beam': 2.0}]
  table = sweep.results_markdown(records, sweep.summarize(records), {'steps': 5},
                                 {'model.norm': 'layernorm', 'model.ffn': 'relu'})
  assert '| seed=0 | layernorm | relu | 0 |' in table and '| model.ffn=gelu+seed=0 | layernorm | gelu | 0 |' in table
  assert '| baseline | 0 |' in table
