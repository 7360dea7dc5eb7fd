"""Decoding speed: greedy and beam-4 translation of a whole test set with a trained workdir.

  python bench/decode_speed.py --workdir DIR [--split test2016] [--batch_size 64]  # rows: sentences x beam

Each search runs twice over the whole set: the first pass compiles every shape it meets, the
second is timed (compile time = first pass - second pass). Reports sentences/s, target tokens/s,
BLEU and the peak host memory. With CTranslate2 installed and `--ct2` (or an exported model in
DIR/ct2), a CTranslate2 row on the same model, sentences and beam. The last line is:

  decode sent/s greedy=<g> beam4=<b> [ct2_beam4=<c>]
"""

import argparse
import os
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402
from t2t import evaluation, metrics  # noqa: E402
from t2t import workdir as wd  # noqa: E402
from t2t.inference import SearchOptions, Translator  # noqa: E402


def run_t2t(translator: Translator, sources, options: SearchOptions):
  """(seconds of the timed pass, compile seconds, hypotheses as id lists)."""
  start = time.perf_counter()
  translator.translate_ids(sources, options)
  first = time.perf_counter() - start
  start = time.perf_counter()
  hypotheses = translator.translate_ids(sources, options)
  seconds = time.perf_counter() - start
  return seconds, max(first - seconds, 0.0), [h[0].tokens for h in hypotheses]


def run_ct2(workdir: str, tokenizer, sources, beam_size: int, batch_size: int, options: SearchOptions):
  from t2t import export
  ct2_dir = os.path.join(workdir, 'ct2')
  if not os.path.exists(os.path.join(ct2_dir, 'model.bin')):
    export.export(workdir, ct2_dir)
  translator = export.ct2_translator(ct2_dir, intra_threads=os.cpu_count() or 1)
  # CTranslate2's length penalty divides by len ** p rather than GNMT's ((5 + len) / 6) ** alpha;
  # the same exponent ranks hypotheses nearly alike (98/100 identical outputs in our parity check).
  translate = lambda: export.ct2_translate_ids(translator, tokenizer, sources, beam_size,
                                               options.max_len_a, options.max_len_b,
                                               length_penalty=options.alpha, batch_size=batch_size)
  translate()  # warm-up, as for t2t
  start = time.perf_counter()
  hypotheses = translate()
  return time.perf_counter() - start, 0.0, hypotheses


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--split', default=None, help="default: the workdir config's test split")
  parser.add_argument('--batch_size', type=int, default=64)
  parser.add_argument('--alpha', type=float, default=0.6)
  parser.add_argument('--ct2', action='store_true', help='add a CTranslate2 row (exports if needed)')
  args = parser.parse_args()

  model_config, params, tokenizer = wd.load_model(args.workdir)
  sentences, references, name = evaluation.load_sources(args.workdir, args.split, None, None)
  sources = tokenizer.encode_batch(sentences)
  translator = Translator(model_config, params, tokenizer, args.batch_size)
  print(f'machine: {common.machine()}; jax {jax.__version__} on {jax.local_device_count()} '
        f'{jax.devices()[0].platform} device(s)')
  print(f'{name}: {len(sources)} sentences; model D {model_config.d_model}, layers '
        f'{model_config.num_encoder_layers}+{model_config.num_decoder_layers}, V {model_config.vocab_size}; '
        f'batch {args.batch_size} rows: {translator.sentences_per_batch(SearchOptions("greedy", 1))} '
        f'sentences greedy, {translator.sentences_per_batch(SearchOptions("beam", 4))} beam 4')

  runs = {}
  for label, options in [('greedy', SearchOptions('greedy', 1, args.alpha)),
                         ('beam4', SearchOptions('beam', 4, args.alpha))]:
    runs[label] = run_t2t(translator, sources, options)
  if args.ct2:
    # CTranslate2 counts its batch in sentences: --batch_size sentences (its fastest on the 2-core
    # CPU: 77.1 sentences/s at 64 vs 52.0 at 16 on the Multi30k model, bench/RESULTS.md).
    runs['ct2_beam4'] = run_ct2(args.workdir, tokenizer, sources, 4, args.batch_size,
                                SearchOptions('beam', 4, args.alpha))

  print(f'\n{"search":<11}{"sent/s":>9}{"tokens/s":>10}{"seconds":>9}{"compile s":>11}{"BLEU":>7}')
  for label, (seconds, compiled, hypotheses) in runs.items():
    tokens = sum(len(h) + 1 for h in hypotheses)  # + EOS
    bleu = metrics.corpus_scores(tokenizer.decode_batch(hypotheses), references).bleu
    print(f'{label:<11}{len(sources) / seconds:>9.1f}{tokens / seconds:>10.0f}{seconds:>9.2f}'
          f'{compiled:>11.1f}{bleu:>7.2f}')
  print(f'peak host memory: {common.peak_rss_mib():.0f} MiB')
  rate = lambda label: len(sources) / runs[label][0]
  line = f'decode sent/s greedy={rate("greedy"):.1f} beam4={rate("beam4"):.1f}'
  if 'ct2_beam4' in runs:
    line += f' ct2_beam4={rate("ct2_beam4"):.1f}'
  print(line)


if __name__ == '__main__':
  main()
