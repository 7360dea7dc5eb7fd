"""`python -m t2t.export` / `t2t-export`: export a workdir to a CTranslate2 model folder.

  python -m t2t.export --workdir runs/demo --out runs/demo/ct2
  python -m t2t.export --workdir runs/demo --out runs/demo/ct2_int8 --quantization int8 --force
"""

import sys

from absl import flags

from t2t import cli, export

flags.DEFINE_string('workdir', None, 'A folder written by train.py.', required=True)
flags.DEFINE_string('out', None, 'The CTranslate2 model folder to write.', required=True)
flags.DEFINE_integer('average_last', 0, 'Average the parameters of the last K checkpoints first.')
flags.DEFINE_string('quantization', None, 'CTranslate2 weight type: int8, int8_float32, int16, float16, '
                    'bfloat16 ... (default: float32).')
flags.DEFINE_bool('force', False, 'Replace --out if it exists.')
flags.DEFINE_bool('no_chosen', False, "Export the latest checkpoint, not the one the workdir's final evaluation "
                  'chose on val (final_eval.json).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  out = export.export(FLAGS.workdir, FLAGS.out, FLAGS.average_last, FLAGS.quantization, FLAGS.force,
                      chosen=not FLAGS.no_chosen)
  print(f'wrote a CTranslate2 model to {out}', file=sys.stderr)


def run():
  cli.run(main)
