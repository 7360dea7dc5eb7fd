"""The workdir: the one place that knows its layout, and loading a model from it.

  config.json          the full training config (ml_collections, as JSON)
  model_config.json    t2t.config.ModelConfig: rebuilds the network
  spm.model            the SentencePiece tokenizer (spm.vocab beside it); or, with
  bytes.json           config.tokenizer_type='byte', the byte tokenizer's record instead
  <that>.sha256        its SHA-256 (`sha256sum -c` format): a replaced tokenizer is refused
  checkpoints/<step>/  orbax checkpoints (t2t/checkpoint.py): `state` and `data` (iterator position)
  best/<step>/         the same, for the step with the highest validation BLEU so far
                       (config.keep_best); best.json says which step and its BLEU
  encoded/<split>/     the training split's token ids, made once (t2t/data/encoded.py)
  metrics.jsonl, tb/   training curves (t2t/monitor.py writes them, t2t/curves.py reads them)
  <name>.<search>.hyp  evaluate.py's translations (e.g. test.beam4.hyp)
  final_eval.json      the final evaluation's record; <test split>.final.hyp its translations.
                       Its choice (checkpoint, beam, alpha: `read_chosen`) is what evaluate.py,
                       translate.py, t2t.export and `load_model` use unless told otherwise

Every other module asks this one for a path, so a file name is spelled once. Files are
written atomically (t2t/files.py) and, on several processes, by process 0 only.
"""

import dataclasses
import hashlib
import json
import os
import sys

import jax

from t2t.config import ModelConfig
from t2t.errors import UserError
from t2t.files import write_atomic

TRAIN_CONFIG = 'config.json'
MODEL_CONFIG = 'model_config.json'
TOKENIZER_NAME = 'spm'                      # the tokenizer's prefix: spm.model / spm.vocab
TOKENIZER_MODEL = TOKENIZER_NAME + '.model'
TOKENIZER_HASH = TOKENIZER_MODEL + '.sha256'
BYTE_TOKENIZER = 'bytes.json'               # config.tokenizer_type='byte' (t2t/data/tokenizer.py)
CHECKPOINTS = 'checkpoints'
BEST_FOLDER = 'best'
BEST_JSON = 'best.json'
METRICS = 'metrics.jsonl'
ENCODED = 'encoded'
TENSORBOARD = 'tb'
FINAL_EVAL_JSON = 'final_eval.json'


def path(workdir: str, name: str) -> str:
  """<workdir>/<name> for one of the names above."""
  return os.path.join(workdir, name)


def encoded_path(workdir: str, split: str) -> str:
  """The folder of one split's encoded corpus (t2t/data/encoded.py)."""
  return path(workdir, os.path.join(ENCODED, split))


def hypothesis_path(workdir: str, name: str, search: str) -> str:
  """evaluate.py's translations of `name` (a split or a source file name) with `search` (beam4, ...)."""
  return path(workdir, f'{name}.{search}.hyp')


def final_hypothesis_path(workdir: str, test_split: str) -> str:
  return path(workdir, f'{test_split}.final.hyp')


def not_a_workdir(missing: str) -> UserError:
  return UserError(f'{missing} not found: --workdir must be a folder written by train.py')


# --- small files ---------------------------------------------------------------------------

def write_main(file_path: str, text: str) -> None:
  """Atomic write by process 0 only (every process computes the same content)."""
  if jax.process_index() == 0:
    write_atomic(file_path, text)


def read_json(file_path: str) -> dict | None:
  if not os.path.exists(file_path):
    return None
  with open(file_path) as f:
    try:
      return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise UserError(f'{file_path}: not valid JSON ({e}); t2t wrote it: restore it from a copy, or '
                      'train into a new --workdir') from None


def write_train_config(workdir: str, config) -> None:
  write_main(path(workdir, TRAIN_CONFIG), config.to_json_best_effort(indent=2, sort_keys=True))


def read_train_config(workdir: str) -> dict | None:
  return read_json(path(workdir, TRAIN_CONFIG))


def require_train_config(workdir: str, instead: str = '--workdir must be a folder written by train.py') -> dict:
  saved = read_train_config(workdir)
  if saved is None:
    raise UserError(f'{path(workdir, TRAIN_CONFIG)} not found: {instead}')
  return saved


def write_model_config(workdir: str, model_config: ModelConfig) -> None:
  write_main(path(workdir, MODEL_CONFIG), model_config.to_json())


def read_model_config(workdir: str) -> ModelConfig:
  file_path = path(workdir, MODEL_CONFIG)
  if not os.path.exists(file_path):
    raise not_a_workdir(file_path)
  with open(file_path) as f:
    return ModelConfig.from_json(f.read())


def file_sha256(file_path: str) -> str:
  digest = hashlib.sha256()
  with open(file_path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def tokenizer_path(workdir: str) -> str | None:
  """The workdir's tokenizer file (spm.model, or bytes.json for a byte tokenizer), None if neither."""
  for name in (TOKENIZER_MODEL, BYTE_TOKENIZER):
    if os.path.exists(path(workdir, name)):
      return path(workdir, name)
  return None


def require_sentencepiece(workdir: str, target: str) -> None:
  """Refuses, in one line, to export a byte-tokenizer workdir to `target` (it needs a SentencePiece model)."""
  found = tokenizer_path(workdir)
  if found is not None and os.path.basename(found) == BYTE_TOKENIZER:
    raise UserError(f"{found}: config.tokenizer_type='byte' cannot be exported to {target}, which reads a "
                    "SentencePiece model: translate with translate.py, or train with 'unigram' or 'bpe'")


def read_tokenizer_hash(workdir: str, name: str = TOKENIZER_MODEL) -> str | None:
  """The recorded SHA-256 of the tokenizer file `name` (spm.model or bytes.json), or None."""
  file_path = path(workdir, name + '.sha256')
  if not os.path.exists(file_path):
    return None
  with open(file_path) as f:
    return f.read().split()[0]


def write_tokenizer_hash(workdir: str, digest: str, name: str = TOKENIZER_MODEL) -> None:
  write_main(path(workdir, name + '.sha256'), f'{digest}  {name}\n')


def read_best(workdir: str) -> dict | None:
  """{'step': N, 'bleu': B} of the best checkpoint so far, or None."""
  return read_json(path(workdir, BEST_JSON))


def write_best(workdir: str, step: int, bleu: float) -> None:
  write_main(path(workdir, BEST_JSON), json.dumps({'step': step, 'bleu': bleu}) + '\n')


# --- the final evaluation's choice -------------------------------------------------------

CHOSEN_CHECKPOINTS = ('last', 'average', 'best')


@dataclasses.dataclass(frozen=True)
class Chosen:
  """What a recipe's final evaluation (t2t/final_eval.py) chose on validation, from final_eval.json.

  checkpoint: 'last', 'average' (the mean of `steps`) or 'best' (best/, config.keep_best);
  steps: the checkpoint steps it loaded. beam_size, alpha, max_len_a, max_len_b: its search.
  """
  file: str
  checkpoint: str
  steps: tuple[int, ...]
  beam_size: int
  alpha: float
  max_len_a: float
  max_len_b: int

  def checkpoint_name(self) -> str:
    """'last checkpoint (step 1800)', 'average of checkpoints 1400, 1600, 1800', 'best checkpoint (step 8)'."""
    if self.checkpoint == 'average':
      return f'average of checkpoints {", ".join(map(str, self.steps))}'
    return f'{self.checkpoint} checkpoint (step {self.steps[0]})'

  def search_defaults(self) -> dict:
    """Its search as training-config fields (SearchOptions.from_flags fills the flags not given with them)."""
    return {'beam_size': self.beam_size, 'alpha': self.alpha,
            'decode_max_len_a': self.max_len_a, 'decode_max_len_b': self.max_len_b}


def read_chosen(workdir: str) -> Chosen | None:
  """The choice recorded in <workdir>/final_eval.json, or None when there is none."""
  file_path = path(workdir, FINAL_EVAL_JSON)
  record = read_json(file_path)
  if record is None:
    return None
  try:
    chosen = record['chosen']
    # Records before `checkpoint` was written name it in the candidate: 'average of last 5', 'best (...)'.
    checkpoint = chosen.get('checkpoint') or chosen['candidate'].split()[0]
    # Older records have no output limit: it was the training config's.
    limits = record if 'max_len_a' in record else require_train_config(workdir)
    max_len_a = limits.get('max_len_a', limits.get('decode_max_len_a'))
    max_len_b = limits.get('max_len_b', limits.get('decode_max_len_b'))
    result = Chosen(file_path, checkpoint, tuple(int(s) for s in chosen['steps']), int(record['beam_size']),
                    float(chosen['alpha']), float(max_len_a), int(max_len_b))  # type: ignore[arg-type]
  except (KeyError, TypeError, ValueError, AttributeError):
    result = None
  if result is None or result.checkpoint not in CHOSEN_CHECKPOINTS or not result.steps:
    raise UserError(f'{file_path} is not a final evaluation record: run `python -m t2t.final_eval '
                    f'--workdir {workdir}` again, or pass --no_chosen')
  return result


# --- loading a model -----------------------------------------------------------------------

def load_tokenizer(workdir: str):
  """The workdir's tokenizer: a t2t.data.tokenizer.Tokenizer, or a ByteTokenizer."""
  from t2t.data import tokenizer
  file_path = tokenizer_path(workdir)
  if file_path is None:
    raise not_a_workdir(path(workdir, TOKENIZER_MODEL))
  return tokenizer.load(file_path)


def restore_best_params(workdir: str):
  """(step, validation BLEU, params) of the best checkpoint (config.keep_best), or None."""
  from t2t.checkpoint import Checkpointer
  best = read_best(workdir)
  if best is None:
    return None
  checkpointer = Checkpointer(workdir, read_only=True, folder=BEST_FOLDER)
  try:
    return best['step'], best['bleu'], checkpointer.restore_params(best['step'])
  finally:
    checkpointer.close()


def load_params(workdir: str, average_last: int = 0, step: int | None = None, best: bool = False,
                chosen: Chosen | None = None):
  """Host (numpy) parameters: the latest checkpoint's, or `step`'s, or the mean of the last
  `average_last`, or with `best` the checkpoint with the highest validation BLEU (best/), or,
  when none of these is given, `chosen`'s (the final evaluation's choice)."""
  from t2t.checkpoint import Checkpointer
  if average_last < 0:
    raise UserError(f'--average_last {average_last}: use 0 (the latest checkpoint) or the number of '
                    'last checkpoints to average')
  if best:
    restored = restore_best_params(workdir)
    if restored is None:
      raise UserError(f'{path(workdir, BEST_JSON)} not found: this workdir has no best '
                      'checkpoint (trained with config.keep_best=False, or before its first evaluation)')
    best_step, bleu, params = restored
    print(f'best checkpoint: step {best_step} (validation BLEU {bleu:.2f} during training)', file=sys.stderr)
    return params
  if chosen is not None and not average_last and step is None:
    return _chosen_params(workdir, chosen)
  checkpointer = Checkpointer(workdir, read_only=True)  # never touches a run in progress
  try:
    if average_last > 1:
      params, steps = checkpointer.average_params(average_last)
      print(f'averaged checkpoints {steps}', file=sys.stderr)
      return params
    return checkpointer.restore_params(step)
  finally:
    checkpointer.close()


def _chosen_params(workdir: str, chosen: Chosen):
  """The parameters the final evaluation scored: exactly its steps, from checkpoints/ or best/."""
  from t2t.checkpoint import Checkpointer  # deferred: checkpoint imports this module
  folder = BEST_FOLDER if chosen.checkpoint == 'best' else CHECKPOINTS
  checkpointer = Checkpointer(workdir, read_only=True, folder=folder)
  try:
    present = checkpointer.all_steps()
    missing = [s for s in chosen.steps if s not in present]
    if missing:
      raise UserError(f'{chosen.file} chose the {chosen.checkpoint_name()}, but {path(workdir, folder)} no '
                      f'longer holds step {missing[0]} (it has {present or "none"}): run `python -m '
                      f't2t.final_eval --workdir {workdir}` again, or pass --no_chosen')
    return checkpointer.mean_params(list(chosen.steps))
  finally:
    checkpointer.close()


def load_model(workdir: str, average_last: int = 0, step: int | None = None, best: bool = False,
               chosen: 'bool | Chosen' = True):
  """(ModelConfig, params, Tokenizer) from a workdir; params as in `load_params`.

  chosen: True (the default) loads the checkpoint that final_eval.json chose, when the workdir
  has one and no average_last/step/best is given, and says so on stderr (decode it with
  `SearchOptions.for_workdir(workdir)`); False the latest checkpoint; a `Chosen` is used as given,
  silently (the commands read it once and announce it with their flags).
  """
  choice: Chosen | None = None
  if chosen is True:
    choice = read_chosen(workdir)
    if choice is not None and not best and not average_last and step is None:
      print(f'using the checkpoint chosen on val in {choice.file}: {choice.checkpoint_name()} '
            f'(decoded there with beam {choice.beam_size}, alpha {choice.alpha})', file=sys.stderr)
  elif isinstance(chosen, Chosen):
    choice = chosen
  model_config = read_model_config(workdir)
  params = load_params(workdir, average_last, step, best, choice)
  return model_config, params, load_tokenizer(workdir)
