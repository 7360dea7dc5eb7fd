"""Evaluate a workdir: translate a split or a file with beam search and score with sacreBLEU.

Everything needed comes from the workdir: model_config.json, spm.model, config.json (data
location) and the checkpoints.
"""

import os
import sys
import time

import ml_collections

from t2t import checkpoint as ckpt
from t2t import metrics
from t2t.data import pipeline, text
from t2t.data.tokenizer import Tokenizer
from t2t.errors import UserError
from t2t.inference import SearchOptions, Translator


def load_model(workdir: str, average_last: int = 0, step: int | None = None, best: bool = False):
  """(ModelConfig, params, Tokenizer) from a workdir.

  Params: the latest checkpoint's, or `step`'s, or the mean of the last `average_last`, or with
  `best` the checkpoint with the highest validation BLEU (<workdir>/best, config.keep_best).
  """
  model_config = ckpt.read_model_config(workdir)
  if best:
    restored = ckpt.restore_best_params(workdir)
    if restored is None:
      raise UserError(f'{os.path.join(workdir, ckpt.BEST_JSON)} not found: this workdir has no best '
                      'checkpoint (trained with config.keep_best=False, or before its first evaluation)')
    best_step, bleu, params = restored
    print(f'best checkpoint: step {best_step} (validation BLEU {bleu:.2f} during training)', file=sys.stderr)
  else:
    checkpointer = ckpt.Checkpointer(workdir)
    if average_last > 1:
      params, steps = checkpointer.average_params(average_last)
      print(f'averaged checkpoints {steps}', file=sys.stderr)
    else:
      params = checkpointer.restore_params(step)
    checkpointer.close()
  return model_config, params, load_tokenizer(workdir)


def load_tokenizer(workdir: str) -> Tokenizer:
  tokenizer_path = os.path.join(workdir, pipeline.TOKENIZER_NAME + '.model')
  if not os.path.exists(tokenizer_path):
    raise UserError(f'{tokenizer_path} not found: --workdir must be a folder written by train.py')
  return Tokenizer(tokenizer_path)


def load_sources(workdir: str, split: str | None, src: str | None, ref: str | None):
  """(source sentences, references or None, a name for the output file)."""
  if src:
    if ref:
      pairs, _ = text.read_parallel(src, ref)
      return [s for s, _ in pairs], [r for _, r in pairs], os.path.basename(src)
    return text.read_lines(src), None, os.path.basename(src)
  saved = ckpt.read_train_config(workdir)
  if saved is None:
    raise UserError(f'{os.path.join(workdir, ckpt.TRAIN_CONFIG)} not found: pass --src/--ref files')
  data_config = ml_collections.ConfigDict(saved['data'])
  split = split or data_config.test_split
  pairs = pipeline.load_pairs(data_config, split)
  return [s for s, _ in pairs], [t for _, t in pairs], split


def evaluate(workdir: str, options: SearchOptions, split: str | None = None, src: str | None = None,
             ref: str | None = None, output: str | None = None, average_last: int = 0,
             batch_size: int = 64, best: bool = False) -> metrics.CorpusScores | None:
  """Translates, writes detokenized hypotheses, prints sacreBLEU's BLEU and chrF lines."""
  if best and average_last > 1:
    raise UserError('--best and --average_last choose different parameters: pass one of them')
  model_config, params, tokenizer = load_model(workdir, average_last, best=best)
  sources, references, name = load_sources(workdir, split, src, ref)
  translator = Translator(model_config, params, tokenizer, batch_size)
  start = time.perf_counter()
  hypotheses = translator.translate(sources, options)
  seconds = time.perf_counter() - start
  tag = options.method if options.method != 'beam' else f'beam{options.beam_size}'
  output = output or os.path.join(workdir, f'{name}.{tag}.hyp')
  with open(output + '.tmp', 'w', encoding='utf-8') as f:
    f.writelines(h + '\n' for h in hypotheses)
  os.replace(output + '.tmp', output)
  print(f'wrote {len(hypotheses)} translations to {output} ({len(sources) / seconds:.1f} '
        f'sentences/s including compilation; {tag}, alpha {options.alpha})')
  if references is None:
    return None
  scores = metrics.corpus_scores(hypotheses, references)
  print(f'{scores.bleu_line}\n  signature: {scores.bleu_signature}')
  print(f'{scores.chrf_line}\n  signature: {scores.chrf_signature}')
  return scores
