"""Shared plumbing for the command-line entry points: one-line errors, logging setup, config files.

Every command parses its flags with absl and runs through `exit_on_error`, so whatever stops
it, the user sees one line on stderr and a non-zero exit status:
  UserError                      `error: <message>`, exit 2
  SIGINT/SIGTERM outside the     `error: stopped by SIGTERM; ...`, exit 128 + the signal number
  training loop                  (inside it the trainer checkpoints first: t2t/trainer.py)
  OSError (disk full, no         `error: <file>: <reason>; ...`, exit 1
  permission, read-only disk)
  anything else (a bug)          `error: internal error <type>: <message> ...`, exit 1
T2T_DEBUG=1 in the environment shows the full traceback instead, and the background-thread and
library noise otherwise silenced (orbax's failed async writes print dozens of tracebacks from
its threads; t2t.checkpoint re-raises the failure as one line).

The installed commands (train, evaluate, translate, export) define their flags globally in
t2t/commands/ and start with `run` (absl.app); the module tools (`python -m t2t.final_eval`,
`t2t.curves`, `t2t.checkpoint`) define theirs on a private FlagValues and start with `run_tool`,
so importing them (the trainer imports final_eval) never registers a flag twice. The commands that
decode with a workdir take their defaults from what its final evaluation chose on validation
(`workdir_choice`).
"""

import contextlib
import logging
import os
import signal
import sys
import threading

from absl import app, flags
from absl import logging as absl_logging
from ml_collections import config_flags

from t2t import workdir as wd
from t2t.config import check_config_file
from t2t.errors import UserError
from t2t.search_options import SearchOptions


class Stopped(BaseException):
  """SIGTERM outside the training loop (SIGINT arrives as KeyboardInterrupt)."""

  def __init__(self, signum: int):
    super().__init__(signum)
    self.signum = signum


def exit_on_error(function, *args):
  """function(*args), with every failure turned into one `error: ...` line (see the docstring)."""
  debug = bool(os.environ.get('T2T_DEBUG'))
  with _signals_raise(), contextlib.nullcontext() if debug else _quiet_background_noise():
    try:
      return function(*args)
    except UserError as e:
      _exit(f'error: {e}', 2)
    except (KeyboardInterrupt, Stopped) as e:
      signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
      _exit(f'error: stopped by {signal.Signals(signum).name}; files already written are kept: '
            'rerun the same command to continue', 128 + signum)
    except OSError as e:
      if debug:
        raise
      where = f'{e.filename}: ' if e.filename else ''
      _exit(f'error: {where}{e.strerror or e}; check the path, its permissions and free space, then '
            'rerun the same command (T2T_DEBUG=1 shows the traceback)', 1)
    except Exception as e:  # noqa: BLE001
      if debug:
        raise
      first = (str(e).strip().splitlines() or [''])[0][:300]
      _exit(f'error: internal error {type(e).__name__}: {first} (rerun with T2T_DEBUG=1 for the '
            'traceback, and please report it)', 1)


def _exit(line: str, status: int) -> None:
  sys.stdout.flush()
  print(line, file=sys.stderr, flush=True)
  sys.exit(status)


@contextlib.contextmanager
def _signals_raise():
  """SIGTERM raises Stopped (the trainer's loop replaces this with its own checkpointing handler)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handler(signum, frame):
    del frame
    raise Stopped(signum)
  previous = signal.signal(signal.SIGTERM, handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _quiet_background_noise():
  """Silences tracebacks from library threads whose failure reaches the main thread anyway."""
  hooks = threading.excepthook, sys.unraisablehook, sys.excepthook
  threading.excepthook = lambda args: None
  sys.unraisablehook = lambda args: None
  # Tensorstore callbacks print "Event loop is closed" tracebacks through sys.excepthook after
  # orbax gives up on a failed write; the main thread's own exceptions are caught above.
  sys.excepthook = lambda *args: None
  # Orbax's own log lines (its async write errors, "directory is read only" when evaluating)
  # say nothing that t2t does not report itself.
  absl_logger = logging.getLogger('absl')
  def not_orbax(record):
    return '/orbax/' not in record.pathname.replace(os.sep, '/')
  absl_logger.addFilter(not_orbax)
  try:
    yield
  finally:
    threading.excepthook, sys.unraisablehook, sys.excepthook = hooks
    absl_logger.removeFilter(not_orbax)


def run(main, argv=None) -> None:
  """absl.app.run(main) for a command; a UserError (also one raised while flags are parsed, e.g.
  by a bad --config file) exits 2 with one line."""
  def guarded(args):
    # Orbax logs every save step at INFO; t2t's own progress goes to the bar and stderr.
    absl_logging.set_verbosity(absl_logging.WARNING)
    main(args)
  exit_on_error(app.run, guarded, argv)


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
  exit_on_error(main, values, rest[1:])


def define_config_file(name: str, default: str, help_string: str) -> None:
  """--<name> FILE plus --<name>.field=value overrides (ml_collections), with one-line file errors:
  the file is checked (exists, compiles) before ml_collections executes it."""
  config_flags.DEFINE_config_file(name, default, help_string)
  parser = flags.FLAGS[name].parser
  load = parser.parse

  def checked_parse(path):
    check_config_file(path.split(':', 1)[0])  # `file.py:arg` passes arg to get_config
    return load(path)
  parser.parse = checked_parse  # type: ignore[method-assign]


def define_no_chosen() -> None:
  flags.DEFINE_bool('no_chosen', False, "Ignore the settings the workdir's final evaluation chose on val "
                    '(final_eval.json): the latest checkpoint and the flags\' own defaults.')


def define_sampling(values: flags.FlagValues = flags.FLAGS) -> None:
  """The sampling flags of the commands that decode (evaluate.py, translate.py): they shape
  --sampling's draws and --mbr's sampled candidates; SearchOptions checks them."""
  flags.DEFINE_float('temperature', 1.0, 'Sampling temperature.', flag_values=values)
  flags.DEFINE_integer('top_k', 0, 'Sample among the k most likely tokens only (0: all).', flag_values=values)
  flags.DEFINE_float('top_p', 1.0, 'Sample from the nucleus holding this probability mass (1: all).',
                     flag_values=values)
  flags.DEFINE_integer('seed', 0, 'Sampling seed: the same seed and batch size give the same output.',
                       flag_values=values)


def define_mbr(values: flags.FlagValues = flags.FLAGS) -> None:
  """The MBR flags of the commands that decode (evaluate.py, translate.py); SearchOptions checks them."""
  flags.DEFINE_integer('mbr', 0, 'Minimum Bayes risk: choose each output among this many candidates by '
                       'expected --mbr_metric against the others (0: off).', flag_values=values)
  flags.DEFINE_enum('mbr_candidates', 'sample', ['sample', 'nbest'], 'MBR candidates: samples (--temperature, '
                    '--top_k, --top_p, --seed apply) or the n-best list of beam search (needs --beam_size >= '
                    '--mbr).', flag_values=values)
  flags.DEFINE_enum('mbr_metric', 'chrf', ['chrf', 'bleu'], "MBR utility: sacreBLEU's sentence chrF or BLEU.",
                    flag_values=values)


def workdir_choice(values, checkpoint_flags=('average_last', 'best'), search: bool = True):
  """Settings for a command that decodes with `values.workdir`: flags given > what the workdir's
  final evaluation chose on validation (final_eval.json; unless --no_chosen) > the flags' defaults.

  Says on stderr, in one line, which chosen settings are used. Returns (the `Chosen` whose
  checkpoint to load, or None when there is none or a checkpoint flag was given; the
  SearchOptions, or None without `search`).
  """
  chosen = None if values.no_chosen else wd.read_chosen(values.workdir)
  options = SearchOptions.from_flags(values, chosen and chosen.search_defaults()) if search else None
  if chosen is None:
    return None, options
  checkpoint_given = any(values[name].present for name in checkpoint_flags if name in values)
  used = [] if checkpoint_given else [chosen.checkpoint_name()]
  if options is not None and options.method != 'sample':
    if not values['beam_size'].present:
      used.append(f'beam {chosen.beam_size}' if chosen.beam_size > 1 else 'greedy')
    if not values['alpha'].present and options.method == 'beam':
      used.append(f'alpha {chosen.alpha}')
  if used:
    print(f'using the settings chosen on val in {chosen.file}: {", ".join(used)} '
          '(flags override them; --no_chosen ignores them)', file=sys.stderr)
  return (None if checkpoint_given else chosen), options
