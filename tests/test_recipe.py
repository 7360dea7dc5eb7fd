"""What the Multi30k recipes rely on: cosine schedule, best-by-val-BLEU checkpoint, final evaluation."""

import json
import os
import re
import shutil

import numpy as np
import pytest
from helpers import builtin_corpus, run

from t2t import train_step
from t2t import workdir as wd
from t2t.checkpoint import Checkpointer, fingerprint
from t2t.config import base_config, load_config_file
from t2t.errors import UserError
from t2t.search_options import SearchOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def schedule_values(**fields):
  config = base_config()
  config.update(fields)
  schedule = train_step.learning_rate_schedule(config)
  return np.array([float(schedule(step)) for step in range(config.num_train_steps)])


def test_cosine_schedule_warms_up_then_decays_to_zero_at_the_last_step():
  lr = schedule_values(lr_schedule='cosine', learning_rate=2e-3, warmup_steps=10, num_train_steps=50)
  np.testing.assert_allclose(lr[:10], 2e-3 * np.arange(1, 11) / 10, rtol=1e-6)
  assert np.all(np.diff(lr[9:]) < 0)
  np.testing.assert_allclose(lr[-1], 0.0, atol=1e-9)
  np.testing.assert_allclose(lr[29], 1e-3, rtol=1e-2)  # half-way through the decay: half the peak


def test_rsqrt_schedule_is_unchanged_and_unknown_schedule_is_refused():
  lr = schedule_values(lr_schedule='rsqrt', learning_rate=1e-3, warmup_steps=4, num_train_steps=16)
  np.testing.assert_allclose(lr[15], 1e-3 * np.sqrt(4 / 16), rtol=1e-6)
  with pytest.raises(UserError, match='config.lr_schedule'):
    schedule_values(lr_schedule='linear')


@pytest.fixture(scope='module')
def recipe(tmp_path_factory):
  """A tiny run ending with the recipe's final evaluation (as the Multi30k configs do)."""
  corpus = builtin_corpus(tmp_path_factory.mktemp('corpus'), train=1500, val=20, test=24)
  workdir = tmp_path_factory.mktemp('run') / 'w'
  result = run('train.py', '--config', 'configs/tiny.py', '--workdir', str(workdir),
               '--config.data.source=text', f'--config.data.path={corpus}',
               '--config.num_train_steps=16', '--config.eval_every_steps=4',
               '--config.checkpoint_every_steps=4', '--config.keep_checkpoints=2',
               '--config.eval_bleu_sentences=0', '--config.learning_rate=0.01',
               '--config.final_eval=True', '--config.final_beam_size=2')
  return workdir, result


def test_best_checkpoint_is_the_highest_validation_bleu(recipe):
  workdir, _ = recipe
  evals = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  evals = [e for e in evals if e['split'] == 'eval']
  assert [e['step'] for e in evals] == [4, 8, 12, 16]
  first_best = max(evals, key=lambda e: (e['bleu'], -e['step']))  # ties keep the earlier step
  best = wd.read_best(str(workdir))
  assert best == {'step': first_best['step'], 'bleu': first_best['bleu']}
  assert sorted((workdir / 'checkpoints').iterdir())[-1].name == '16'
  assert [p.name for p in (workdir / 'best').iterdir()] == [str(best['step'])]


def test_train_records_carry_step_time_and_flops(recipe):
  """metrics.jsonl: step time and achieved model FLOP/s in every train record; no MFU on a CPU
  (its peak is unknown unless config.peak_flops is set)."""
  workdir, result = recipe
  records = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  train = [r for r in records if r['split'] == 'train']
  assert train and all(r['step_time'] > 0 and r['flops_per_sec'] > 0 and 'mfu' not in r for r in train)
  assert 'model FLOPs per step' in result.stderr and 'set config.peak_flops' in result.stderr


def test_final_evaluation_chooses_on_validation_and_scores_test_once(recipe):
  workdir, result = recipe
  record = json.loads((workdir / 'final_eval.json').read_text())
  names = [v['candidate'] for v in record['validation']]
  assert names[0] == 'last' and names[1] == 'average of last 2'
  best = wd.read_best(str(workdir))
  assert any(n.startswith('best') for n in names) == (best['step'] != 16)
  chosen = record['chosen']
  first_alpha = [v for v in record['validation'] if v['alpha'] == 0.6]
  assert chosen['candidate'] == max(first_alpha, key=lambda v: v['bleu'])['candidate']
  assert chosen['val_bleu'] == max(v['bleu'] for v in record['validation'] if v['candidate'] == chosen['candidate'])
  assert 'nrefs:1|case:mixed|eff:no|tok:13a' in result.stdout and f"BLEU = {record['bleu']:.2f}" in result.stdout
  assert len((workdir / 'test.final.hyp').read_text(encoding='utf-8').splitlines()) == 24

  # evaluate.py with the same choice reproduces the test score.
  which = {'last': [], 'average of last 2': ['--average_last', '2']}.get(chosen['candidate'], ['--best'])
  again = run('evaluate.py', '--workdir', str(workdir), '--beam_size', '2', '--alpha', str(chosen['alpha']),
              *which)
  assert re.search(r'BLEU = ([\d.]+)', again.stdout).group(1) == f"{record['bleu']:.2f}"


def evaluate_output(workdir, *flags):
  """(BLEU as printed, the search evaluate.py reports, stderr) of `evaluate.py --workdir W flags`."""
  result = run('evaluate.py', '--workdir', str(workdir), *flags)
  search = re.search(r'sentences/s including compilation; (.*)\)', result.stdout).group(1)
  return re.search(r'BLEU = ([\d.]+)', result.stdout).group(1), search, result.stderr


def test_evaluate_uses_the_final_choice_unless_told_otherwise(recipe):
  """Issue 16: flags given > what final_eval.json chose on val > the flags' defaults."""
  workdir, _ = recipe
  record = json.loads((workdir / 'final_eval.json').read_text())
  chosen = record['chosen']
  bleu, search, stderr = evaluate_output(workdir)
  assert (bleu, search) == (f"{record['bleu']:.2f}", f"beam2, alpha {chosen['alpha']}")
  assert ((workdir / 'test.beam2.hyp').read_text(encoding='utf-8')
          == (workdir / 'test.final.hyp').read_text(encoding='utf-8'))
  said = [line for line in stderr.splitlines() if line.startswith('using the settings chosen on val')]
  assert len(said) == 1 and f"{workdir / 'final_eval.json'}: {chosen['checkpoint']}" in said[0]
  assert f"beam 2, alpha {chosen['alpha']}" in said[0]

  _, search, stderr = evaluate_output(workdir, '--alpha', '0.8')
  assert search == 'beam2, alpha 0.8' and 'alpha' not in stderr.split('using the settings')[1].split('(')[0]
  _, search, stderr = evaluate_output(workdir, '--no_chosen')
  assert search == 'beam4, alpha 0.6' and 'using the settings' not in stderr


def test_loading_api_uses_the_final_choice(recipe, capsys):
  workdir, _ = recipe
  chosen = wd.read_chosen(str(workdir))
  record = json.loads((workdir / 'final_eval.json').read_text())
  assert (chosen.beam_size, chosen.alpha, list(chosen.steps)) == (2, record['chosen']['alpha'],
                                                                  record['chosen']['steps'])
  assert SearchOptions.for_workdir(str(workdir)) == SearchOptions('beam', 2, chosen.alpha, 1.5, 10)
  _, params, _ = wd.load_model(str(workdir))
  assert 'using the checkpoint chosen on val' in capsys.readouterr().err
  checkpointer = Checkpointer(str(workdir), read_only=True,
                              folder='best' if chosen.checkpoint == 'best' else 'checkpoints')
  expected = checkpointer.mean_params(list(chosen.steps))
  checkpointer.close()
  assert fingerprint(params) == fingerprint(expected)
  _, latest, _ = wd.load_model(str(workdir), chosen=False)
  assert capsys.readouterr().err == ''
  assert fingerprint(latest) == fingerprint(Checkpointer(str(workdir), read_only=True).restore_params(16))


def test_a_stale_or_old_final_choice(recipe, tmp_path):
  """A record from before `checkpoint`/`max_len_*` were written still reads; one whose steps are
  gone is one line naming the fix."""
  workdir, _ = recipe
  copy = tmp_path / 'w'
  shutil.copytree(workdir, copy)
  record = json.loads((copy / 'final_eval.json').read_text())
  del record['chosen']['checkpoint'], record['max_len_a'], record['max_len_b']
  record['chosen'].update(candidate='average of last 2', steps=[12, 16])
  (copy / 'final_eval.json').write_text(json.dumps(record))
  chosen = wd.read_chosen(str(copy))
  assert (chosen.checkpoint, chosen.steps, chosen.max_len_a, chosen.max_len_b) == ('average', (12, 16), 1.5, 10)
  assert chosen.checkpoint_name() == 'average of checkpoints 12, 16'
  record['chosen']['steps'] = [4, 16]
  (copy / 'final_eval.json').write_text(json.dumps(record))
  result = run('evaluate.py', '--workdir', str(copy), check=False)
  assert result.returncode == 2
  line = result.stderr.strip().splitlines()[-1]
  assert 'no longer holds step 4' in line and 't2t.final_eval' in line and '--no_chosen' in line


def test_evaluate_best_without_best_checkpoint_is_one_line(tmp_path):
  (tmp_path / 'checkpoints').mkdir()
  for name in ('model_config.json', 'spm.model'):
    (tmp_path / name).write_text('{"vocab_size": 8}' if name.endswith('json') else '')
  result = run('evaluate.py', '--workdir', str(tmp_path), '--best', check=False)
  assert result.returncode == 2
  assert 'best.json not found' in result.stderr.strip().splitlines()[-1]


def test_final_eval_module_refuses_a_folder_without_config(tmp_path):
  result = run('-m', 't2t.final_eval', '--workdir', str(tmp_path), check=False)
  assert result.returncode == 2 and 'config.json not found' in result.stderr


def test_multi30k_recipes_mirror_each_other_but_for_the_schedule_and_take_the_data_folder_from_the_environment(monkeypatch):
  def load(name):
    return load_config_file(os.path.join(ROOT, 'configs', f'{name}.py'))

  monkeypatch.delenv('T2T_MULTI30K', raising=False)
  en_de, de_en = load('multi30k_en_de'), load('multi30k_de_en')
  assert en_de.data.path == de_en.data.path == '../shared/data/multi30k'
  assert (en_de.data.src_lang, en_de.data.tgt_lang, de_en.data.src_lang, de_en.data.tgt_lang) == ('en', 'de', 'de', 'en')
  assert en_de.final_eval and en_de.data.test_split == 'test2016' and en_de.data.eval_split == 'val'
  schedule = ('num_train_steps', 'eval_every_steps')  # de->en: 3,000 steps on the whole machine
  flat = lambda c: {k: v for k, v in c.to_dict().items() if k != 'data' and k not in schedule}
  assert flat(en_de) == flat(de_en)
  assert (en_de.num_train_steps, en_de.eval_every_steps) == (1800, 200)
  assert (de_en.num_train_steps, de_en.eval_every_steps) == (3000, 400)
  monkeypatch.setenv('T2T_MULTI30K', '/somewhere/multi30k')
  assert load('multi30k_de_en').data.path == '/somewhere/multi30k'
