"""Decoding speed: greedy and beam-4 translation of a whole test set with a trained workdir.

  python bench/decode_speed.py --workdir DIR [--split test2016] [--batch_size 64]  # rows: sentences x beam
      [--batch_sentences 128] [--ct2 [--ct2_device cuda]] [--cache_stage 16] [--unstaged] [--json F]

Each search runs twice over the whole set: the first pass compiles every shape it meets, the
second is timed (compile time = first pass - second pass). --cache_stage sets the KV cache's
first length (it doubles as outputs grow; t2t.inference.CACHE_STAGE by default); --unstaged adds
a beam-4 row whose cache holds the whole output limit from the first step (cache_stage 0), the
layout before stages, and checks its translations are identical. --batch_sentences N decodes N sentences
at a time in every search (rows N x beam), instead of --batch_size rows. Reports sentences/s, target tokens/s,
BLEU and the peak host memory. With CTranslate2 installed and `--ct2` (or an exported model in
DIR/ct2), a CTranslate2 row on the same model, sentences and beam. The last line is:

  decode sent/s greedy=<g> beam4=<b> [ct2_beam4=<c>]
"""

import argparse
import json
import os
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402
from t2t import evaluation, metrics  # noqa: E402
from t2t import workdir as wd  # noqa: E402
from t2t.inference import CACHE_STAGE, SearchOptions, Translator  # noqa: E402


def run_t2t(translator: Translator, sources, options: SearchOptions):
  """(seconds of the timed pass, compile seconds, hypotheses as id lists)."""
  start = time.perf_counter()
  translator.translate_ids(sources, options)
  first = time.perf_counter() - start
  start = time.perf_counter()
  hypotheses = translator.translate_ids(sources, options)
  seconds = time.perf_counter() - start
  return seconds, max(first - seconds, 0.0), [h[0].tokens for h in hypotheses]


def run_ct2(workdir: str, tokenizer, sources, beam_size: int, batch_size: int, options: SearchOptions,
            device: str = 'cpu'):
  from t2t import export
  ct2_dir = os.path.join(workdir, 'ct2')
  if not os.path.exists(os.path.join(ct2_dir, 'model.bin')):
    export.export(workdir, ct2_dir)
  translator = export.ct2_translator(ct2_dir, device=device, intra_threads=os.cpu_count() or 1)
  # CTranslate2's length penalty divides by len ** p rather than GNMT's ((5 + len) / 6) ** alpha;
  # the same exponent ranks hypotheses nearly alike (98/100 identical outputs in our parity check).
  translate = lambda: export.ct2_translate_ids(translator, tokenizer, sources, beam_size,
                                               options.max_len_a, options.max_len_b,
                                               length_penalty=options.alpha, batch_size=batch_size)
  translate()  # warm-up, as for t2t
  start = time.perf_counter()
  hypotheses = translate()
  return time.perf_counter() - start, 0.0, hypotheses


def parser():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--split', default=None, help="default: the workdir config's test split")
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--alpha', type=float, default=0.6)
  parser.add_argument('--ct2', action='store_true', help='add a CTranslate2 row (exports if needed)')
  parser.add_argument('--ct2_device', default='cpu', help="CTranslate2's device: cpu or cuda")
  parser.add_argument('--batch_sentences', type=int, default=0, help='sentences per batch in every search')
  parser.add_argument('--cache_stage', type=int, default=CACHE_STAGE, help="the KV cache's first length")
  parser.add_argument('--unstaged', action='store_true', help='add a beam-4 row with cache_stage 0')
  parser.add_argument('--json', default=None, help='also write the figures to this file')
  return parser


def measure(args) -> dict:
  """Prints the table and returns its figures (for --json and bench/gpu_suite.py)."""
  model_config, params, tokenizer = wd.load_model(args.workdir)
  sentences, references, name = evaluation.load_sources(args.workdir, args.split, None, None)
  sources = tokenizer.encode_batch(sentences)
  searches = [('greedy', SearchOptions('greedy', 1, args.alpha)), ('beam4', SearchOptions('beam', 4, args.alpha))]
  rows = lambda options: args.batch_sentences * options.beams if args.batch_sentences else args.batch_size
  translators = {label: Translator(model_config, params, tokenizer, rows(options), args.cache_stage)
                 for label, options in searches}
  if args.unstaged:
    searches.append(('beam4_unstaged', searches[1][1]))
    translators['beam4_unstaged'] = Translator(model_config, params, tokenizer, rows(searches[1][1]), 0)
  print(f'machine: {common.machine()}; jax {jax.__version__} on {jax.local_device_count()} '
        f'{jax.devices()[0].platform} device(s)')
  print(f'{name}: {len(sources)} sentences; model D {model_config.d_model}, layers '
        f'{model_config.num_encoder_layers}+{model_config.num_decoder_layers}, V {model_config.vocab_size}; '
        f'batches: {translators["greedy"].sentences_per_batch(searches[0][1])} sentences greedy, '
        f'{translators["beam4"].sentences_per_batch(searches[1][1])} beam 4')

  runs = {}
  for label, options in searches:
    runs[label] = run_t2t(translators[label], sources, options)
  if args.ct2:
    # CTranslate2 counts its batch in sentences: --batch_size sentences (its fastest on the 2-core
    # CPU: 77.1 sentences/s at 64 vs 52.0 at 16 on the Multi30k model, bench/RESULTS.md).
    runs['ct2_beam4'] = run_ct2(args.workdir, tokenizer, sources, 4, args.batch_sentences or args.batch_size,
                                SearchOptions('beam', 4, args.alpha), args.ct2_device)

  print(f'\n{"search":<11}{"sent/s":>9}{"tokens/s":>10}{"seconds":>9}{"compile s":>11}{"BLEU":>7}')
  result = {'split': name, 'sentences': len(sources), 'device': jax.devices()[0].device_kind,
            'batch_sentences': args.batch_sentences, 'batch_rows': args.batch_size}
  for label, (seconds, compiled, hypotheses) in runs.items():
    tokens = sum(len(h) + 1 for h in hypotheses)  # + EOS
    bleu = metrics.corpus_scores(tokenizer.decode_batch(hypotheses), references).bleu
    print(f'{label:<11}{len(sources) / seconds:>9.1f}{tokens / seconds:>10.0f}{seconds:>9.2f}'
          f'{compiled:>11.1f}{bleu:>7.2f}')
    result[label] = {'sentences_per_s': len(sources) / seconds, 'tokens_per_s': tokens / seconds,
                     'seconds': seconds, 'compile_s': compiled, 'bleu': bleu}
  print(f'peak host memory: {common.peak_rss_mib():.0f} MiB')
  rate = lambda label: len(sources) / runs[label][0]
  line = f'decode sent/s greedy={rate("greedy"):.1f} beam4={rate("beam4"):.1f}'
  if 'beam4_unstaged' in runs:
    same = runs['beam4_unstaged'][2] == runs['beam4'][2]
    print(f'beam 4 translations with cache_stage {args.cache_stage} and 0 identical: {"yes" if same else "NO"}')
    line += f' beam4_unstaged={rate("beam4_unstaged"):.1f}'
  if 'ct2_beam4' in runs:
    line += f' ct2_beam4={rate("ct2_beam4"):.1f}'
  print(line)
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=2)
  return result


def main():
  measure(parser().parse_args())


if __name__ == '__main__':
  main()
