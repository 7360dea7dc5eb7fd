"""CTranslate2 export of a trained workdir, and translation with the exported model.

  python -m t2t.export --workdir runs/demo --out runs/demo/ct2      # also `t2t-export`

The weights go through CTranslate2's own Transformer specification (`TransformerSpec`), so
the exported folder is an ordinary CTranslate2 model: `model.bin`, `config.json`,
`shared_vocabulary.json` (the SentencePiece pieces in id order), a copy of `spm.model` and
`t2t_model_config.json` (the ModelConfig, for the position limit).

How t2t's conventions map onto CTranslate2's (all of them exact; the parity test in
tests/test_export.py checks greedy outputs token for token):
  - Flax kernels are [in, ...out]; CTranslate2 linear weights are [out, in]: flatten, transpose.
  - Self-attention qkv [D, 3, H, E] -> one fused [3D, D] weight (q, k, v blocks, heads
    contiguous, as CTranslate2 splits them); cross-attention query [D, H, E] -> [D, D] and
    kv [D, 2, H, E] -> fused [2D, D]; attention output [H, E, D] -> [D, D].
  - Embeddings are multiplied by sqrt(D) in both (`scale_embeddings`), then the positional
    table is added, row p for position p, positions starting at 0 in source and target.
    CTranslate2 fails at run time on a position past the table, and its documented defaults
    (`translate_batch(tokens)`: sources cut to 1024 tokens, outputs to 256) reach position
    1023 whatever t2t's max_len, so the table has max(max_len, 1024) rows: t2t's sinusoidal
    function ([sin | cos] halves) evaluated that far, or the learned table with its last row
    repeated past max_len (exact within the trained range; t2t itself cuts sources to
    max_len - 1 tokens and outputs at max_len, which `ct2_translate_ids` reproduces).
  - One embedding matrix serves source, target and (tied) output projection; CTranslate2
    stores it once (identical variables are aliased when saving).
  - Every parameter is read through `params.Params`; one left unmapped fails the export.
  - LayerNorm epsilon is flax's 1e-6, written into config.json (`layer_norm_epsilon`).
  - Variants: config.model.norm='rmsnorm' -> `rms_norm` (gamma only); ffn 'gelu' -> exact GELU,
    'swiglu'/'geglu' -> SWISH/GELU with `ffn_glu` (Dense_0 -> linear_0, activated; `up` ->
    linear_0_noact); num_kv_heads -> `num_heads_kv`, self-attention query [D, H, E] and kv
    [D, 2, G, E] fused into one [(H + 2G) E, D] weight. positional='rope' -> `rotary_dim` = the
    head width, `rotary_interleave` False (t2t rotates split halves), `rotary_base` ROPE_BASE, in
    self-attention only as in t2t; the decoder then has no position table and the encoder's is
    zeros. Relative positions are refused (`check_representable`, one line naming
    config.model.positional).
  - Sources end with EOS (`add_source_eos`), decoding starts from BOS '<s>' and ends at EOS '</s>'.

Length penalties differ: t2t's beam search divides by GNMT's ((5 + len) / 6) ** alpha,
CTranslate2's `length_penalty` by len ** alpha; both are plain log-prob at alpha = 0.

Glossary: D model width, H heads, E head width, F feed-forward width, V vocabulary.
"""

import os
import shutil

import numpy as np

from t2t.config import ModelConfig
from t2t.data.batch import BOS_ID, EOS_ID
from t2t.errors import UserError
from t2t.export.params import Params, position_table
from t2t.layers import GATED, ROPE_BASE
from t2t.workdir import TOKENIZER_MODEL, load_model, require_sentencepiece

LAYER_NORM_EPSILON = 1e-6  # flax.linen.LayerNorm's and RMSNorm's default, used by every t2t norm
# config.model.ffn -> ctranslate2.specs.Activation member (t2t's GELU is the exact erf one).
ACTIVATIONS = {'relu': 'RELU', 'gelu': 'GELU', 'swiglu': 'SWISH', 'geglu': 'GELU'}
MODEL_CONFIG = 't2t_model_config.json'  # the exported model's ModelConfig, kept next to model.bin
# translate_batch's documented defaults: sources are cut to 1024 tokens, outputs to 256.
CT2_MAX_INPUT_LENGTH = 1024
CT2_MAX_DECODING_LENGTH = 256


def _ct2():
  try:
    import ctranslate2
  except ImportError:
    raise UserError('ctranslate2 is not installed: pip install ctranslate2 '
                    "(or pip install -e '.[test]')") from None
  return ctranslate2


def _set_dense(spec, params: Params, name: str, in_axes: int = 1):
  spec.weight, spec.bias = params.dense(name, in_axes)


def _set_norm(spec, params: Params, name: str):
  spec.gamma, beta = params.norm(name)
  if beta is not None:  # RMSNorm has none, nor has CTranslate2's rms_norm spec
    spec.beta = beta


def _set_ffn(spec, params: Params, layer: str, gated: bool):
  _set_norm(spec.layer_norm, params, f'{layer}/ffn_block/norm')
  _set_dense(spec.linear_0, params, f'{layer}/ffn/Dense_0')  # [F, D], activated
  if gated:
    _set_dense(spec.linear_0_noact, params, f'{layer}/ffn/up')  # [F, D], the linear gate
  _set_dense(spec.linear_1, params, f'{layer}/ffn/Dense_1')  # [D, F]


def _set_self_attention(spec, params: Params, layer: str, block: str, config: ModelConfig):
  _set_norm(spec.layer_norm, params, f'{layer}/{block}/norm')
  if config.kv_heads == config.num_heads:
    _set_dense(spec.linear[0], params, f'{layer}/self_attention/qkv')  # [D, 3, H, E] -> [3D, D]
  else:  # query [D, H, E] and kv [D, 2, G, E] -> one fused [(H + 2G) E, D], as CTranslate2 splits it
    q_weight, q_bias = params.dense(f'{layer}/self_attention/query')
    kv_weight, kv_bias = params.dense(f'{layer}/self_attention/kv')
    spec.linear[0].weight = np.concatenate([q_weight, kv_weight])
    spec.linear[0].bias = np.concatenate([q_bias, kv_bias])
  _set_dense(spec.linear[1], params, f'{layer}/self_attention/out', in_axes=2)  # [H, E, D] -> [D, D]


def _set_cross_attention(spec, params: Params, layer: str):
  _set_norm(spec.layer_norm, params, f'{layer}/cross_block/norm')
  _set_dense(spec.linear[0], params, f'{layer}/cross_attention/query')  # [D, H, E] -> [D, D]
  _set_dense(spec.linear[1], params, f'{layer}/cross_attention/kv')  # [D, 2, G, E] -> [2GE, D]
  _set_dense(spec.linear[2], params, f'{layer}/cross_attention/out', in_axes=2)  # [H, E, D] -> [D, D]


def position_rows(config: ModelConfig) -> int:
  """P, the exported position table's length: every position CTranslate2's default limits reach.

  CTranslate2 raises at run time on a position past the table, so the table covers sources of
  CT2_MAX_INPUT_LENGTH tokens (EOS included) and outputs of CT2_MAX_DECODING_LENGTH tokens.
  """
  return max(config.max_len, CT2_MAX_INPUT_LENGTH, CT2_MAX_DECODING_LENGTH)


# Variants t2t's CTranslate2 export does not map: config.model field -> (values, why).
UNMAPPED = {
    'positional': (('relative',), "CTranslate2's T5-bias layout is not mapped or parity-tested by this "
                                  'exporter'),
}


def check_representable(config: ModelConfig) -> None:
  """Raises UserError (one line, naming the config field) for a variant this export cannot map exactly."""
  for field, (values, why) in UNMAPPED.items():
    if getattr(config, field) in values:
      raise UserError(f'config.model.{field}={getattr(config, field)!r} cannot be exported to CTranslate2 '
                      f"({why}): translate with t2t itself (translate.py), or train with 'sinusoidal', 'learned' or "
                      "'rope'")


def _transformer_spec(ct2, config: ModelConfig):
  """The empty TransformerSpec of config's architecture (norm, activation, gating, key/value heads)."""
  activation = ACTIVATIONS[config.ffn]
  options = dict(pre_norm=config.pre_norm, activation=getattr(ct2.specs.Activation, activation),
                 ffn_glu=config.ffn in GATED, rms_norm=config.norm == 'rmsnorm')
  if config.positional == 'rope':  # self-attention only, split halves (not interleaved), t2t's base
    options.update(rotary_dim=config.head_dim, rotary_interleave=False, rotary_base=ROPE_BASE)
  kv_heads = None if config.kv_heads == config.num_heads else config.kv_heads
  encoder = ct2.specs.TransformerEncoderSpec(config.num_encoder_layers, config.num_heads,
                                             num_heads_kv=kv_heads, **options)
  decoder = ct2.specs.TransformerDecoderSpec(config.num_decoder_layers, config.num_heads,
                                             num_heads_kv=kv_heads, **options)
  return ct2.specs.TransformerSpec(encoder, decoder)


def build_spec(config: ModelConfig, params, pieces: list[str]):
  """A `ctranslate2.specs.TransformerSpec` holding t2t's weights, every one of them.

  Args:
    config: the model's ModelConfig.
    params: its parameter tree (float32 arrays).
    pieces: the V vocabulary pieces in id order.
  Raises:
    UserError: the vocabulary does not fit the model, or a parameter was left unmapped.
  """
  ct2 = _ct2()
  if len(pieces) != config.vocab_size:
    raise UserError(f'the tokenizer has {len(pieces)} pieces but model_config.json says '
                    f'vocab_size={config.vocab_size}: export from an unmodified workdir')
  check_representable(config)
  params = Params(params, 'CTranslate2')
  spec = _transformer_spec(ct2, config)
  embedding = params('embedding/embed/embedding')  # [V, D]
  positions = position_table(config, params, position_rows(config))  # [P, D]; zeros for rope

  encoder = spec.encoder
  encoder.embeddings[0].weight = embedding
  encoder.scale_embeddings = True  # x sqrt(D), as t2t's Embedding
  encoder.position_encodings.encodings = positions
  for i, layer in enumerate(encoder.layer):
    _set_self_attention(layer.self_attention, params, f'encoder_layers_{i}', 'attention_block', config)
    _set_ffn(layer.ffn, params, f'encoder_layers_{i}', config.ffn in GATED)
  if config.pre_norm:
    _set_norm(encoder.layer_norm, params, 'encoder_norm')

  decoder = spec.decoder
  decoder.embeddings.weight = embedding
  decoder.scale_embeddings = True
  if config.positional != 'rope':  # CTranslate2's rotary decoder has no table (its encoder keeps one)
    decoder.position_encodings.encodings = positions
  for i, layer in enumerate(decoder.layer):
    _set_self_attention(layer.self_attention, params, f'decoder_layers_{i}', 'self_block', config)
    _set_cross_attention(layer.attention, params, f'decoder_layers_{i}')
    _set_ffn(layer.ffn, params, f'decoder_layers_{i}', config.ffn in GATED)
  if config.pre_norm:
    _set_norm(decoder.layer_norm, params, 'decoder_norm')
  if config.tie_embeddings:
    decoder.projection.weight = embedding  # logits = y @ E^T, no bias
  else:
    _set_dense(decoder.projection, params, 'output')  # [D, V] -> [V, D]
  params.check_all_used()

  spec.register_source_vocabulary(pieces)
  spec.register_target_vocabulary(pieces)
  spec.config.bos_token = pieces[BOS_ID]
  spec.config.eos_token = pieces[EOS_ID]
  spec.config.decoder_start_token = pieces[BOS_ID]
  spec.config.add_source_eos = True  # t2t sources are tokens + EOS
  spec.config.layer_norm_epsilon = LAYER_NORM_EPSILON
  return spec


def export(workdir: str, out_dir: str, average_last: int = 0, quantization: str | None = None,
           force: bool = False, chosen: bool = True) -> str:
  """Writes the workdir's model as a CTranslate2 model folder; returns out_dir.

  Args:
    workdir: a folder written by train.py.
    out_dir: the CTranslate2 model folder to create.
    average_last: average the parameters of the last K checkpoints first.
    quantization: CTranslate2 weight type (int8, float16, ...); None keeps float32.
    force: replace out_dir if it exists.
    chosen: without average_last, export the checkpoint the workdir's final evaluation chose on
      val (final_eval.json; t2t.workdir.load_model) when it has one; False: the latest.
  """
  if os.path.exists(out_dir) and not force:
    raise UserError(f'{out_dir} already exists: pass --force to replace it, or choose another --out')
  require_sentencepiece(workdir, 'CTranslate2')
  config, params, tokenizer = load_model(workdir, average_last, chosen=chosen)
  pieces = [tokenizer.piece(i) for i in range(tokenizer.vocab_size)]
  save_model(config, params, pieces, out_dir, quantization)
  shutil.copy(tokenizer.path, os.path.join(out_dir, TOKENIZER_MODEL))
  with open(os.path.join(out_dir, MODEL_CONFIG), 'w', encoding='utf-8') as f:
    f.write(config.to_json())
  return out_dir


def save_model(config: ModelConfig, params, pieces: list[str], out_dir: str,
               quantization: str | None = None) -> None:
  """Writes model.bin, config.json and shared_vocabulary.json into out_dir (replaced if it exists)."""
  spec = build_spec(config, params, pieces)
  spec.validate()
  try:
    spec.optimize(quantization=quantization)
  except ValueError as e:
    raise UserError(f'--quantization {quantization}: {e}') from None
  if os.path.exists(out_dir):
    shutil.rmtree(out_dir)
  os.makedirs(out_dir)
  spec.save(out_dir)


def ct2_translator(ct2_dir: str, device: str = 'cpu', compute_type: str = 'float32',
                   inter_threads: int = 1, intra_threads: int = 0):
  """A `ctranslate2.Translator` for an exported folder (intra_threads 0: CTranslate2's default).

  It also carries `max_len`, the model's position limit (from t2t_model_config.json), which
  ct2_translate_ids uses to cut sources and outputs as t2t does.
  """
  ct2 = _ct2()
  if not os.path.isfile(os.path.join(ct2_dir, 'model.bin')):
    raise UserError(f'{ct2_dir} has no model.bin: create it with python -m t2t.export --out {ct2_dir}')

  class Translator(ct2.Translator):  # type: ignore[name-defined]
    max_len: int | None = None

  translator = Translator(ct2_dir, device=device, compute_type=compute_type,
                          inter_threads=inter_threads, intra_threads=intra_threads)
  config_path = os.path.join(ct2_dir, MODEL_CONFIG)
  if os.path.isfile(config_path):
    with open(config_path, encoding='utf-8') as f:
      translator.max_len = ModelConfig.from_json(f.read()).max_len
  return translator


def output_limit(src_len: int, max_len_a: float, max_len_b: int, model_max_len: int) -> int:
  """t2t's output limit in tokens, EOS included, for a source of src_len tokens (EOS excluded)."""
  return int(min(model_max_len, np.ceil(max_len_a * (src_len + 1) + max_len_b)))


def ct2_translate_ids(translator, tokenizer, src_ids_list: list[list[int]], beam_size: int,
                      max_len_a: float, max_len_b: int, length_penalty: float = 0.0,
                      model_max_len: int | None = None, batch_size: int = 64) -> list[list[int]]:
  """Best translation ids of each source (no BOS/EOS) with CTranslate2, under t2t's length limit.

  Each output is limited like t2t's Translator: ceil(a * (source tokens + EOS) + b) tokens,
  EOS included, at most `model_max_len` (the exported position table's length).
  Sentences are grouped by that limit so each group is one `translate_batch` call.

  Args:
    translator: from ct2_translator().
    tokenizer: the t2t Tokenizer (for id <-> piece).
    src_ids_list: source ids without EOS (CTranslate2 appends it).
    beam_size: 1 is greedy search.
    max_len_a, max_len_b: the output limit a * length + b.
    length_penalty: CTranslate2's exponent (score / len ** p), not GNMT's alpha; 0 matches alpha 0.
    model_max_len: the model's max_len (cuts sources to max_len - 1 tokens, as t2t does);
      default: translator.max_len, known when it comes from ct2_translator().
    batch_size: CTranslate2's max_batch_size.
  Returns:
    One list of token ids per source.
  """
  limit = model_max_len or getattr(translator, 'max_len', None) or 1 << 30
  sources = [list(s)[:limit - 1] for s in src_ids_list]
  groups: dict[int, list[int]] = {}
  for i, source in enumerate(sources):
    groups.setdefault(output_limit(len(source), max_len_a, max_len_b, limit), []).append(i)
  vocabulary = [tokenizer.piece(i) for i in range(tokenizer.vocab_size)]
  piece_ids = {piece: i for i, piece in enumerate(vocabulary)}
  results: list[list[int]] = [[] for _ in sources]
  for out_limit, members in sorted(groups.items()):
    pieces = [[vocabulary[t] for t in sources[i]] for i in members]
    # t2t forces EOS at position out_limit - 1, so at most out_limit - 1 tokens precede it.
    outputs = translator.translate_batch(
        pieces, beam_size=beam_size, max_decoding_length=max(1, out_limit - 1), min_decoding_length=0,
        length_penalty=length_penalty, max_batch_size=batch_size, return_scores=False)
    for i, output in zip(members, outputs):
      results[i] = [piece_ids[p] for p in output.hypotheses[0]]
  return results
