"""Ensembles of workdirs: `--ensemble W1,W2:700,...` parsed, checked and loaded in one place.

A member is a workdir (the checkpoint `--workdir W` would use: the final evaluation's choice when
final_eval.json has one, else the latest) or `W:step` (that checkpoint). Members must share one
vocabulary: their tokenizers' SHA-256 (spm.model.sha256, or the hash of spm.model in workdirs
without it) must be equal, or the ensemble is refused with one line. The members' architectures
may differ. `t2t.inference.Translator.ensemble` averages their probabilities at every step.

  members, tokenizer = load_ensemble('runs/a,runs/b:700')
  translator = Translator.ensemble(members, tokenizer)
"""

import os
import re

from t2t import workdir as wd
from t2t.errors import UserError

FLAG = '--ensemble'


def parse(spec: str) -> list[tuple[str, int | None]]:
  """'W1,W2:700' -> [('W1', None), ('W2', 700)]; a one-line UserError for a malformed spec."""
  members = []
  for item in spec.split(','):
    item = item.strip()
    match = re.fullmatch(r'(.+?)(?::(\d+))?', item)
    if not item or match is None:
      raise UserError(f'{FLAG} {spec!r}: list workdirs or workdir:step checkpoints separated by commas, '
                      'e.g. runs/a,runs/b:700')
    step = match.group(2)
    members.append((match.group(1), int(step) if step is not None else None))
  return members


def tokenizer_hash(workdir: str) -> str:
  """The SHA-256 the workdir records for its tokenizer (or computes it from spm.model)."""
  recorded = wd.read_tokenizer_hash(workdir)
  if recorded is not None:
    return recorded
  model = wd.path(workdir, wd.TOKENIZER_MODEL)
  if not os.path.exists(model):
    raise wd.not_a_workdir(model)
  return wd.file_sha256(model)


def check_vocabularies(workdirs: list[str]) -> None:
  """Raises a one-line UserError unless every workdir has the first one's tokenizer."""
  first = tokenizer_hash(workdirs[0])
  for other in workdirs[1:]:
    if tokenizer_hash(other) != first:
      raise UserError(f'{FLAG}: {other} has another vocabulary than {workdirs[0]} '
                      f'({wd.TOKENIZER_MODEL} hashes differ); ensemble only models trained with one tokenizer')


def _check_step(workdir: str, step: int) -> None:
  from t2t.checkpoint import Checkpointer  # pylint: disable=import-outside-toplevel  (imports orbax)
  checkpointer = Checkpointer(workdir, read_only=True)
  try:
    steps = checkpointer.all_steps()
  finally:
    checkpointer.close()
  if step not in steps:
    raise UserError(f'{FLAG}: {workdir}:{step}: {wd.path(workdir, wd.CHECKPOINTS)} has no step {step} '
                    f'(it has {list(steps) or "none"})')


def check_flags(values) -> str | None:
  """The --ensemble spec a decoding command uses, or None for its --workdir.

  values: absl flags with --workdir and --ensemble; exactly one of them must be given, and no
  checkpoint flag (--average_last, --best) with --ensemble.
  """
  if values.ensemble and values.workdir:
    raise UserError(f'--workdir and {FLAG} both name models: list every member in {FLAG} '
                    '(e.g. --ensemble runs/a,runs/b) and drop --workdir')
  if not values.ensemble and not values.workdir:
    raise UserError(f'pass --workdir W (a folder written by train.py) or {FLAG} W1,W2,...')
  for name in ('average_last', 'best'):
    if values.ensemble and name in values and values[name].present and values[name].value:
      raise UserError(f'--{name} and {FLAG} both choose checkpoints: name each member\'s as W:step')
  return values.ensemble or None


def load_ensemble(spec: str):
  """([(ModelConfig, params), ...], the shared Tokenizer) for `spec` ('W1,W2:step,...')."""
  members = parse(spec)
  for workdir, _ in members:
    if not os.path.isdir(workdir):
      raise UserError(f'{FLAG}: {workdir} is not a folder; list workdirs written by train.py')
  check_vocabularies([w for w, _ in members])
  for workdir, step in members:
    if step is not None:
      _check_step(workdir, step)
  loaded, tokenizer = [], None
  for workdir, step in members:
    config, params, tokenizer = wd.load_model(workdir, step=step, chosen=step is None)
    loaded.append((config, params))
  return loaded, tokenizer
