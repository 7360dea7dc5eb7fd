"""Shared plumbing for the command-line entry points: one-line errors, logging setup, config files.

Every command parses its flags with absl and runs through `run`, which turns a UserError (also
one raised while flags are parsed, e.g. by a bad --config file) into `error: ...` on stderr and
exit status 2.
"""

import sys

from absl import app
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from t2t.config import check_config_file
from t2t.errors import UserError


def run(main, argv=None) -> None:
  """absl.app.run(main), turning UserError into `error: ...` on stderr and exit status 2."""
  def guarded(args):
    # Orbax logs every save step at INFO; t2t's own progress goes to the bar and stderr.
    absl_logging.set_verbosity(absl_logging.WARNING)
    main(args)
  try:
    app.run(guarded, argv=argv)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


def define_config_file(name: str, default: str, help_string: str) -> None:
  """--<name> FILE plus --<name>.field=value overrides (ml_collections), with one-line file errors:
  the file is checked (exists, compiles) before ml_collections executes it."""
  config_flags.DEFINE_config_file(name, default, help_string)
  parser = flags.FLAGS[name].parser
  load = parser.parse

  def checked_parse(path):
    check_config_file(path.split(':', 1)[0])  # `file.py:arg` passes arg to get_config
    return load(path)
  parser.parse = checked_parse
