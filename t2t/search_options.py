"""`SearchOptions`: how to search for translations, validated and built in one place.

Every command builds its options here: `from_flags` (evaluate.py, translate.py; the flags not
given come from the settings the workdir's final evaluation chose, t2t/cli.py `workdir_choice`),
`from_config` (the trainer's periodic BLEU, final_eval) or `for_workdir` (the Python API), and
each builder checks the values
first, so an impossible setting (beam 0, nbest above the beam, temperature 0, ...) stops the
command with one line naming the flag or config field, before any model is loaded.
"""

import dataclasses

import numpy as np

from t2t.errors import UserError

METHODS = ('beam', 'greedy', 'sample')
MBR_CANDIDATES = ('sample', 'nbest')   # t2t/mbr.py owns the selection; these name where candidates come from
MBR_METRICS = ('chrf', 'bleu')

# How each field is spelled to the user, per source of the value.
FLAG_NAMES = {'beam_size': '--beam_size', 'alpha': '--alpha', 'max_len_a': '--max_len_a',
              'max_len_b': '--max_len_b', 'temperature': '--temperature', 'top_k': '--top_k',
              'top_p': '--top_p', 'nbest': '--nbest', 'mbr': '--mbr', 'mbr_candidates': '--mbr_candidates',
              'mbr_metric': '--mbr_metric'}


def config_names(beam_field: str = 'beam_size', alpha_field: str = 'alpha') -> dict:
  """Field -> config spelling, for options built from a training config."""
  return {'beam_size': f'config.{beam_field}', 'alpha': f'config.{alpha_field}',
          'max_len_a': 'config.decode_max_len_a', 'max_len_b': 'config.decode_max_len_b'}


@dataclasses.dataclass(frozen=True)
class SearchOptions:
  """How to search. method: 'beam', 'greedy' or 'sample'.

  The output of a sentence of S source tokens is cut at `max_len_a * S + max_len_b` tokens
  (`output_limit`). Hashable: the Translator keeps one compiled function per options value.
  With mbr = N >= 2, each sentence's output is chosen by MBR (t2t/mbr.py) among N candidates:
  N samples (mbr_candidates 'sample', method 'sample') or the N-best list of beam search
  ('nbest', method 'beam' with beam_size >= N), by expected mbr_metric ('chrf' or 'bleu').
  """
  method: str = 'beam'
  beam_size: int = 4
  alpha: float = 0.6
  max_len_a: float = 1.5       # output limit per sentence: a * source tokens + b
  max_len_b: int = 10
  temperature: float = 1.0     # sampling only
  top_k: int = 0
  top_p: float = 1.0
  mbr: int = 0                 # 0: no MBR; N >= 2: choose among N candidates
  mbr_candidates: str = 'sample'
  mbr_metric: str = 'chrf'

  @classmethod
  def beam_or_greedy(cls, beam_size: int, alpha: float, max_len_a: float, max_len_b: int,
                     names: dict | None = None) -> 'SearchOptions':
    """Beam search, or greedy search when beam_size is 1; validated (names: see `validate`)."""
    options = cls('beam' if beam_size > 1 else 'greedy', beam_size, alpha, max_len_a, max_len_b)
    options.validate(names=names)
    return options

  @classmethod
  def from_flags(cls, flags, config=None) -> 'SearchOptions':
    """From a command's flags: --beam_size --alpha --max_len_a --max_len_b and, where the command
    defines them, --sampling --temperature --top_k --top_p --nbest (nbest is checked, not kept).

    config: a source of defaults for the flags not given on the command line (fields beam_size,
    alpha, decode_max_len_a, decode_max_len_b), e.g. the settings a workdir's final evaluation
    chose; None: the flags' own defaults.
    """
    def value(flag: str, field: str | None = None, default=None):
      if flag not in flags:
        return default
      if config is not None and field is not None and not flags[flag].present and field in config:
        return config[field]
      return flags[flag].value

    beam_size = value('beam_size', 'beam_size')
    mbr, mbr_candidates = value('mbr', default=0), value('mbr_candidates', default='sample')
    if value('sampling', default=False) or (mbr and mbr_candidates == 'sample'):
      method = 'sample'
    else:
      method = 'beam' if beam_size > 1 else 'greedy'
      given = [f'--{name}' for name in ('temperature', 'top_k', 'top_p', 'seed')
               if name in flags and flags[name].present]
      if given:  # would be ignored by beam or greedy search
        raise UserError(f'{given[0]} shapes sampling, but this command searches ({method}): add '
                        + ('--sampling' if 'sampling' in flags else '--mbr N (sampled candidates)')
                        + f' or drop {given[0]}')
    options = cls(method, beam_size, value('alpha', 'alpha'), value('max_len_a', 'decode_max_len_a'),
                  value('max_len_b', 'decode_max_len_b'), value('temperature', default=1.0),
                  value('top_k', default=0), value('top_p', default=1.0), mbr, mbr_candidates,
                  value('mbr_metric', default='chrf'))
    options.validate(nbest=value('nbest', default=1), names=FLAG_NAMES)
    return options

  @classmethod
  def from_config(cls, config, beam_field: str = 'beam_size', alpha: float | None = None,
                  alpha_field: str = 'alpha') -> 'SearchOptions':
    """Beam (or greedy at beam 1) from a training config: config.<beam_field>, config.<alpha_field>
    (or `alpha` given), config.decode_max_len_a/b. The trainer uses beam_size/alpha, final_eval
    final_beam_size and each of final_alphas."""
    alpha = config[alpha_field] if alpha is None else alpha
    return cls.beam_or_greedy(config[beam_field], alpha, config.decode_max_len_a, config.decode_max_len_b,
                              names=config_names(beam_field, alpha_field))

  @classmethod
  def for_workdir(cls, workdir: str) -> 'SearchOptions':
    """The search a workdir's final evaluation chose on validation (final_eval.json: beam, alpha,
    output limit), or the defaults when it has none; pairs with `t2t.workdir.load_model(workdir)`."""
    from t2t import workdir as wd  # deferred: t2t.workdir imports jax
    chosen = wd.read_chosen(workdir)
    if chosen is None:
      return cls()
    return cls.beam_or_greedy(chosen.beam_size, chosen.alpha, chosen.max_len_a, chosen.max_len_b,
                              names={field: f'{chosen.file} {field}' for field in FLAG_NAMES})

  @property
  def candidate_search(self) -> 'SearchOptions':
    """The search that draws MBR's candidates (and the compiled function's key): these options without MBR."""
    return dataclasses.replace(self, mbr=0, mbr_candidates='sample', mbr_metric='chrf')

  @property
  def beams(self) -> int:
    """Hypotheses kept per sentence: beam_size for beam search, else 1."""
    return self.beam_size if self.method == 'beam' else 1

  def output_limit(self, src_len):
    """Most output tokens for `src_len` source tokens (without EOS): ceil(a * src_len + b).

    Works on ints and numpy arrays; the caller caps it at the model's max_len.
    """
    return np.ceil(self.max_len_a * np.asarray(src_len) + self.max_len_b).astype(np.int32)

  def validate(self, nbest: int = 1, names: dict | None = None) -> None:
    """Raises a one-line UserError for an impossible setting.

    names: field -> how the user spelled it ('--beam_size' by default; `config_names()` for a
    config), so the message names the flag or field to change.
    """
    names = {**FLAG_NAMES, **(names or {})}
    flag = names.__getitem__
    is_flag = lambda field: flag(field).startswith('--')

    def said(field, value):
      return f'{flag(field)} {value}' if is_flag(field) else f'{flag(field)}={value}'

    if self.method not in METHODS:
      raise UserError(f'search method {self.method!r}: use one of {", ".join(METHODS)}')
    if self.beam_size < 1:
      raise UserError(f'{said("beam_size", self.beam_size)}: use 1 (greedy search) or more')
    if self.alpha < 0:
      raise UserError(f'{said("alpha", self.alpha)}: the length penalty exponent must be >= 0 '
                      '(0: no length normalization)')
    if self.temperature <= 0:
      raise UserError(f'{said("temperature", self.temperature)}: use a value > 0')
    if self.top_k < 0:
      raise UserError(f'{said("top_k", self.top_k)}: use 0 (no limit) or a positive count')
    if not 0 < self.top_p <= 1:
      raise UserError(f'{said("top_p", self.top_p)}: use a value in (0, 1]')
    if self.max_len_a < 0:
      raise UserError(f'{said("max_len_a", self.max_len_a)}: use a value >= 0 (output tokens per source token)')
    if self.max_len_b < 0:
      raise UserError(f'{said("max_len_b", self.max_len_b)}: use a value >= 0 (output tokens beyond max_len_a x source)')
    if nbest < 1:
      raise UserError(f'{said("nbest", nbest)}: ask for at least 1 translation per line')
    if self.method == 'beam' and self.beam_size < nbest:
      raise UserError(f'{said("nbest", nbest)} needs {flag("beam_size")} >= {nbest} (got {self.beam_size}): '
                      f'raise {flag("beam_size")} or lower {flag("nbest")}')
    if self.method == 'greedy' and nbest > 1:
      raise UserError(f'{said("nbest", nbest)} needs {flag("beam_size")} >= {nbest} (got 1, greedy): '
                      f'raise {flag("beam_size")}, or use --sampling for several samples')
    self._validate_mbr(nbest, flag, said)

  def _validate_mbr(self, nbest: int, flag, said) -> None:
    if self.mbr == 0:
      return
    if self.mbr < 2:
      raise UserError(f'{said("mbr", self.mbr)}: use 0 (no MBR) or at least 2 candidates')
    if self.mbr_candidates not in MBR_CANDIDATES:
      raise UserError(f'{said("mbr_candidates", self.mbr_candidates)}: use one of {", ".join(MBR_CANDIDATES)}')
    if self.mbr_metric not in MBR_METRICS:
      raise UserError(f'{said("mbr_metric", self.mbr_metric)}: use one of {", ".join(MBR_METRICS)}')
    if nbest > 1:
      raise UserError(f'{said("nbest", nbest)} and {flag("mbr")} both choose what to output: pass one of them')
    if self.mbr_candidates == 'nbest' and (self.method != 'beam' or self.beam_size < self.mbr):
      raise UserError(f'{said("mbr", self.mbr)} with {flag("mbr_candidates")} nbest needs {flag("beam_size")} >= '
                      f'{self.mbr} (got {self.beam_size if self.method == "beam" else "sampling"}): raise '
                      f'{flag("beam_size")}, or use {flag("mbr_candidates")} sample')
    if self.mbr_candidates == 'sample' and self.method != 'sample':
      raise UserError(f'{flag("mbr_candidates")} sample draws its candidates by sampling: set the search '
                      f"method to 'sample' (--sampling), or use {flag('mbr_candidates')} nbest")
