"""Shared plumbing for the command-line entry points: one-line errors, logging setup, config files.

Every command parses its flags with absl and turns a UserError into `error: ...` on stderr and
exit status 2 (`exit_on_user_error`). The installed commands (train, evaluate, translate,
export) define their flags globally in t2t/commands/ and start with `run` (absl.app); the module
tools (`python -m t2t.final_eval`, `t2t.curves`, `t2t.checkpoint`) define theirs on a private
FlagValues and start with `run_tool`, so importing them (the trainer imports final_eval) never
registers a flag twice.
"""

import sys

from absl import app
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from t2t.config import check_config_file
from t2t.errors import UserError


def exit_on_user_error(function, *args):
  """function(*args); a UserError becomes `error: <message>` on stderr and exit status 2."""
  try:
    return function(*args)
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


def run(main, argv=None) -> None:
  """absl.app.run(main) for a command; a UserError (also one raised while flags are parsed, e.g.
  by a bad --config file) exits 2 with one line."""
  def guarded(args):
    # Orbax logs every save step at INFO; t2t's own progress goes to the bar and stderr.
    absl_logging.set_verbosity(absl_logging.WARNING)
    main(args)
  exit_on_user_error(app.run, guarded, argv)


def run_tool(prog: str, description: str, define, main, argv=None) -> None:
  """A module tool: `define(flag_values)` adds its absl flags to a private FlagValues, then
  `main(flag_values, positional arguments)` runs with UserError -> exit 2.

  argv: the arguments after the program name (default sys.argv[1:]). A wrong or missing flag
  is one line and exit 2 too; --help prints the flags.
  """
  values = flags.FlagValues()
  define(values)
  args = sys.argv[1:] if argv is None else list(argv)
  if '--help' in args or '-h' in args:
    print(f'{prog}: {description}\n\n{values.get_help()}')
    return
  try:
    rest = values([prog, *args])
    values.validate_all_flags()
  except flags.Error as e:
    print(f'error: {e} (see {prog} --help)', file=sys.stderr)
    sys.exit(2)
  absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns that a read-only manager is read-only
  exit_on_user_error(main, values, rest[1:])


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
