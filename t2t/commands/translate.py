"""`translate.py` / `t2t-translate` / `python -m t2t.translate`: translate text with a workdir.

  python translate.py --workdir runs/demo < in.en > out.de       # stdin to stdout, in batches
  python translate.py --workdir runs/m30k < in.en > out.de       # a recipe: what it chose on val
  python translate.py --workdir runs/demo --input in.en --nbest 4  # `score<TAB>text`, 4 per line
  python translate.py --workdir runs/demo --sampling --top_p 0.9 --seed 1 < in.en
  python translate.py --workdir runs/demo                          # on a terminal: a prompt
  python translate.py --workdir runs/demo --plot_attention a.png "A man rides a bike."
"""

import sys

from absl import flags

from t2t import attention_maps, cli, streaming
from t2t.data import text
from t2t.errors import UserError
from t2t.inference import Translator
from t2t.workdir import load_model

flags.DEFINE_string('workdir', None, 'A folder written by train.py.', required=True)
flags.DEFINE_string('input', None, 'Read sentences from this file instead of stdin.')
flags.DEFINE_integer('batch_size', 32, 'Lines translated (and written) at a time.')
flags.DEFINE_integer('beam_size', 4, 'Beam size; 1 means greedy search.')
flags.DEFINE_float('alpha', 0.6, 'GNMT length penalty exponent (beam search).')
flags.DEFINE_integer('nbest', 1, 'Translations per line, written as score<TAB>text (needs beam_size >= nbest, '
                     'or --sampling for independent samples).')
flags.DEFINE_bool('sampling', False, 'Sample instead of searching (uses --temperature, --top_k, --top_p, --seed).')
flags.DEFINE_float('temperature', 1.0, 'Sampling temperature.')
flags.DEFINE_integer('top_k', 0, 'Sample among the k most likely tokens only (0: all).')
flags.DEFINE_float('top_p', 1.0, 'Sample from the nucleus holding this probability mass (1: all).')
flags.DEFINE_integer('seed', 0, 'Sampling seed: the same seed and batch size give the same output.')
flags.DEFINE_float('max_len_a', 1.5, 'Output length limit: a * source length + b.')
flags.DEFINE_integer('max_len_b', 10, 'Output length limit: a * source length + b.')
flags.DEFINE_integer('average_last', 0, 'Average the parameters of the last K checkpoints.')
cli.define_no_chosen()
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
  chosen, options = cli.workdir_choice(FLAGS)
  config, params, tokenizer = load_model(FLAGS.workdir, FLAGS.average_last, chosen=chosen or False)
  translator = Translator(config, params, tokenizer, FLAGS.batch_size)
  if FLAGS.plot_attention:
    plot(translator, params, sentences, options)
    return
  line_translator = streaming.LineTranslator(translator, options, FLAGS.nbest, FLAGS.seed)
  if FLAGS.input is None and sys.stdin.isatty():
    streaming.interactive(line_translator, sys.stdin, sys.stdout, sys.stderr)
  else:
    streaming.translate_stream(line_translator, input_lines(), sys.stdout, FLAGS.batch_size)


def run():
  cli.run(main)
