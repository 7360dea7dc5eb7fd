"""Shared plumbing for the command-line entry points: one-line errors, logging setup."""

import logging
import sys

from absl import app

from t2t.errors import UserError


def run(main) -> None:
  """absl.app.run(main), turning UserError into `error: ...` on stderr and exit status 2."""
  def guarded(argv):
    logging.getLogger().setLevel(logging.INFO)
    try:
      main(argv)
    except UserError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
  app.run(guarded)
