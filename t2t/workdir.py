"""The workdir: the one place that knows its layout, and loading a model from it.

  config.json          the full training config (ml_collections, as JSON)
  model_config.json    t2t.config.ModelConfig: rebuilds the network
  spm.model            the SentencePiece tokenizer (spm.vocab beside it)
  spm.model.sha256     its SHA-256 (`sha256sum -c` format): a replaced tokenizer is refused
  checkpoints/<step>/  orbax checkpoints (t2t/checkpoint.py): `state` and `data` (iterator position)
  best/<step>/         the same, for the step with the highest validation BLEU so far
                       (config.keep_best); best.json says which step and its BLEU
  encoded/<split>/     the training split's token ids, made once (t2t/data/encoded.py)
  metrics.jsonl, tb/   training curves (t2t/monitor.py writes them, t2t/curves.py reads them)
  <name>.<search>.hyp  evaluate.py's translations (e.g. test.beam4.hyp)
  final_eval.json      the final evaluation's record; <test split>.final.hyp its translations

Every other module asks this one for a path, so a file name is spelled once. Files are
written atomically (t2t/files.py) and, on several processes, by process 0 only.
"""

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
    return json.load(f)


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


def read_tokenizer_hash(workdir: str) -> str | None:
  file_path = path(workdir, TOKENIZER_HASH)
  if not os.path.exists(file_path):
    return None
  with open(file_path) as f:
    return f.read().split()[0]


def write_tokenizer_hash(workdir: str, digest: str) -> None:
  write_main(path(workdir, TOKENIZER_HASH), f'{digest}  {TOKENIZER_MODEL}\n')


def read_best(workdir: str) -> dict | None:
  """{'step': N, 'bleu': B} of the best checkpoint so far, or None."""
  return read_json(path(workdir, BEST_JSON))


def write_best(workdir: str, step: int, bleu: float) -> None:
  write_main(path(workdir, BEST_JSON), json.dumps({'step': step, 'bleu': bleu}) + '\n')


# --- loading a model -----------------------------------------------------------------------

def load_tokenizer(workdir: str):
  """The workdir's t2t.data.tokenizer.Tokenizer."""
  from t2t.data.tokenizer import Tokenizer
  file_path = path(workdir, TOKENIZER_MODEL)
  if not os.path.exists(file_path):
    raise not_a_workdir(file_path)
  return Tokenizer(file_path)


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


def load_params(workdir: str, average_last: int = 0, step: int | None = None, best: bool = False):
  """Host (numpy) parameters: the latest checkpoint's, or `step`'s, or the mean of the last
  `average_last`, or with `best` the checkpoint with the highest validation BLEU (best/)."""
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
  checkpointer = Checkpointer(workdir, read_only=True)  # never touches a run in progress
  try:
    if average_last > 1:
      params, steps = checkpointer.average_params(average_last)
      print(f'averaged checkpoints {steps}', file=sys.stderr)
      return params
    return checkpointer.restore_params(step)
  finally:
    checkpointer.close()


def load_model(workdir: str, average_last: int = 0, step: int | None = None, best: bool = False):
  """(ModelConfig, params, Tokenizer) from a workdir; params as in `load_params`."""
  model_config = read_model_config(workdir)
  return model_config, load_params(workdir, average_last, step, best), load_tokenizer(workdir)
