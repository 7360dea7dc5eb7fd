"""Evaluate a workdir: translate a split or a file with beam search and score with sacreBLEU.

Everything needed comes from the workdir (t2t/workdir.py loads the model from it; config.json
gives the data location).
"""

import os
import time

import ml_collections

from t2t import ensemble, metrics
from t2t import workdir as wd
from t2t.data import pipeline, text
from t2t.errors import UserError
from t2t.files import write_lines_atomic
from t2t.inference import Translator
from t2t.search_options import SearchOptions
from t2t.workdir import load_model


def load_sources(workdir: str, split: str | None, src: str | None, ref: str | None):
  """(source sentences, references or None, a name for the output file)."""
  if src:
    if ref:
      pairs, _ = text.read_parallel(src, ref)
      return [s for s, _ in pairs], [r for _, r in pairs], os.path.basename(src)
    return text.read_lines(src, '--src'), None, os.path.basename(src)
  saved = wd.require_train_config(workdir, 'pass --src/--ref files')
  data_config = ml_collections.ConfigDict(saved['data'])
  split = split or data_config.test_split
  pairs = pipeline.load_pairs(data_config, split)
  return [s for s, _ in pairs], [t for _, t in pairs], split


def bleu_tokenize(workdir: str, setting: str | None) -> str:
  """The sacreBLEU tokenizer for scoring a workdir: `setting` (--bleu_tokenize), else its config's.

  'auto' resolves with the workdir's target language (config.data.tgt_lang).
  """
  saved = wd.read_train_config(workdir) or {}
  field = '--bleu_tokenize'
  if setting is None:
    setting = saved.get('bleu_tokenize', 'auto')  # workdirs from before the field: 'auto'
    field = f'bleu_tokenize in {wd.path(workdir, wd.TRAIN_CONFIG)}'
  return metrics.resolve_bleu_tokenize(setting, saved.get('data', {}).get('tgt_lang', ''), field)


def evaluate(workdir: str, options: SearchOptions, split: str | None = None, src: str | None = None,
             ref: str | None = None, output: str | None = None, average_last: int = 0,
             batch_size: int = 64, best: bool = False,
             bleu_tokenize_setting: str | None = None,
             chosen: wd.Chosen | None = None, ensemble_spec: str | None = None,
             seed: int = 0) -> metrics.CorpusScores | None:
  """Translates, writes detokenized hypotheses, prints sacreBLEU's BLEU and chrF lines.

  `bleu_tokenize_setting`: sacreBLEU tokenizer name or 'auto' (default: the workdir config's).
  Parameters: `best`, else the mean of the last `average_last`, else `chosen`'s checkpoint (the
  final evaluation's choice), else the latest checkpoint. `ensemble_spec` ('W1,W2:step', see
  t2t/ensemble.py): translate with those members instead; `workdir` is then the first of them
  (its data, tokenizer and folder). `seed`: the sampling seed of sampled MBR candidates.
  """
  if best and average_last > 1:
    raise UserError('--best and --average_last choose different parameters: pass one of them')
  if batch_size < 1:
    raise UserError(f'--batch_size {batch_size}: use 1 or more decoder rows')
  tokenize = bleu_tokenize(workdir, bleu_tokenize_setting)
  if ensemble_spec is None:
    model_config, params, tokenizer = load_model(workdir, average_last, best=best, chosen=chosen or False)
    members = [(model_config, params)]
  else:
    members, tokenizer = ensemble.load_ensemble(ensemble_spec)
  sources, references, name = load_sources(workdir, split, src, ref)
  tag = options.method if options.method != 'beam' else f'beam{options.beam_size}'
  if options.mbr:
    tag = f'mbr{options.mbr}{options.mbr_candidates}.{options.mbr_metric}'
  if ensemble_spec is not None:
    tag = f'ensemble{len(members)}.{tag}'
  output = output or wd.hypothesis_path(workdir, name, tag)
  folder = os.path.dirname(os.path.abspath(output))
  if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
    raise UserError(f'cannot write {output}: {folder} is not a folder you can write to; '
                    'pass --output with a path in one')  # checked before the (long) decoding
  translator = Translator.ensemble(members, tokenizer, batch_size)
  start = time.perf_counter()
  hypotheses = translator.translate(sources, options, seed)
  seconds = time.perf_counter() - start
  write_lines_atomic(output, hypotheses)
  alpha = f', alpha {options.alpha}' if options.method == 'beam' else ''  # the length penalty is beam search's
  print(f'wrote {len(hypotheses)} translations to {output} ({len(sources) / seconds:.1f} '
        f'sentences/s including compilation; {tag}{alpha})')
  if references is None:
    return None
  scores = metrics.corpus_scores(hypotheses, references, tokenize)
  print(f'{scores.bleu_line}\n  signature: {scores.bleu_signature}')
  print(f'{scores.chrf_line}\n  signature: {scores.chrf_signature}')
  return scores
