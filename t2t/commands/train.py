"""`train.py` / `t2t-train`: train a translation model.

  python train.py --workdir runs/demo                       # built-in corpus, configs/default.py
  python train.py --config configs/small.py --workdir runs/m30k --config.num_train_steps=4000

Rerunning the same command resumes from the workdir's latest checkpoint.
"""

import os

from absl import flags
from ml_collections import config_flags

from t2t import cli, trainer

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
config_flags.DEFINE_config_file('config', os.path.join(_ROOT, 'configs', 'default.py'),
                                'Training config file (configs/*.py).')
flags.DEFINE_string('workdir', None, 'Folder for checkpoints, tokenizer, configs and logs.', required=True)


def main(argv):
  del argv
  trainer.train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)


def run():
  cli.run(main)
