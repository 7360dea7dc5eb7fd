"""`translate.py` / `t2t-translate` / `python -m t2t.translate`: translate text with a workdir.

  python translate.py --workdir runs/demo < in.en > out.de       # stdin to stdout, in batches
  python translate.py --workdir runs/m30k < in.en > out.de       # a recipe: what it chose on val
  python translate.py --workdir runs/demo --input in.en --nbest 4  # `score<TAB>text`, 4 per line
  python translate.py --workdir runs/demo --sampling --top_p 0.9 --seed 1 < in.en
  python translate.py --workdir runs/demo                          # on a terminal: a prompt
  python translate.py --workdir runs/demo --plot_attention a.png "A man rides a bike."
  python translate.py --ensemble runs/a,runs/b:700 < in.en       # members' mean probability
  python translate.py --workdir runs/demo --input in.en --prefix_file prefixes.de   # forced starts
  python translate.py --workdir runs/demo --print_alignment < in.en  # `text ||| 0-0 1-2 ...`
"""

import sys

from absl import flags

from t2t import attention_maps, cli, ensemble, streaming
from t2t.data import text
from t2t.errors import UserError
from t2t.inference import Translator
from t2t.search_options import SearchOptions
from t2t.workdir import load_model

flags.DEFINE_string('workdir', None, 'A folder written by train.py (or use --ensemble).')
flags.DEFINE_string('ensemble', None, 'Translate with several models: workdirs or workdir:step checkpoints, '
                    'comma-separated, sharing one vocabulary; each step uses the log of their mean '
                    'probability. Search settings come from the flags only.')
flags.DEFINE_string('prefix_file', None, 'One target prefix per input line (empty: none): every translation '
                    'of the line starts with it and search continues from there.')
flags.DEFINE_string('input', None, 'Read sentences from this file instead of stdin.')
flags.DEFINE_integer('batch_size', 32, 'Lines translated (and written) at a time.')
flags.DEFINE_integer('beam_size', 4, 'Beam size; 1 means greedy search.')
flags.DEFINE_float('alpha', 0.6, 'GNMT length penalty exponent (beam search).')
flags.DEFINE_integer('nbest', 1, 'Translations per line, written as score<TAB>text (needs beam_size >= nbest, '
                     'or --sampling for independent samples).')
flags.DEFINE_bool('sampling', False, 'Sample instead of searching (uses --temperature, --top_k, --top_p, --seed).')
cli.define_sampling()
flags.DEFINE_float('max_len_a', 1.5, 'Output length limit: a * source length + b.')
flags.DEFINE_integer('max_len_b', 10, 'Output length limit: a * source length + b.')
flags.DEFINE_integer('average_last', 0, 'Average the parameters of the last K checkpoints.')
cli.define_mbr()
cli.define_no_chosen()
flags.DEFINE_bool('print_alignment', False, 'Follow each translation with " ||| " and its word alignment in '
                  'Pharaoh format (source word-target word, from 0), from the cross-attention of the '
                  "last decoder layer, mean of heads (an ensemble's first member).")
flags.DEFINE_string('plot_attention', None, 'Draw the cross-attention map of one sentence (the positional '
                    'argument, or the first input line) into this PNG.')
flags.DEFINE_string('attention_layer', 'mean', "Decoder layer to draw: an index, 'mean' or 'all'.")
flags.DEFINE_string('attention_head', 'mean', "Attention head to draw: an index, 'mean' or 'all'.")
FLAGS = flags.FLAGS


def input_lines():
  """Normalized lines of --input or stdin, read lazily; a line that is not UTF-8 becomes ''."""
  if FLAGS.input is None:
    yield from text.decoded_lines(sys.stdin.buffer, 'stdin', on_invalid=_warn_invalid)
    return
  try:
    f = open(FLAGS.input, 'rb')
  except OSError as e:
    raise UserError(f'cannot read --input {FLAGS.input}: {e.strerror}') from None
  with f:
    yield from text.decoded_lines(f, FLAGS.input, on_invalid=_warn_invalid)


def _warn_invalid(where: str) -> None:
  print(f'warning: {where}: wrote an empty line in its place; re-encode the input as UTF-8',
        file=sys.stderr)


def read_prefixes() -> list[str] | None:
  """The lines of --prefix_file (None without it); with --input, checked to have as many lines."""
  if FLAGS.prefix_file is None:
    return None
  prefixes = text.read_lines(FLAGS.prefix_file, '--prefix_file')
  if FLAGS.input is not None:
    count = sum(1 for _ in input_lines())
    if count != len(prefixes):
      raise UserError(f'--prefix_file {FLAGS.prefix_file} has {len(prefixes)} lines but --input {FLAGS.input} '
                      f'has {count}: give one prefix line (empty for none) per input line')
  return prefixes


def load_translator():
  """(Translator, SearchOptions, the single model's params or None for an ensemble)."""
  spec = ensemble.check_flags(FLAGS)
  if spec is not None:
    options = SearchOptions.from_flags(FLAGS)
    members, tokenizer = ensemble.load_ensemble(spec)
    return Translator.ensemble(members, tokenizer, FLAGS.batch_size), options, None
  chosen, options = cli.workdir_choice(FLAGS)
  config, params, tokenizer = load_model(FLAGS.workdir, FLAGS.average_last, chosen=chosen or False)
  return Translator(config, params, tokenizer, FLAGS.batch_size), options, params


def plot(translator, params, sentences, options):
  if not sentences:
    sentences = [next(iter(input_lines()), '')]
  sentence = ' '.join(sentences)
  if not sentence:
    raise UserError('--plot_attention needs a sentence: pass it as an argument, e.g. '
                    '--plot_attention a.png "A man rides a bike."')
  translation, _ = attention_maps.plot_translation(translator, params, sentence, FLAGS.plot_attention,
                                              options, FLAGS.attention_layer, FLAGS.attention_head)
  print(translation)
  print(f'wrote the attention map to {FLAGS.plot_attention}', file=sys.stderr)


def main(argv):
  sentences = argv[1:]
  if sentences and not FLAGS.plot_attention:
    raise UserError(f'unexpected argument {sentences[0]!r}: pipe sentences on stdin or use --input '
                    '(a sentence argument goes with --plot_attention)')
  if FLAGS.batch_size < 1:
    raise UserError(f'--batch_size {FLAGS.batch_size}: use 1 or more')
  if FLAGS.plot_attention and FLAGS.ensemble:
    raise UserError('--plot_attention draws one model: pass --workdir instead of --ensemble')
  prefixes = read_prefixes()
  if prefixes is not None and (FLAGS.plot_attention or (FLAGS.input is None and sys.stdin.isatty())):
    raise UserError('--prefix_file goes with --input or piped lines, one prefix per line')
  translator, options, params = load_translator()
  if FLAGS.plot_attention:
    plot(translator, params, sentences, options)
    return
  line_translator = streaming.LineTranslator(translator, options, FLAGS.nbest, FLAGS.seed,
                                             alignments=FLAGS.print_alignment)
  if FLAGS.input is None and sys.stdin.isatty():
    streaming.interactive(line_translator, sys.stdin, sys.stdout, sys.stderr)
  else:
    streaming.translate_stream(line_translator, input_lines(), sys.stdout, FLAGS.batch_size, prefixes)


def run():
  cli.run(main)
