"""`python -m t2t.export` / `t2t-export`: export a workdir to CTranslate2 or Hugging Face Transformers.

  python -m t2t.export --workdir runs/demo --out runs/demo/ct2
  python -m t2t.export --workdir runs/demo --out runs/demo/ct2_int8 --quantization int8 --force
  python -m t2t.export --workdir runs/demo --out runs/demo/hf --format hf
"""

import sys

from absl import flags

from t2t import cli
from t2t.errors import UserError

flags.DEFINE_string('workdir', None, 'A folder written by train.py.', required=True)
flags.DEFINE_string('out', None, 'The model folder to write.', required=True)
flags.DEFINE_enum('format', 'ct2', ['ct2', 'hf'], 'ct2: a CTranslate2 model; hf: a Hugging Face '
                  'Transformers model folder (AutoModelForSeq2SeqLM, AutoTokenizer).')
flags.DEFINE_integer('average_last', 0, 'Average the parameters of the last K checkpoints first.')
flags.DEFINE_string('quantization', None, 'CTranslate2 weight type: int8, int8_float32, int16, float16, '
                    'bfloat16 ... (default: float32).')
flags.DEFINE_bool('force', False, 'Replace --out if it exists.')
flags.DEFINE_bool('no_chosen', False, "Export the latest checkpoint, not the one the workdir's final evaluation "
                  'chose on val (final_eval.json).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if FLAGS.format == 'hf':
    if FLAGS.quantization:
      raise UserError('--quantization is a CTranslate2 option: drop it with --format hf')
    from t2t.export import hf
    out = hf.export(FLAGS.workdir, FLAGS.out, FLAGS.average_last, FLAGS.force,
                    chosen=not FLAGS.no_chosen)
    print(f'wrote a Hugging Face Transformers model to {out}', file=sys.stderr)
  else:
    from t2t.export import ctranslate2
    out = ctranslate2.export(FLAGS.workdir, FLAGS.out, FLAGS.average_last, FLAGS.quantization, FLAGS.force,
                             chosen=not FLAGS.no_chosen)
    print(f'wrote a CTranslate2 model to {out}', file=sys.stderr)


def run():
  cli.run(main)
