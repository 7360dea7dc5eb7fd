"""CTranslate2 and Hugging Face exports: the exported models score and translate exactly like t2t.

A tiny model trained for a few seconds is enough: parity is about the conversion, not quality.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

ctranslate2 = pytest.importorskip('ctranslate2')

from helpers import builtin_corpus, run

from t2t import (
  demo_corpus,
  export,
)
from t2t.config import ModelConfig
from t2t.data.batch import BOS_ID, EOS_ID
from t2t.errors import UserError
from t2t.inference import SearchOptions, Translator
from t2t.model import Transformer, init_params
from t2t.workdir import load_model

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


def variant_id(overrides: dict) -> str:
  return '-'.join(f'{k}={v}' for k, v in overrides.items()) or 'default'


@pytest.mark.parametrize('overrides', [
    {}, {'pre_norm': False}, {'positional': 'learned', 'tie_embeddings': False},
    {'pre_norm': False, 'positional': 'learned', 'tie_embeddings': False},
    {'norm': 'rmsnorm'}, {'ffn': 'gelu'}, {'ffn': 'swiglu'}, {'ffn': 'geglu', 'num_kv_heads': 1},
    {'num_kv_heads': 2, 'pre_norm': False}, {'positional': 'rope'},
    {'positional': 'rope', 'num_kv_heads': 2, 'pre_norm': False}], ids=variant_id)
def test_scores_match_for_every_architecture(tmp_path, overrides):
  """Per-token log-probs of random pairs under random weights: CTranslate2 == t2t, for every
  architecture and variant the export maps."""
  config = ModelConfig(vocab_size=48, d_model=32, num_heads=4, num_encoder_layers=2, num_decoder_layers=2,
                       d_ff=64, dropout=0.0, max_len=24, **overrides)
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


def readme_python_block(heading: str) -> str:
  """The first ```python block after `heading` in README.md, as written there."""
  with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
    readme = f.read()
  section = readme[readme.index(heading):]
  return re.search(r'```python\n(.*?)```', section, re.DOTALL).group(1)


@pytest.mark.parametrize('weights', ['trained', 'untrained'])
def test_readme_snippet_runs_as_written(exported, tmp_path, weights):
  """The README's CTranslate2 snippet, pointed at an exported folder. Untrained weights never emit
  EOS, so the output runs to CTranslate2's 256-token default (it failed at position 64 before)."""
  workdir, out = exported
  if weights == 'untrained':
    config, _, tokenizer = load_model(str(workdir))
    out = tmp_path / 'ct2'
    export.save_model(config, init_params(config, jax.random.PRNGKey(0)),
                      [tokenizer.piece(i) for i in range(tokenizer.vocab_size)], str(out))
    shutil.copy(tokenizer.path, out / 'spm.model')
  snippet = readme_python_block('### CTranslate2 export')
  assert "'runs/demo/ct2" in snippet
  result = subprocess.run([sys.executable, '-c', snippet.replace("'runs/demo/ct2", f"'{out}")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip(), 'the snippet printed no translation'


def test_ct2_defaults_translate_any_input(exported):
  """translate_batch(tokens) and beam_size=4, nothing else: the whole built-in test split and 500 tokens."""
  workdir, out = exported
  _, _, tokenizer = load_model(str(workdir))
  translator = ctranslate2.Translator(str(out))
  sentences = [en for en, _ in demo_corpus.load_builtin('test')]
  long_input = ' '.join(sentences)  # far more than 500 tokens: CTranslate2 cuts it at 1024
  batch = [tokenizer.pieces(s) for s in sentences]
  rng = np.random.default_rng(0)
  batch.append([tokenizer.piece(i) for i in rng.integers(4, tokenizer.vocab_size, 500)])
  batch.append(tokenizer.pieces(long_input))
  assert len(batch[-1]) > 1024
  for options in ({}, {'beam_size': 4}):
    results = translator.translate_batch(batch, **options)
    assert len(results) == len(batch) and all(r.hypotheses[0] for r in results[:-2])
  # The longest outputs CTranslate2's defaults allow (256 tokens) also run.
  assert translator.translate_batch(batch[-2:], min_decoding_length=256, beam_size=2)[0].hypotheses


def tiny_config(**overrides):
  fields = {'vocab_size': 48, 'd_model': 32, 'num_heads': 4, 'num_encoder_layers': 2, 'num_decoder_layers': 2,
            'd_ff': 64, 'dropout': 0.0, 'max_len': 24}
  return ModelConfig(**{**fields, **overrides})


def test_ct2_learned_positions_past_max_len(tmp_path):
  """A learned table has max_len rows; CTranslate2 still translates 300 tokens with its defaults."""
  config = tiny_config(positional='learned')
  vocab = Pieces(config.vocab_size)
  export.save_model(config, init_params(config, jax.random.PRNGKey(3)), vocab.pieces, str(tmp_path / 'ct2'))
  translator = ctranslate2.Translator(str(tmp_path / 'ct2'))
  source = [vocab.piece(i) for i in np.random.default_rng(1).integers(4, 48, 300)]
  assert translator.translate_batch([source], beam_size=4)[0].hypotheses


@pytest.mark.parametrize('save', ['ct2', 'hf'])
def test_unmapped_parameter_fails_the_export(tmp_path, save):
  config = tiny_config()
  params = dict(init_params(config, jax.random.PRNGKey(3)))
  params['encoder_layers_1'] = {**params['encoder_layers_1'], 'gate': {'kernel': np.ones((32, 32), np.float32)}}
  with pytest.raises(UserError, match=r'does not map t2t parameter\(s\) encoder_layers_1/gate/kernel:'):
    if save == 'ct2':
      export.save_model(config, params, Pieces(config.vocab_size).pieces, str(tmp_path / 'out'))
    else:
      pytest.importorskip('transformers')
      from t2t.export import hf
      hf.build_model(config, params)
  assert not (tmp_path / 'out').exists()


# ---- Hugging Face Transformers ----

@pytest.fixture(scope='module')
def hf_exported(exported):
  """(workdir, HF folder) written by `python -m t2t.export --format hf`."""
  pytest.importorskip('transformers')
  workdir, _ = exported
  out = workdir / 'hf'
  run('-m', 't2t.export', '--format', 'hf', '--workdir', str(workdir), '--out', str(out))
  return workdir, out


@pytest.fixture(scope='module')
def hf_loaded(hf_exported):
  """(model, tokenizer) from AutoModelForSeq2SeqLM / AutoTokenizer.from_pretrained, offline."""
  import transformers
  _, out = hf_exported
  model = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(out), local_files_only=True)
  tokenizer = transformers.AutoTokenizer.from_pretrained(str(out), local_files_only=True)
  return model.eval(), tokenizer


def test_hf_readme_snippet_runs_as_written(hf_exported):
  _, out = hf_exported
  snippet = readme_python_block('### Hugging Face Transformers export')
  assert "'runs/demo/hf'" in snippet
  result = subprocess.run([sys.executable, '-c', snippet.replace("'runs/demo/hf'", f"'{out}'")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, 'HF_HUB_OFFLINE': '1'})
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip(), 'the snippet printed no translation'


def test_hf_tokenizer_reproduces_t2t_ids(hf_exported, hf_loaded):
  workdir, _ = hf_exported
  _, hf_tokenizer = hf_loaded
  _, _, tokenizer = load_model(str(workdir))
  sentences = [s for pair in demo_corpus.load_builtin('test') for s in pair] + ['  Ünïcode…  and   spaces ', '']
  ours = [ids + [EOS_ID] for ids in tokenizer.encode_batch(sentences)]  # t2t sources end with EOS
  assert hf_tokenizer(sentences)['input_ids'] == ours
  assert [hf_tokenizer.convert_tokens_to_ids(p) for p in ('<pad>', '</s>', '<s>', '<unk>')] == [0, 1, 2, 3]
  # Decoding agrees too, except that HF drops <unk> where SentencePiece writes ' ⁇ '.
  known = [ids for ids in ours if 3 not in ids]
  assert len(known) > 1000
  assert hf_tokenizer.batch_decode(known, skip_special_tokens=True) == tokenizer.decode_batch(known)


def test_hf_greedy_is_token_for_token_identical(both, hf_loaded):
  from t2t.export import hf
  translator, _, tokenizer, config, sources = both
  model, _ = hf_loaded
  sources = sources + [tokenizer.encode(' '.join(['Doctors believe that Thomas buys the student hats.'] * 6))]
  ours = [h[0].tokens for h in translator.translate_ids(sources, SearchOptions('greedy', 1, 0.0, 1.5, 10))]
  theirs = hf.hf_translate_ids(model, sources, 1.5, 10, config.max_len)
  assert len({tuple(o) for o in ours}) > 5, 'outputs are trivial: the model did not train'
  assert ours == theirs, f'{sum(o == t for o, t in zip(ours, theirs))}/{len(ours)} identical'


def test_hf_generate_as_documented(hf_loaded, both):
  """The README's Transformers snippet: tokenizer -> generate -> decode gives t2t's greedy text."""
  import torch
  translator, _, tokenizer, _, sources = both
  model, hf_tokenizer = hf_loaded
  texts = tokenizer.decode_batch(sources[:6])
  inputs = hf_tokenizer(texts, return_tensors='pt', padding=True)
  with torch.no_grad():
    outputs = model.generate(**inputs)
  ours = translator.translate(texts, SearchOptions('greedy', 1, 0.0, 100.0, 0))
  assert hf_tokenizer.batch_decode(outputs, skip_special_tokens=True) == ours


def hf_log_probs(model, src, tgt):
  """Per-token log-probs of tgt + EOS given src (ids without EOS) under an HF model: [T + 1]."""
  import torch
  with torch.no_grad():
    logits = model(input_ids=torch.tensor([src + [EOS_ID]]), decoder_input_ids=torch.tensor([[BOS_ID] + tgt])).logits
  log_probs = torch.log_softmax(logits.double(), -1)[0].numpy()  # [T + 1, V]
  return log_probs[np.arange(len(tgt) + 1), tgt + [EOS_ID]]


def t2t_logits(config, params, src, tgt):
  """t2t's teacher-forced logits [max_len, V] for src -> BOS tgt, padded to max_len so that every
  pair reuses one compiled function."""
  width = config.max_len
  src_row, tgt_in, src_seg, tgt_seg = (np.zeros((1, width), np.int32) for _ in range(4))
  src_row[0, :len(src) + 1], tgt_in[0, :len(tgt) + 1] = src + [EOS_ID], [BOS_ID] + tgt
  src_seg[0, :len(src) + 1], tgt_seg[0, :len(tgt) + 1] = 1, 1
  positions = np.arange(width)[None]
  return np.asarray(_apply(config)(params, src_row, positions, src_seg, tgt_in, positions, tgt_seg))[0]


def t2t_log_probs(config, params, src, tgt):
  """The same under t2t: log-prob of each tgt token and of the final EOS."""
  log_probs = np.asarray(jax.nn.log_softmax(t2t_logits(config, params, src, tgt), -1))  # [max_len, V]
  return log_probs[np.arange(len(tgt) + 1), tgt + [EOS_ID]]


_APPLY = {}


def _apply(config):
  if config not in _APPLY:
    _APPLY[config] = jax.jit(lambda p, *batch: Transformer(config).apply({'params': p}, *batch))
  return _APPLY[config]


def test_hf_log_probs_match_on_the_trained_model(both, hf_loaded, exported):
  translator, _, _, config, sources = both
  model, _ = hf_loaded
  _, params, _ = load_model(str(exported[0]))
  outputs = [h[0].tokens for h in translator.translate_ids(sources, SearchOptions('greedy', 1, 0.0, 1.5, 10))]
  for src, tgt in zip(sources, outputs):
    np.testing.assert_allclose(hf_log_probs(model, src, tgt), t2t_log_probs(config, params, src, tgt), atol=1e-4)


@pytest.mark.parametrize('positional, tie, ffn', [('sinusoidal', True, 'relu'), ('learned', False, 'relu'),
                                                ('sinusoidal', True, 'gelu')])
def test_hf_scores_match_for_every_architecture(positional, tie, ffn):
  """Random weights, random norms and biases, small embeddings (LayerNorm's epsilon then matters)."""
  pytest.importorskip('transformers')
  from t2t.export import hf
  config = tiny_config(positional=positional, tie_embeddings=tie, ffn=ffn)
  keys = iter(jax.random.split(jax.random.PRNGKey(8), 1000))
  params = jax.tree_util.tree_map_with_path(
      lambda path, x: (x + 0.3 * jax.random.normal(next(keys), x.shape)
                       if re.search('norm|bias', jax.tree_util.keystr(path)) else x),
      init_params(config, jax.random.PRNGKey(7)))
  params['embedding']['embed']['embedding'] *= 0.02
  model, _ = hf.build_model(config, params)
  rng = np.random.default_rng(0)
  src, tgt = rng.integers(4, 48, size=9).tolist(), rng.integers(4, 48, size=12).tolist()
  np.testing.assert_allclose(hf_log_probs(model, src, tgt), t2t_log_probs(config, params, src, tgt),
                             atol=1e-4, rtol=0)
  long_source = rng.integers(4, 48, size=5 * config.max_len).tolist()  # past max_len: runs, no error
  assert np.isfinite(hf_log_probs(model, long_source, tgt)).all()


@pytest.mark.parametrize('positional', ['sinusoidal', 'rope'])
def test_ct2_greedy_steps_are_t2t_argmaxes(tmp_path, positional):
  """CTranslate2's incremental decoding (its own cache and step positions) under random weights: each
  greedy token is the argmax of t2t's full teacher-forced forward pass over the tokens before it."""
  config = tiny_config(positional=positional)
  params = init_params(config, jax.random.PRNGKey(5))
  vocab = Pieces(config.vocab_size)
  export.save_model(config, params, vocab.pieces, str(tmp_path / 'ct2'))
  translator = ctranslate2.Translator(str(tmp_path / 'ct2'))
  rng = np.random.default_rng(2)
  for _ in range(3):
    src = rng.integers(4, 48, size=int(rng.integers(3, 12))).tolist()
    result = translator.translate_batch([[vocab.piece(i) for i in src]], beam_size=1, max_decoding_length=16)
    tgt = [vocab.pieces.index(p) for p in result[0].hypotheses[0]]
    assert len(tgt) >= 4
    assert t2t_logits(config, params, src, tgt)[:len(tgt)].argmax(-1).tolist() == tgt


@pytest.mark.parametrize('overrides', [{'positional': 'relative'}], ids=variant_id)
def test_ct2_refuses_what_it_does_not_map(tmp_path, overrides):
  config = tiny_config(**overrides)
  field, value = next(iter(overrides.items()))
  with pytest.raises(UserError, match=rf"^config\.model\.{field}='{value}' cannot be exported to CTranslate2 \("):
    export.save_model(config, init_params(config, jax.random.PRNGKey(0)), Pieces(48).pieces, str(tmp_path / 'o'))
  assert not (tmp_path / 'o').exists()


@pytest.mark.parametrize('overrides', [{'positional': 'rope'}, {'positional': 'relative'}, {'norm': 'rmsnorm'},
                                       {'ffn': 'swiglu'}, {'ffn': 'geglu'}, {'num_kv_heads': 2}],
                         ids=variant_id)
def test_hf_refuses_what_blenderbot_cannot_represent(overrides):
  pytest.importorskip('transformers')
  from t2t.export import hf
  field, value = next(iter(overrides.items()))
  with pytest.raises(UserError, match=rf'^config\.model\.{field}={value!r} cannot be exported to Hugging Face '):
    hf.build_model(tiny_config(**overrides), init_params(tiny_config(**overrides), jax.random.PRNGKey(0)))


def test_hf_refuses_post_ln():
  pytest.importorskip('transformers')
  from t2t.export import hf
  with pytest.raises(UserError, match=r'^config\.model\.pre_norm=False .*--format ct2$'):
    hf.check_representable(tiny_config(pre_norm=False))
