"""`ModelConfig`: the one typed description of a model's shape; `validate`: every config range.

The ml_collections files in configs/ hold a `model` group whose fields are exactly these
(minus `vocab_size`, which comes from the trained tokenizer); `ModelConfig.from_config`
turns it into this frozen dataclass, which the model consumes directly. The workdir keeps it
as `model_config.json` so evaluation rebuilds the same network with nothing else.
"""

import dataclasses
import importlib.util
import json
import math
import os

from t2t.errors import UserError
from t2t.search_options import SearchOptions


@dataclasses.dataclass(frozen=True)
class Range:
  """The valid values of one numeric config field, e.g. Range(0, 1, high_open=True) for [0, 1)."""
  low: float | None = None
  high: float | None = None
  low_open: bool = False
  high_open: bool = False
  integer: bool = False

  def __str__(self) -> str:
    kind = 'an integer' if self.integer else 'a number'
    if self.high is None:
      return f'{kind} {">" if self.low_open else ">="} {self.low:g}'
    return (f'{kind} in {"(" if self.low_open else "["}{self.low:g}, {self.high:g}'
            f'{")" if self.high_open else "]"}')

  def holds(self, value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
      return False
    if self.integer and value != int(value):
      return False
    if self.low is not None and (value <= self.low if self.low_open else value < self.low):
      return False
    return self.high is None or (value < self.high if self.high_open else value <= self.high)


POSITIVE = Range(0, low_open=True)
POSITIVE_INT = Range(1, integer=True)
COUNT = Range(0, integer=True)                 # 0 allowed (often "all" or "none")
RATE = Range(0, 1, high_open=True)             # dropout, label smoothing, Adam betas
NON_NEGATIVE = Range(0)

# Every numeric field of ModelConfig and its valid values.
MODEL_RANGES = {
    'vocab_size': Range(5, integer=True),      # the four special tokens and at least one piece
    'd_model': POSITIVE_INT, 'num_heads': POSITIVE_INT, 'num_encoder_layers': POSITIVE_INT,
    'num_decoder_layers': POSITIVE_INT, 'd_ff': POSITIVE_INT, 'max_len': Range(2, integer=True),
    'dropout': RATE, 'attention_dropout': RATE, 'activation_dropout': RATE, 'num_kv_heads': COUNT,
}

# Every string field of ModelConfig and its valid values (t2t/layers.py dispatches on them).
MODEL_CHOICES = {
    'positional': ('sinusoidal', 'learned', 'rope', 'relative'),
    'norm': ('layernorm', 'rmsnorm'),
    'ffn': ('relu', 'gelu', 'swiglu', 'geglu'),
    'dtype': ('float32', 'bfloat16'),
}

# Every numeric field of the training config (base_config) outside `config.model`.
TRAIN_RANGES = {
    'seed': COUNT, 'data.max_train_examples': COUNT,
    'vocab_size': Range(5, integer=True), 'max_len': Range(2, integer=True), 'batch_size': POSITIVE_INT,
    'num_train_steps': POSITIVE_INT, 'learning_rate': POSITIVE, 'warmup_steps': COUNT,
    'weight_decay': NON_NEGATIVE, 'adam_b1': RATE, 'adam_b2': RATE, 'adam_eps': POSITIVE,
    'label_smoothing': RATE, 'grad_clip_norm': NON_NEGATIVE, 'grad_accum_steps': POSITIVE_INT,
    'max_consecutive_skips': POSITIVE_INT,
    'log_every_steps': POSITIVE_INT, 'eval_every_steps': POSITIVE_INT,
    'checkpoint_every_steps': POSITIVE_INT, 'keep_checkpoints': POSITIVE_INT,
    'eval_bleu_sentences': COUNT, 'decode_batch_size': POSITIVE_INT, 'peak_flops': NON_NEGATIVE,
    'spm_alpha': Range(0, 1), 'rdrop_alpha': NON_NEGATIVE,
}
# The numeric search fields are checked by their owner, SearchOptions (`_search_errors`).
SEARCH_FIELDS = ('beam_size', 'alpha', 'decode_max_len_a', 'decode_max_len_b', 'final_beam_size')


def range_errors(values: dict, ranges: dict, prefix: str) -> list[str]:
  """`config.<field>=<value>: use <range>` for each field of `values` outside its range."""
  return [f'{prefix}{name}={values[name]!r}: use {valid}'
          for name, valid in ranges.items() if name in values and not valid.holds(values[name])]


def validate(config, device_count: int) -> None:
  """Checks every numeric field of a training config (and its model group) against its range.

  Called before anything is written to the workdir. Raises one UserError whose single line
  names every field out of range (`config.<field>=<value>: use <range>`, joined by '; ').
  """
  flat = {'seed': config.seed, 'data.max_train_examples': config.data.max_train_examples,
          **{k: v for k, v in config.items() if k in TRAIN_RANGES}}
  errors = range_errors(flat, TRAIN_RANGES, 'config.')
  model = dict(config.model)
  errors += range_errors(model, {k: v for k, v in MODEL_RANGES.items() if k != 'vocab_size'},
                         'config.model.')
  errors += _search_errors(config)
  if not errors:
    errors += _relation_errors(config, model, device_count)
  if errors:
    raise UserError('; '.join(errors))
  ModelConfig.from_config(config.model, config.vocab_size)  # unknown fields, divisibility, names


def _relation_errors(config, model: dict, device_count: int) -> list[str]:
  """Checks between fields, once each field is in its own range."""
  errors = []
  if config.lr_schedule not in ('rsqrt', 'cosine'):
    errors.append(f"config.lr_schedule={config.lr_schedule!r}: use 'rsqrt' or 'cosine'")
  if config.batch_size % device_count:
    errors.append(f'config.batch_size={config.batch_size} must be a multiple of the {device_count} '
                  'devices')
  if config.lr_schedule == 'cosine' and config.warmup_steps >= config.num_train_steps:
    errors.append(f'config.warmup_steps={config.warmup_steps} must be below config.num_train_steps='
                  f'{config.num_train_steps} with config.lr_schedule="cosine" (it would never decay)')
  if config.max_len > model.get('max_len', ModelConfig.max_len):
    errors.append(f'config.max_len={config.max_len} exceeds config.model.max_len='
                  f'{model.get("max_len", ModelConfig.max_len)}: raise config.model.max_len')
  errors += _tokenizer_errors(config)
  return errors


def _search_errors(config) -> list[str]:
  """The searches the trainer and the final evaluation will run, built by SearchOptions (their one
  validator) from config.beam_size/alpha and config.final_beam_size/each of final_alphas."""
  alphas = tuple(config.final_alphas)
  if not alphas:
    return [f'config.final_alphas={alphas!r}: use one or more numbers >= 0']
  errors = []
  searches: list[dict] = [{}] + [dict(beam_field='final_beam_size', alpha=a, alpha_field='final_alphas') for a in alphas]
  for search in searches:
    try:
      SearchOptions.from_config(config, **search)
    except UserError as error:
      if str(error) not in errors:
        errors.append(str(error))
  return errors


def _tokenizer_errors(config) -> list[str]:
  kind = config.get('tokenizer_type', 'unigram')
  if kind not in ('unigram', 'bpe', 'byte'):
    return [f"config.tokenizer_type={kind!r}: use 'unigram', 'bpe' or 'byte'"]
  if kind == 'byte' and config.tokenizer_path:
    return [f"config.tokenizer_path={config.tokenizer_path!r} is a SentencePiece model, but "
            "config.tokenizer_type='byte' needs none: drop one of them"]
  if kind == 'byte' and config.get('spm_alpha', 0.0) > 0:
    return [f"config.spm_alpha={config.spm_alpha} samples SentencePiece segmentations, but "
            "config.tokenizer_type='byte' has only one: set config.spm_alpha=0 or use 'unigram'/'bpe'"]
  return []


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Shape and regularisation of an encoder-decoder Transformer."""
  vocab_size: int
  d_model: int = 512
  num_heads: int = 8
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  d_ff: int = 2048
  dropout: float = 0.1            # embeddings and residual branches
  attention_dropout: float = 0.0  # attention weights
  activation_dropout: float = 0.0  # inside the feed-forward network
  max_len: int = 256              # largest position the positional encoding covers
  # Where positions enter: added to the embeddings ('sinusoidal', 'learned' table of max_len
  # rows) or inside self-attention ('rope': rotary queries/keys; 'relative': T5's bucketed bias).
  positional: str = 'sinusoidal'
  norm: str = 'layernorm'         # 'layernorm' or 'rmsnorm' (every norm of the model)
  # Feed-forward activation: 'relu', 'gelu', or gated 'swiglu'/'geglu', which hold 3 D x d_ff
  # matrices instead of 2: d_ff = 2/3 of an ungated model's keeps the parameter count.
  ffn: str = 'relu'
  num_kv_heads: int = 0           # key/value heads (grouped-query; 1 = multi-query); 0 = num_heads
  pre_norm: bool = True           # False: post-LN as in Vaswani et al. (2017)
  tie_embeddings: bool = True     # output logits through the transposed shared embedding
  dtype: str = 'float32'          # compute dtype ('float32' or 'bfloat16'); params stay float32

  def __post_init__(self):
    errors = range_errors(dataclasses.asdict(self), MODEL_RANGES, 'config.model.')
    if errors:
      raise UserError('; '.join(errors))
    if self.d_model % self.num_heads:
      raise UserError(f'config.model.d_model={self.d_model} is not divisible by '
                      f'config.model.num_heads={self.num_heads}: choose values that divide')
    for name, choices in MODEL_CHOICES.items():
      if getattr(self, name) not in choices:
        raise UserError(f'config.model.{name}={getattr(self, name)!r}: use '
                        + ' or '.join(repr(c) for c in choices))
    if self.num_heads % self.kv_heads:
      raise UserError(f'config.model.num_kv_heads={self.num_kv_heads} does not divide config.model.num_heads='
                      f'{self.num_heads}: use a divisor (1 = multi-query) or 0 (= num_heads)')
    if self.positional == 'rope' and self.head_dim % 2:
      raise UserError(f"config.model.positional='rope' rotates pairs: the head width d_model / num_heads = "
                      f'{self.head_dim} must be even')

  @property
  def head_dim(self) -> int:
    return self.d_model // self.num_heads

  @property
  def kv_heads(self) -> int:
    """G, the key/value heads: num_kv_heads, or num_heads when it is 0."""
    return self.num_kv_heads or self.num_heads

  @property
  def max_sentence_tokens(self) -> int:
    """Most tokens of a source or output sentence: max_len - 1, one position is the EOS."""
    return self.max_len - 1

  @classmethod
  def from_config(cls, model_group, vocab_size: int) -> 'ModelConfig':
    """Builds from the `config.model` group of an ml_collections config."""
    fields = {f.name for f in dataclasses.fields(cls)} - {'vocab_size'}
    given = dict(model_group)
    unknown = sorted(set(given) - fields)
    if unknown:
      raise UserError(f'unknown field(s) config.model.{", config.model.".join(unknown)}; '
                      f'valid fields: {", ".join(sorted(fields))}')
    return cls(vocab_size=vocab_size, **given)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text: str) -> 'ModelConfig':
    return cls(**json.loads(text))


def base_config():
  """Every training field with its default; the presets in configs/ override what differs.

  Field names follow flax's examples (num_train_steps, warmup_steps, ...).
  """
  import ml_collections  # only the training/evaluation entry points need it

  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.source = 'builtin'      # 'builtin', 'text' or 'tfds'
  config.data.path = ''               # 'text': folder with <split>.<lang> files
  config.data.tfds_name = ''          # 'tfds': e.g. 'wmt14_translate/de-en'
  config.data.tfds_data_dir = ''      # 'tfds': where prepared datasets live ('' = TFDS default)
  config.data.src_lang = 'en'
  config.data.tgt_lang = 'de'
  config.data.train_split = 'train'
  config.data.eval_split = 'val'      # validation loss and BLEU during training
  config.data.test_split = 'test'     # evaluate.py's default split
  config.data.max_train_examples = 0  # 0 = all

  config.vocab_size = 8000            # SentencePiece joint vocabulary, trained on the first run
  config.tokenizer_path = ''          # an existing SentencePiece model to use instead
  config.character_coverage = 'auto'  # SentencePiece's: 'auto' = 0.9995 if one side's letters are
                                      # mostly CJK, else 1.0 (tokenizer.resolve_character_coverage);
                                      # or a number, e.g. --config.character_coverage=0.9995
  config.tokenizer_type = 'unigram'   # 'unigram' or 'bpe' (SentencePiece, config.vocab_size pieces),
                                      # or 'byte': UTF-8 bytes + 4 specials (V 260, nothing trained)
  config.spm_alpha = 0.0              # > 0: subword regularization on training batches only, a fresh
                                      # SentencePiece sample per epoch (t2t/data/sampling.py). unigram:
                                      # inverse temperature, smaller = more split: on Multi30k 0.1 gives
                                      # 1.9x the pieces, 0.3 1.1x, 0.5 1.03x; bpe: BPE-dropout rate
  config.max_len = 128                # tokens per packed row = longest sentence kept (with EOS)
  config.batch_size = 64              # packed rows per step, over all devices and hosts

  config.num_train_steps = 10_000
  config.learning_rate = 1e-3         # peak, reached at the end of warm-up
  config.warmup_steps = 4000
  config.lr_schedule = 'rsqrt'        # after warm-up: 'rsqrt' (Vaswani et al.) or 'cosine' (to 0
                                      # at num_train_steps; suits a fixed step budget)
  config.weight_decay = 0.0           # AdamW's decoupled decay, on matrices only: not biases, norms
                                      # or embeddings (t2t/train_step.py `decays` says why)
  config.adam_b1 = 0.9
  config.adam_b2 = 0.98
  config.adam_eps = 1e-9
  config.label_smoothing = 0.1
  config.rdrop_alpha = 0.0            # > 0: R-Drop, + alpha * symmetric KL between two dropout passes
                                      # (t2t/train_step.py); each step then costs two forward passes
  config.grad_clip_norm = 1.0         # 0 = no clipping
  config.grad_accum_steps = 1
  config.max_consecutive_skips = 10   # stop after this many non-finite steps in a row

  config.log_every_steps = 50
  config.peak_flops = 0.0             # one device's peak FLOP/s for the logged MFU; 0 = by device kind
                                      # (t2t/flops.py: H100/H200 989e12, A100 312e12, ...; CPU: no MFU)
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.keep_best = True             # also keep the checkpoint with the best validation BLEU
  config.eval_bleu_sentences = 500    # validation sentences decoded for BLEU (0 = all)

  # sacreBLEU tokenizer of every BLEU score (validation, final stage, evaluate.py): 'auto' = what
  # sacreBLEU's command line picks for data.tgt_lang (ja-mecab, zh, ko-mecab, else 13a), or a name.
  config.bleu_tokenize = 'auto'

  config.beam_size = 4
  config.alpha = 0.6                  # GNMT length penalty ((5 + len) / 6) ** alpha
  config.decode_max_len_a = 1.5       # output length limit: a * source length + b
  config.decode_max_len_b = 10
  config.decode_batch_size = 64       # decoder rows per batch: sentences x beam size

  # After the last step (train.py), choose on the validation split between the last, the best
  # and the average of the last `keep_checkpoints` checkpoints and a length penalty from
  # `final_alphas` (beam `final_beam_size`), then score the test split with the choice.
  config.final_eval = False
  config.final_beam_size = 4
  config.final_alphas = (0.6, 1.0)

  config.model = ml_collections.ConfigDict({
      f.name: f.default for f in dataclasses.fields(ModelConfig) if f.name != 'vocab_size'})
  return config


def changed_fields(saved: dict, config) -> list[tuple[str, object, object]]:
  """(field, saved value, config's value) for each dotted field where a run's saved config.json
  differs from `config`; a field added to t2t after the run was saved counts as its default there."""
  defaults = _flatten(json.loads(base_config().to_json_best_effort()))
  old, new = {**defaults, **_flatten(saved)}, _flatten(json.loads(config.to_json_best_effort()))
  return [(f, old.get(f), new.get(f)) for f in sorted(old.keys() | new.keys()) if old.get(f) != new.get(f)]


def _flatten(tree: dict, prefix: str = '') -> dict:
  """{'model': {'d_model': 8}} -> {'model.d_model': 8}."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[prefix + key] = value
  return flat


def check_config_file(path: str) -> None:
  """Raises a one-line UserError if `path` is not a readable Python file that compiles.

  Runs before the file is executed, so a missing file or a syntax error names the file (and
  the line) instead of ending in a traceback.
  """
  try:
    with open(path, 'rb') as f:
      source = f.read()
  except OSError as e:
    raise UserError(f'--config {path}: {e.strerror}; pass a file such as configs/default.py') from None
  try:
    compile(source, path, 'exec')
  except SyntaxError as e:
    raise UserError(f'{path}:{e.lineno}: Python syntax error ({e.msg}); fix the config file') from None


def load_config_file(path: str):
  """The `get_config()` of a configs/*.py file, with one-line UserErrors for a bad file."""
  check_config_file(path)
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f't2t_config_{name}', path)
  assert spec is not None and spec.loader is not None  # a .py path always has a source loader
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise UserError(f'{path}: no get_config() function; a config file defines get_config()')
  return module.get_config()
