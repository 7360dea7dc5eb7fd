"""CTranslate2 export: the exported model scores and translates exactly like t2t.

A tiny model trained for a few seconds is enough: parity is about the conversion, not quality.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

ctranslate2 = pytest.importorskip('ctranslate2')

from t2t import export  # pylint: disable=wrong-import-position
from t2t.config import ModelConfig  # pylint: disable=wrong-import-position
from t2t import demo_corpus  # pylint: disable=wrong-import-position
from t2t.data.batch import BOS_ID, EOS_ID  # pylint: disable=wrong-import-position
from t2t.evaluation import load_model  # pylint: disable=wrong-import-position
from t2t.inference import SearchOptions, Translator  # pylint: disable=wrong-import-position
from t2t.model import Transformer, init_params  # pylint: disable=wrong-import-position
from helpers import builtin_corpus, run  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  """(workdir, ct2 folder): configs/tiny.py trained 150 steps, exported with `python -m t2t.export`."""
  corpus = builtin_corpus(tmp_path_factory.mktemp('corpus'), train=1500, val=16, test=16)
  workdir = tmp_path_factory.mktemp('run') / 'w'
  # A higher peak and longer warm-up than tiny.py's: greedy outputs stop being one repeated piece.
  run('train.py', '--config', 'configs/tiny.py', '--workdir', str(workdir), '--config.data.source=text',
      f'--config.data.path={corpus}', '--config.num_train_steps=150', '--config.learning_rate=5e-3',
      '--config.warmup_steps=40', '--config.eval_every_steps=1000', '--config.checkpoint_every_steps=150')
  out = workdir / 'ct2'
  run('-m', 't2t.export', '--workdir', str(workdir), '--out', str(out))
  return workdir, out


def test_exported_folder(exported):
  workdir, out = exported
  for name in ('model.bin', 'config.json', 'shared_vocabulary.json', 'spm.model', 't2t_model_config.json'):
    assert (out / name).exists(), name
  config = json.loads((out / 'config.json').read_text())
  assert config['decoder_start_token'] == '<s>' and config['eos_token'] == '</s>'
  assert config['add_source_eos'] is True and config['layer_norm_epsilon'] == pytest.approx(1e-6)
  vocabulary = json.loads((out / 'shared_vocabulary.json').read_text())
  assert vocabulary[:4] == ['<pad>', '</s>', '<s>', '<unk>']
  again = subprocess.run([sys.executable, '-m', 't2t.export', '--workdir', str(workdir), '--out', str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert again.returncode == 2 and again.stderr.strip().splitlines()[-1].startswith('error: ')
  assert '--force' in again.stderr


@pytest.fixture(scope='module')
def both(exported):
  """(t2t Translator, CTranslate2 translator, tokenizer, model config, 20 source id lists)."""
  workdir, out = exported
  config, params, tokenizer = load_model(str(workdir))
  sentences = [en for en, _ in demo_corpus.load_builtin('test')[:40]]
  sources = [s for s in tokenizer.encode_batch(sentences) if len(s) < 40][:20]
  assert len(sources) == 20
  return Translator(config, params, tokenizer, batch_size=8), export.ct2_translator(str(out)), tokenizer, config, sources


def test_greedy_is_token_for_token_identical(both):
  translator, ct2, tokenizer, config, sources = both
  # Plus one source longer than max_len: both cut it to max_len - 1 tokens.
  sources = sources + [tokenizer.encode(' '.join(['Doctors believe that Thomas buys the student hats.'] * 6))]
  assert len(sources[-1]) > config.max_len and ct2.max_len == config.max_len
  ours = [h[0].tokens for h in translator.translate_ids(sources, SearchOptions('greedy', 1, 0.0, 1.5, 10))]
  theirs = export.ct2_translate_ids(ct2, tokenizer, sources, 1, 1.5, 10)
  assert len({tuple(o) for o in ours}) > 5, 'outputs are trivial: the model did not train'
  assert ours == theirs, f'{sum(o == t for o, t in zip(ours, theirs))}/{len(ours)} identical'


def test_beam_agrees_without_length_penalty(both):
  # t2t divides by GNMT's ((5 + len) / 6) ** alpha, CTranslate2 by len ** alpha: compare at alpha 0.
  translator, ct2, tokenizer, _, sources = both
  ours = [h[0].tokens for h in translator.translate_ids(sources, SearchOptions('beam', 4, 0.0, 1.5, 10))]
  theirs = export.ct2_translate_ids(ct2, tokenizer, sources, 4, 1.5, 10)
  agree = sum(o == t for o, t in zip(ours, theirs)) / len(ours)
  assert agree >= 0.95, f'beam-4 agreement {agree:.0%}'


class Pieces:
  """The id <-> piece part of a Tokenizer, for a made-up vocabulary."""

  def __init__(self, vocab_size):
    self.vocab_size = vocab_size
    self.pieces = ['<pad>', '</s>', '<s>', '<unk>'] + [f'p{i}' for i in range(4, vocab_size)]

  def piece(self, i):
    return self.pieces[i]


@pytest.mark.parametrize('pre_norm, positional, tie', [
    (True, 'sinusoidal', True), (False, 'sinusoidal', True), (True, 'learned', False), (False, 'learned', False)])
def test_scores_match_for_every_architecture(tmp_path, pre_norm, positional, tie):
  """Per-token log-probs of random pairs under random weights: CTranslate2 == t2t."""
  config = ModelConfig(vocab_size=48, d_model=32, num_heads=4, num_encoder_layers=2, num_decoder_layers=2,
                       d_ff=64, dropout=0.0, max_len=24, positional=positional, pre_norm=pre_norm,
                       tie_embeddings=tie)
  params = init_params(config, jax.random.PRNGKey(7))
  # Random LayerNorm scales and biases, so a swapped or dropped norm cannot go unnoticed.
  keys = iter(jax.random.split(jax.random.PRNGKey(8), 1000))
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: x + 0.3 * jax.random.normal(next(keys), x.shape) if 'norm' in jax.tree_util.keystr(path) else x,
      params)
  vocab = Pieces(config.vocab_size)
  export.save_model(config, params, vocab.pieces, str(tmp_path / 'ct2'))
  ct2 = export.ct2_translator(str(tmp_path / 'ct2'))

  rng = np.random.default_rng(0)
  src, tgt = rng.integers(4, 48, size=9).tolist(), rng.integers(4, 48, size=6).tolist()
  result = ct2.score_batch([[vocab.piece(i) for i in src]], [[vocab.piece(i) for i in tgt]])[0]

  src_row = np.array([src + [EOS_ID]])
  tgt_in, tgt_out = np.array([[BOS_ID] + tgt]), np.array([tgt + [EOS_ID]])
  logits = Transformer(config).apply({'params': params}, src_row, np.arange(10)[None], np.ones_like(src_row),
                                     tgt_in, np.arange(7)[None], np.ones_like(tgt_in))
  log_probs = jax.nn.log_softmax(logits, -1)[0]  # [T, V]
  ours = np.take_along_axis(np.asarray(log_probs), tgt_out[0][:, None], -1)[:, 0]
  assert result.tokens == [vocab.piece(i) for i in tgt] + ['</s>']
  np.testing.assert_allclose(result.log_probs, ours, atol=2e-4, rtol=1e-4)
