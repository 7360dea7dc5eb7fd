"""Hugging Face Transformers export: a folder that `from_pretrained` loads offline.

  python -m t2t.export --format hf --workdir runs/demo --out runs/demo/hf

  model = transformers.AutoModelForSeq2SeqLM.from_pretrained('runs/demo/hf')
  tokenizer = transformers.AutoTokenizer.from_pretrained('runs/demo/hf')

Architecture. t2t's default model (pre-LN) is exactly Blenderbot's
(`BlenderbotForConditionalGeneration`): pre-LN layers with a final LayerNorm after the encoder
and after the decoder, embeddings scaled by sqrt(D) (`scale_embedding`), a position table added
at positions 0, 1, ... in source and target (a learned table, loaded as saved, so it holds
t2t's sinusoidal [sin | cos] table or t2t's learned one), biases on every projection, ReLU
(`activation_function`), and tied output logits or an untied projection whose bias is
`final_logits_bias`. Post-LN (`config.model.pre_norm=False`) has no exact HF family and is
refused: Marian and FSMT recompute their own sinusoids when loading (Marian with another
frequency formula, FSMT from position pad + 1) and the BART family adds a LayerNorm on the
embeddings; export such a model to CTranslate2. `config.model.ffn='gelu'` maps to
`activation_function='gelu'` (exact erf GELU in both); rope and relative positions, RMSNorm,
gated feed-forwards and fewer key/value heads have no place in Blenderbot and are refused with
one line naming the field (`check_representable`).

LayerNorm epsilon. HF's LayerNorm uses torch's eps 1e-5, t2t's flax's 1e-6. Because
LN(c x, c^2 eps) = LN(x, eps), the HF model carries the residual stream multiplied by
c = sqrt(10): embeddings, position table and every sublayer's output projection (attention
`out_proj`, `fc2`, weights and biases) are multiplied by c, so every LayerNorm sees c x with
eps 1e-5 and returns exactly t2t's normalised value; the final decoder norm is divided by c
when the output is tied to the (c-scaled) embedding. Exact in real arithmetic; measured
per-token log-probs agree with t2t's to ~1e-6 (tests/test_export_hf.py).

Positions. The table has max(max_len, 1024) rows: t2t's sinusoids evaluated that far, or the
learned table with its last row repeated past max_len (exact within t2t's trained range), the
same decision as the CTranslate2 export; the tokenizer's `model_max_length` is that length.

Tokenizer. `tokenizer.json` is t2t's SentencePiece model converted to a `tokenizers` Unigram
model (same pieces, same ids: pad 0, eos 1, bos 2, unk 3) that appends EOS to every source,
as t2t does; decoding starts from BOS (`decoder_start_token_id`) and stops at EOS.

Generation. `generation_config.json` is greedy search with t2t's position limit: outputs of
at most max_len tokens, the last one forced to EOS (`forced_eos_token_id`), as t2t's search.
`hf_translate_ids` reproduces t2t's per-sentence limit ceil(a (S + 1) + b).

Glossary: D model width, H heads, E head width, F feed-forward width, V vocabulary,
P position rows.
"""

import json
import math
import os
import shutil

import numpy as np

from t2t.config import ModelConfig
from t2t.data.batch import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from t2t.errors import UserError
from t2t.export.ctranslate2 import LAYER_NORM_EPSILON, output_limit, position_rows
from t2t.export.params import Params, position_table
from t2t.workdir import load_model, require_sentencepiece

HF_LAYER_NORM_EPSILON = 1e-5  # torch.nn.LayerNorm's default; Blenderbot does not make it configurable
STREAM_SCALE = math.sqrt(HF_LAYER_NORM_EPSILON / LAYER_NORM_EPSILON)  # c: LN(c x, c^2 eps) = LN(x, eps)
EXPORT_MAP = 't2t_export_map.json'  # which t2t parameter (times which factor) each HF tensor holds


def _transformers():
  try:
    import torch  # noqa: F401
    import transformers
  except ImportError:
    raise UserError("the hf export needs transformers and torch: pip install -e '.[hf]'") from None
  return transformers


# Variants Blenderbot has no place for: config.model field -> (refused values, why).
UNREPRESENTABLE = {
    'positional': (('rope', 'relative'), 'Blenderbot adds a position table to the embeddings'),
    'norm': (('rmsnorm',), 'Blenderbot has LayerNorms only'),
    'ffn': (('swiglu', 'geglu'), 'Blenderbot has no gated feed-forward'),
}


def check_representable(config: ModelConfig) -> None:
  """Raises UserError (one line, naming the config field) for a model HF cannot represent exactly."""
  if not config.pre_norm:
    raise UserError('config.model.pre_norm=False (post-LN) has no exact Hugging Face architecture '
                    '(Marian/FSMT recompute their own sinusoids, BART adds an embedding LayerNorm): '
                    'export it with --format ct2')
  for field, (values, why) in UNREPRESENTABLE.items():
    if getattr(config, field) in values:
      raise UserError(f'config.model.{field}={getattr(config, field)!r} cannot be exported to Hugging Face '
                      f'Transformers ({why}): use --format ct2 if it maps it, or retrain without it')
  if config.kv_heads != config.num_heads:
    raise UserError(f'config.model.num_kv_heads={config.num_kv_heads} cannot be exported to Hugging Face '
                    'Transformers (Blenderbot has one key/value head per query head): use --format ct2')


def hf_config(config: ModelConfig):
  """The `BlenderbotConfig` of t2t's model."""
  transformers = _transformers()
  return transformers.BlenderbotConfig(
      vocab_size=config.vocab_size, d_model=config.d_model, max_position_embeddings=position_rows(config),
      encoder_layers=config.num_encoder_layers, decoder_layers=config.num_decoder_layers,
      encoder_attention_heads=config.num_heads, decoder_attention_heads=config.num_heads,
      encoder_ffn_dim=config.d_ff, decoder_ffn_dim=config.d_ff, activation_function=config.ffn,
      scale_embedding=True, dropout=config.dropout, attention_dropout=config.attention_dropout,
      activation_dropout=config.activation_dropout, tie_word_embeddings=config.tie_embeddings,
      pad_token_id=PAD_ID, eos_token_id=EOS_ID, bos_token_id=BOS_ID, decoder_start_token_id=BOS_ID,
      forced_eos_token_id=EOS_ID, encoder_no_repeat_ngram_size=0, architectures=['BlenderbotForConditionalGeneration'])


class _StateDict:
  """HF tensors by name, each recorded with the t2t parameter (and factor) it came from."""

  def __init__(self, params: Params):
    self.params = params
    self.tensors: dict[str, np.ndarray] = {}
    self.sources: dict[str, str] = {}

  def put(self, name: str, array: np.ndarray, source: str, factor: float = 1.0):
    self.tensors[name] = np.ascontiguousarray(array * np.float32(factor), np.float32)
    self.sources[name] = source if factor == 1.0 else f'{source} * {factor:.9g}'

  def linear(self, name: str, t2t_name: str, in_axes: int = 1, factor: float = 1.0, split: int = 1):
    """A torch Linear (or `split` of them, e.g. q/k/v) from one flax Dense; names ending in '{}' get q, k, v."""
    weight, bias = self.params.dense(t2t_name, in_axes)  # [out, in], [out]
    parts = ('q', 'k', 'v')[3 - split:] if split > 1 else ('',)
    for index, (part, w, b) in enumerate(zip(parts, np.split(weight, split), np.split(bias, split))):
      block = f' block {index} of {split}' if split > 1 else ''  # e.g. qkv [D, 3, H, E]: [:, index]
      self.put(f'{name.format(part)}.weight', w, f'{t2t_name}/kernel{block}', factor)
      self.put(f'{name.format(part)}.bias', b, f'{t2t_name}/bias{block}', factor)

  def norm(self, name: str, t2t_name: str, factor: float = 1.0):
    scale, bias = self.params.norm(t2t_name)
    assert bias is not None  # a LayerNorm: check_representable refuses config.model.norm='rmsnorm'
    self.put(f'{name}.weight', scale, f'{t2t_name}/scale', factor)
    self.put(f'{name}.bias', bias, f'{t2t_name}/bias', factor)


def state_dict(config: ModelConfig, params) -> _StateDict:
  """Every tensor of `BlenderbotForConditionalGeneration(hf_config(config))`, from t2t's params."""
  check_representable(config)
  params = Params(params, 'Hugging Face')
  c = STREAM_SCALE
  sd = _StateDict(params)
  embedding = params('embedding/embed/embedding')  # [V, D]
  for name in ('model.shared', 'model.encoder.embed_tokens', 'model.decoder.embed_tokens'):
    sd.put(f'{name}.weight', embedding, 'embedding/embed/embedding', c)
  positions = position_table(config, params, position_rows(config))  # [P, D]
  position_source = ('embedding/positions/embedding' if config.positional == 'learned'
                     else 'sinusoidal_encoding (no parameter)')
  for side in ('encoder', 'decoder'):
    sd.put(f'model.{side}.embed_positions.weight', positions, position_source, c)

  for i in range(config.num_encoder_layers):
    hf, t2t = f'model.encoder.layers.{i}', f'encoder_layers_{i}'
    sd.linear(hf + '.self_attn.{}_proj', f'{t2t}/self_attention/qkv', split=3)  # [D, 3, H, E] -> 3 x [D, D]
    sd.linear(hf + '.self_attn.out_proj', f'{t2t}/self_attention/out', in_axes=2, factor=c)  # [H, E, D]
    sd.norm(hf + '.self_attn_layer_norm', f'{t2t}/attention_block/norm')
    _feed_forward(sd, hf, t2t)
  sd.norm('model.encoder.layer_norm', 'encoder_norm')  # sees c x: returns t2t's encoder output

  for i in range(config.num_decoder_layers):
    hf, t2t = f'model.decoder.layers.{i}', f'decoder_layers_{i}'
    sd.linear(hf + '.self_attn.{}_proj', f'{t2t}/self_attention/qkv', split=3)
    sd.linear(hf + '.self_attn.out_proj', f'{t2t}/self_attention/out', in_axes=2, factor=c)
    sd.norm(hf + '.self_attn_layer_norm', f'{t2t}/self_block/norm')
    sd.linear(hf + '.encoder_attn.q_proj', f'{t2t}/cross_attention/query')  # [D, H, E] -> [D, D]
    sd.linear(hf + '.encoder_attn.{}_proj', f'{t2t}/cross_attention/kv', split=2)  # [D, 2, H, E] -> 2 x [D, D]
    sd.linear(hf + '.encoder_attn.out_proj', f'{t2t}/cross_attention/out', in_axes=2, factor=c)
    sd.norm(hf + '.encoder_attn_layer_norm', f'{t2t}/cross_block/norm')
    _feed_forward(sd, hf, t2t)

  if config.tie_embeddings:
    # lm_head is the c-scaled embedding: feed it y / c.
    sd.norm('model.decoder.layer_norm', 'decoder_norm', 1 / c)
    sd.put('lm_head.weight', embedding, 'embedding/embed/embedding', c)
    sd.put('final_logits_bias', np.zeros((1, config.vocab_size)), 'zeros (tied output has no bias)')
  else:
    sd.norm('model.decoder.layer_norm', 'decoder_norm')
    weight, bias = params.dense('output')  # [V, D], [V]
    sd.put('lm_head.weight', weight, 'output/kernel')
    sd.put('final_logits_bias', bias[None], 'output/bias')  # [1, V]
  params.check_all_used()
  return sd


def _feed_forward(sd: _StateDict, hf: str, t2t: str):
  sd.linear(hf + '.fc1', f'{t2t}/ffn/Dense_0')  # [F, D]
  sd.linear(hf + '.fc2', f'{t2t}/ffn/Dense_1', factor=STREAM_SCALE)  # [D, F]
  sd.norm(hf + '.final_layer_norm', f'{t2t}/ffn_block/norm')


def build_model(config: ModelConfig, params):
  """(BlenderbotForConditionalGeneration in eval mode holding t2t's weights, the export map).

  Raises UserError if a t2t parameter is left unmapped or an HF tensor is left unset.
  """
  transformers = _transformers()
  import torch
  sd = state_dict(config, params)
  model = transformers.BlenderbotForConditionalGeneration(hf_config(config))
  expected = set(model.state_dict())
  if set(sd.tensors) != expected:
    unset, extra = sorted(expected - set(sd.tensors)), sorted(set(sd.tensors) - expected)
    raise UserError(f'the Hugging Face export does not match transformers {transformers.__version__}: '
                    f'tensors not set {unset}, unknown {extra}; nothing was written')
  model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.tensors.items()}, strict=True)
  model.generation_config = generation_config(config)
  return model.eval(), sd.sources


def generation_config(config: ModelConfig):
  """Greedy search, at most max_len output tokens (EOS included, forced at the limit), as t2t's."""
  transformers = _transformers()
  return transformers.GenerationConfig(
      decoder_start_token_id=BOS_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
      forced_eos_token_id=EOS_ID, max_length=config.max_len + 1, num_beams=1, do_sample=False)


def build_tokenizer(spm_path: str, max_length: int):
  """A `PreTrainedTokenizerFast` with t2t's SentencePiece pieces and ids, EOS after every source."""
  transformers = _transformers()
  from tokenizers import processors
  from transformers.convert_slow_tokenizer import SpmConverter

  class _Model:  # what SpmConverter reads from a slow tokenizer
    vocab_file = spm_path
    add_prefix_space = True

  class _Converter(SpmConverter):
    def post_processor(self):
      return processors.TemplateProcessing(single='$A </s>', pair='$A </s> $B </s>',
                                           special_tokens=[('</s>', EOS_ID)])

  backend = _Converter(_Model()).converted()
  return transformers.PreTrainedTokenizerFast(
      tokenizer_object=backend, pad_token='<pad>', eos_token='</s>', bos_token='<s>', unk_token='<unk>',
      model_max_length=max_length)


def save(config: ModelConfig, params, tokenizer, out_dir: str) -> None:
  """Writes the model, tokenizer and generation config into out_dir (replaced if it exists)."""
  model, sources = build_model(config, params)
  hf_tokenizer = build_tokenizer(tokenizer.path, position_rows(config))
  ids = [hf_tokenizer.convert_tokens_to_ids(p) for p in ('<pad>', '</s>', '<s>', '<unk>')]
  if ids != [PAD_ID, EOS_ID, BOS_ID, UNK_ID] or len(hf_tokenizer) != config.vocab_size:
    raise UserError(f'{tokenizer.path}: the converted tokenizer has special ids {ids} and {len(hf_tokenizer)} '
                    f'pieces, the model {config.vocab_size}: export from an unmodified workdir')
  if os.path.exists(out_dir):
    shutil.rmtree(out_dir)
  model.save_pretrained(out_dir)
  hf_tokenizer.save_pretrained(out_dir)
  with open(os.path.join(out_dir, EXPORT_MAP), 'w', encoding='utf-8') as f:
    json.dump(sources, f, indent=1)


def hf_translate_ids(model, src_ids_list: list[list[int]], max_len_a: float, max_len_b: int,
                     model_max_len: int, batch_size: int = 64) -> list[list[int]]:
  """Greedy translations (ids without BOS/EOS) with an HF model, under t2t's length limit.

  Sources are cut to max_len - 1 tokens and get EOS, outputs are limited to
  ceil(a * (S + 1) + b) tokens, EOS included (forced at the limit), at most max_len, as t2t's
  greedy search. Sentences are grouped by limit so each group is one `generate` call.
  """
  import torch
  sources = [list(s)[:model_max_len - 1] + [EOS_ID] for s in src_ids_list]
  groups: dict[int, list[int]] = {}
  for i, source in enumerate(sources):
    groups.setdefault(output_limit(len(source) - 1, max_len_a, max_len_b, model_max_len), []).append(i)
  results: list[list[int]] = [[] for _ in sources]
  for limit, members in sorted(groups.items()):
    for start in range(0, len(members), batch_size):
      rows = members[start:start + batch_size]
      width = max(len(sources[i]) for i in rows)
      ids = torch.tensor([sources[i] + [PAD_ID] * (width - len(sources[i])) for i in rows])  # [B, S]
      with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=ids != PAD_ID, max_length=limit + 1,
                             num_beams=1, do_sample=False)  # [B, 1 + T]
      for i, row in zip(rows, out.tolist()):
        tokens = row[1:]  # drop the decoder start token
        results[i] = tokens[:tokens.index(EOS_ID)] if EOS_ID in tokens else tokens
  return results


def export(workdir: str, out_dir: str, average_last: int = 0, force: bool = False, chosen: bool = True) -> str:
  """Writes the workdir's model as a Hugging Face model folder; returns out_dir.

  Args:
    workdir: a folder written by train.py.
    out_dir: the folder to create (AutoModelForSeq2SeqLM/AutoTokenizer.from_pretrained load it).
    average_last: average the parameters of the last K checkpoints first.
    force: replace out_dir if it exists.
  """
  if os.path.exists(out_dir) and not force:
    raise UserError(f'{out_dir} already exists: pass --force to replace it, or choose another --out')
  require_sentencepiece(workdir, 'Hugging Face Transformers')
  config, params, tokenizer = load_model(workdir, average_last, chosen=chosen)
  save(config, params, tokenizer, out_dir)
  return out_dir
