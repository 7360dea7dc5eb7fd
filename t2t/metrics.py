"""Corpus scores with sacreBLEU, and turning the jitted steps' metric sums into numbers.

BLEU and chrF are computed by sacreBLEU on detokenized text with its default settings (cased),
and printed with sacreBLEU's own signature, so scores compare with published ones. BLEU's
tokenizer is `config.bleu_tokenize`: 'auto' picks what sacreBLEU's command line picks for the
target language (`resolve_bleu_tokenize`), so Japanese targets get ja-mecab, Chinese zh, Korean
ko-mecab and the rest 13a; the signature's `tok:` shows the choice.
"""

import dataclasses
import math

import sacrebleu

from t2t.errors import UserError

# The optional dependencies (sacreBLEU extras) of its MeCab tokenizers.
_EXTRAS = {'ja-mecab': 'ja', 'ko-mecab': 'ko'}


@dataclasses.dataclass(frozen=True)
class CorpusScores:
  bleu: float
  chrf: float
  bleu_line: str        # sacreBLEU's own line: "BLEU = 38.12 69.5/45.0/... (BP = ...)"
  bleu_signature: str   # e.g. nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0
  chrf_line: str
  chrf_signature: str


def resolve_bleu_tokenize(setting: str, tgt_lang: str, field: str = 'config.bleu_tokenize') -> str:
  """The sacreBLEU tokenizer name for a `config.bleu_tokenize` setting, checked to be usable.

  'auto' gives the one sacreBLEU's command line uses for `-l xx-<tgt_lang>`: its CLI passes the
  target language to `BLEU(trg_lang=...)`, which looks it up in `BLEU._TOKENIZER_MAP`
  (ja -> ja-mecab, zh -> zh, ko -> ko-mecab in sacreBLEU 2.6) and else takes
  `BLEU.TOKENIZER_DEFAULT` (13a). The table is read from sacreBLEU, not copied.

  Args:
    setting: 'auto' or a sacreBLEU tokenizer name ('13a', 'none', 'char', 'ja-mecab', ...).
    tgt_lang: the target language code, e.g. config.data.tgt_lang.
    field: the config field or flag the setting came from, for error messages.
  Raises:
    UserError: an unknown name, or a tokenizer whose optional dependencies are missing.
  """
  bleu = sacrebleu.metrics.BLEU
  if setting == 'auto':
    name = bleu._TOKENIZER_MAP.get(tgt_lang, bleu.TOKENIZER_DEFAULT)
  elif setting in bleu.TOKENIZERS:
    name = setting
  else:
    raise UserError(f"{field}={setting!r} is not a sacreBLEU tokenizer: use 'auto' or one of "
                    f"{', '.join(bleu.TOKENIZERS)}")
  try:
    bleu(tokenize=name)
  except RuntimeError:  # sacreBLEU's multi-line "requires extra dependencies" message
    why = f' (the choice of {field}=auto for target language {tgt_lang!r})' if setting == 'auto' else ''
    raise UserError(f"sacreBLEU's {name!r} tokenizer{why} needs its optional dependencies: "
                    f"pip install 'sacrebleu[{_EXTRAS.get(name, name)}]' (make install does), or set "
                    f"{field} to another tokenizer, e.g. char") from None
  return name


def config_bleu_tokenize(config) -> str:
  """`resolve_bleu_tokenize` for a training config (a saved one may predate the field: 'auto')."""
  return resolve_bleu_tokenize(config.get('bleu_tokenize', 'auto'), config.data.tgt_lang)


def corpus_scores(hypotheses: list[str], references: list[str], tokenize: str = '13a') -> CorpusScores:
  """sacreBLEU BLEU (with tokenizer `tokenize`, see `resolve_bleu_tokenize`) and chrF."""
  bleu_metric = sacrebleu.metrics.BLEU(tokenize=tokenize)
  chrf_metric = sacrebleu.metrics.CHRF()
  bleu = bleu_metric.corpus_score(hypotheses, [references])
  chrf = chrf_metric.corpus_score(hypotheses, [references])
  return CorpusScores(bleu.score, chrf.score, str(bleu), str(bleu_metric.get_signature()),
                      str(chrf), str(chrf_metric.get_signature()))


def summarize(sums: dict) -> dict:
  """Metric sums from train/eval steps -> per-token means, accuracy and perplexity."""
  tokens = max(float(sums['tokens']), 1.0)
  out = {'loss': float(sums['loss']) / tokens, 'nll': float(sums['nll']) / tokens,
         'accuracy': float(sums['correct']) / tokens}
  out['perplexity'] = math.exp(min(out['nll'], 50.0))
  if 'kl' in sums:  # R-Drop's symmetric KL between two dropout passes (config.rdrop_alpha)
    out['kl'] = float(sums['kl']) / tokens
  return out


def add_sums(total: dict | None, sums: dict) -> dict:
  return dict(sums) if total is None else {k: total[k] + sums[k] for k in total}
