"""A recipe's last stage: choose checkpoint and length penalty on validation, score test once.

Candidates (all beam `config.final_beam_size`):
  last        the newest checkpoint
  average     the element-wise mean of the last `config.keep_checkpoints` checkpoints
  best        the checkpoint with the highest validation BLEU during training (config.keep_best)
The candidate with the highest validation BLEU at `final_alphas[0]` is kept, then each other
alpha in `config.final_alphas` is tried on validation with it. The test split is translated once,
with the winning pair, and scored with sacreBLEU (line and signature printed). Everything is
written to <workdir>/final_eval.json and the test translations to <workdir>/<test>.final.hyp.
That choice is then the workdir's default for evaluate.py, translate.py, t2t.export and
t2t.workdir.load_model (t2t.workdir.read_chosen reads it), so `evaluate.py --workdir W` gives this score.

  python -m t2t.final_eval --workdir runs/m30k_en_de     # again, on a finished workdir
"""

import json
import os
import sys
import time

import ml_collections
from absl import flags
from absl import logging as absl_logging

from t2t import checkpoint as ckpt
from t2t import cli, metrics
from t2t import workdir as wd
from t2t.data import pipeline
from t2t.errors import UserError
from t2t.files import write_atomic, write_lines_atomic
from t2t.inference import Translator
from t2t.search_options import SearchOptions


def candidates(workdir: str, average: int):
  """Yields (kind, name, steps, params) for last, average-of-last-K and best (kind: t2t.workdir.CHOSEN_CHECKPOINTS)."""
  checkpointer = ckpt.Checkpointer(workdir, read_only=True)
  try:
    steps = checkpointer.all_steps()
    if not steps:
      raise UserError(f'{checkpointer.directory}: no checkpoint found; train first')
    yield 'last', 'last', [steps[-1]], checkpointer.restore_params(steps[-1])
    if average > 1 and len(steps) > 1:
      params, averaged = checkpointer.average_params(average)
      yield 'average', f'average of last {len(averaged)}', averaged, params
  finally:
    checkpointer.close()
  best = wd.read_best(workdir)
  if best is not None and best['step'] != steps[-1]:
    step, bleu, params = wd.restore_best_params(workdir)
    yield 'best', f'best (val BLEU {bleu:.2f} in training)', [step], params


def search_options(config) -> list[SearchOptions]:
  """One SearchOptions per config.final_alphas (beam config.final_beam_size), validated."""
  return [SearchOptions.from_config(config, 'final_beam_size', alpha, 'final_alphas')
          for alpha in config.final_alphas]


def run(config, workdir: str) -> dict:
  """Chooses on config.data.eval_split, scores config.data.test_split; returns the record."""
  start = time.perf_counter()
  absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns that a read-only manager is read-only
  model_config, tokenizer = wd.read_model_config(workdir), wd.load_tokenizer(workdir)
  bleu_tokenize = metrics.config_bleu_tokenize(config)
  if not os.access(workdir, os.W_OK):  # checked before the (long) decoding, not after
    raise UserError(f'{workdir} is not writable, and the final evaluation writes {wd.FINAL_EVAL_JSON} and '
                    'the test translations there: make it writable and rerun')
  val = pipeline.load_pairs(config.data, config.data.eval_split)
  test = pipeline.load_pairs(config.data, config.data.test_split)
  alphas = list(config.final_alphas)
  translator = None
  record = {'validation': [], 'beam_size': config.final_beam_size,
            'max_len_a': config.decode_max_len_a, 'max_len_b': config.decode_max_len_b}

  options = dict(zip(alphas, search_options(config)))

  def val_bleu(name, steps, alpha):
    hypotheses = translator.translate([s for s, _ in val], options[alpha])
    bleu = metrics.corpus_scores(hypotheses, [t for _, t in val], bleu_tokenize).bleu
    record['validation'].append({'candidate': name, 'steps': steps, 'alpha': alpha, 'bleu': bleu})
    print(f'{config.data.eval_split} BLEU {bleu:6.2f}  alpha {alpha:<4}  {name}  steps {steps}',
          file=sys.stderr, flush=True)
    return bleu

  chosen = None  # (bleu, kind, name, steps, params)
  for kind, name, steps, params in candidates(workdir, config.keep_checkpoints):
    if translator is None:
      translator = Translator(model_config, params, tokenizer, config.decode_batch_size)
    else:
      translator.set_params(params)
    bleu = val_bleu(name, steps, alphas[0])
    if chosen is None or bleu > chosen[0]:
      chosen = (bleu, kind, name, steps, params)
  assert chosen is not None and translator is not None  # candidates() yields at least the last checkpoint
  best_bleu, kind, name, steps, params = chosen
  translator.set_params(params)
  alpha = alphas[0]
  for other in alphas[1:]:
    bleu = val_bleu(name, steps, other)
    if bleu > best_bleu:
      best_bleu, alpha = bleu, other

  hypotheses = translator.translate([s for s, _ in test], options[alpha])
  scores = metrics.corpus_scores(hypotheses, [t for _, t in test], bleu_tokenize)
  output = wd.final_hypothesis_path(workdir, config.data.test_split)
  write_lines_atomic(output, hypotheses)
  record.update(chosen={'candidate': name, 'checkpoint': kind, 'steps': steps, 'alpha': alpha, 'val_bleu': best_bleu},
                test_split=config.data.test_split, bleu=scores.bleu, bleu_line=scores.bleu_line,
                bleu_signature=scores.bleu_signature, chrf=scores.chrf, chrf_line=scores.chrf_line,
                chrf_signature=scores.chrf_signature, seconds=time.perf_counter() - start)
  write_atomic(wd.path(workdir, wd.FINAL_EVAL_JSON), json.dumps(record, indent=2))
  print(f'chosen on {config.data.eval_split}: {name}, beam {config.final_beam_size}, alpha {alpha} '
        f'(val BLEU {best_bleu:.2f})\n'
        f'{config.data.test_split} ({config.data.src_lang}->{config.data.tgt_lang}):\n'
        f'{scores.bleu_line}\n  signature: {scores.bleu_signature}\n'
        f'{scores.chrf_line}\n  signature: {scores.chrf_signature}\n'
        f'translations: {output}; record: {wd.path(workdir, wd.FINAL_EVAL_JSON)}', flush=True)
  return record


def _define_flags(values) -> None:
  flags.DEFINE_string('workdir', None, 'A folder written by train.py.', required=True, flag_values=values)


def _main(values, rest) -> None:
  if rest:
    raise UserError(f'unexpected argument {rest[0]!r}: pass only --workdir')
  run(ml_collections.ConfigDict(wd.require_train_config(values.workdir)), values.workdir)


def main(argv=None) -> None:
  """`python -m t2t.final_eval --workdir W`; argv: the arguments (default sys.argv[1:])."""
  cli.run_tool('python -m t2t.final_eval', __doc__.splitlines()[0], _define_flags, _main, argv)


if __name__ == '__main__':
  main()
