"""`evaluate.py` / `t2t-evaluate`: translate a split or a file and score it with sacreBLEU.

  python evaluate.py --workdir runs/demo                      # the config's test split
  python evaluate.py --workdir runs/m30k                      # with the recipe's choice on val
  python evaluate.py --workdir runs/m30k --no_chosen          # latest checkpoint, beam 4, alpha 0.6
  python evaluate.py --workdir runs/m30k --split val --beam_size 4 --alpha 0.6
  python evaluate.py --workdir runs/m30k --src test.en --ref test.de
  python evaluate.py --workdir runs/m30k --average_last 5     # mean of the last 5 checkpoints
  python evaluate.py --workdir runs/m30k --best               # best validation BLEU in training
  python evaluate.py --workdir runs/enja --bleu_tokenize ja-mecab   # any sacreBLEU tokenizer
  python evaluate.py --ensemble runs/a,runs/b:700             # members' mean probability; data, output
                                                              # folder and tokenizer from runs/a
"""

from absl import flags

from t2t import cli, ensemble, evaluation
from t2t.search_options import SearchOptions

flags.DEFINE_string('workdir', None, 'A folder written by train.py (or use --ensemble).')
flags.DEFINE_string('ensemble', None, 'Evaluate several models together: workdirs or workdir:step checkpoints, '
                    'comma-separated, sharing one vocabulary; each step uses the log of their mean '
                    'probability. The first member gives the data split and the output folder; search '
                    'settings come from the flags only.')
flags.DEFINE_string('split', None, "Split of the training data's source (default: its test split).")
flags.DEFINE_string('src', None, 'Source file, one sentence per line (instead of --split).')
flags.DEFINE_string('ref', None, 'Reference file for --src.')
flags.DEFINE_string('output', None, 'Where to write translations (default: in the workdir).')
flags.DEFINE_integer('beam_size', 4, 'Beam size; 1 means greedy search.')
flags.DEFINE_float('alpha', 0.6, 'GNMT length penalty exponent.')
flags.DEFINE_float('max_len_a', 1.5, 'Output length limit: a * source length + b.')
flags.DEFINE_integer('max_len_b', 10, 'Output length limit: a * source length + b.')
flags.DEFINE_integer('average_last', 0, 'Average the parameters of the last K checkpoints.')
cli.define_mbr()
cli.define_sampling()  # for --mbr's sampled candidates
cli.define_no_chosen()
flags.DEFINE_bool('best', False, 'Use the checkpoint with the best validation BLEU during training.')
flags.DEFINE_integer('batch_size', 64, 'Decoder rows per batch: sentences x beam size.')
flags.DEFINE_string('bleu_tokenize', None, "sacreBLEU tokenizer for BLEU: 'auto' (sacreBLEU's choice for "
                    "the target language: ja-mecab, zh, ko-mecab, else 13a) or a name such as 13a, none, "
                    "char (default: the workdir's config.bleu_tokenize).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  spec = ensemble.check_flags(FLAGS)
  if spec is None:
    workdir = FLAGS.workdir
    chosen, options = cli.workdir_choice(FLAGS)
  else:  # the first member gives the data and the output folder; the flags the search
    workdir = ensemble.parse(spec)[0][0]
    chosen, options = None, SearchOptions.from_flags(FLAGS)
  evaluation.evaluate(workdir, options, FLAGS.split, FLAGS.src, FLAGS.ref, FLAGS.output,
                      FLAGS.average_last, FLAGS.batch_size, FLAGS.best, FLAGS.bleu_tokenize, chosen,
                      ensemble_spec=spec, seed=FLAGS.seed)


def run():
  cli.run(main)
