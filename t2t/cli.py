"""Shared plumbing for the command-line entry points: one-line errors, logging setup."""

import sys

from absl import app
from absl import logging as absl_logging

from t2t.errors import UserError


def run(main) -> None:
  """absl.app.run(main), turning UserError into `error: ...` on stderr and exit status 2."""
  def guarded(argv):
    # Orbax logs every save step at INFO; t2t's own progress goes to the bar and stderr.
    absl_logging.set_verbosity(absl_logging.WARNING)
    try:
      main(argv)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
  app.run(guarded)
