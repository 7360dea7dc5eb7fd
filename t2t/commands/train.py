"""`train.py` / `t2t-train`: train a translation model.

  python train.py --workdir runs/demo                       # built-in corpus, configs/default.py
  python train.py --config configs/small.py --workdir runs/m30k --config.num_train_steps=4000

Rerunning the same command resumes from the workdir's latest checkpoint. On SIGTERM or
SIGINT the current step finishes, a checkpoint is written and the process exits with status
128 + the signal number (143 for SIGTERM, 130 for SIGINT), not 0: the run is not done, and
schedulers (SLURM --requeue, Kubernetes, preemptible-VM wrappers) restart a job only when it
did not succeed. Rerunning the same command continues from that checkpoint.

Several processes (multi-host): the same command on every host; see t2t/distributed.py.
"""

import os
import sys

from absl import flags

from t2t import cli, distributed, trainer

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
cli.define_config_file('config', os.path.join(_ROOT, 'configs', 'default.py'),
                       'Training config file (configs/*.py).')
flags.DEFINE_string('workdir', None, 'Folder for checkpoints, tokenizer, configs and logs.', required=True)
flags.DEFINE_string('coordinator_address', None, "Multi-process: process 0's host:port (all processes).")
flags.DEFINE_integer('num_processes', None, 'Multi-process: how many processes form the job.')
flags.DEFINE_integer('process_id', None, "Multi-process: this process's index, 0 .. num_processes - 1.")


def main(argv):
  del argv
  flag = flags.FLAGS
  distributed.initialize(flag.coordinator_address, flag.num_processes, flag.process_id)
  try:
    trainer.train_and_evaluate(flag.config, flag.workdir)
  except trainer.Interrupted as e:
    print(e, file=sys.stderr)
    sys.exit(128 + e.signum)


def run():
  cli.run(main)
