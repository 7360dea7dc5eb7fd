"""Corpus scores with sacreBLEU, and turning the jitted steps' metric sums into numbers.

BLEU and chrF are computed by sacreBLEU on detokenized text with its default settings (13a
tokenization, cased), and printed with sacreBLEU's own signature, so scores compare with
published ones.
"""

import dataclasses
import math

import sacrebleu


@dataclasses.dataclass(frozen=True)
class CorpusScores:
  bleu: float
  chrf: float
  bleu_line: str        # sacreBLEU's own line: "BLEU = 38.12 69.5/45.0/... (BP = ...)"
  bleu_signature: str   # e.g. nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0
  chrf_line: str
  chrf_signature: str


def corpus_scores(hypotheses: list[str], references: list[str]) -> CorpusScores:
  bleu_metric = sacrebleu.metrics.BLEU()
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
  return out


def add_sums(total: dict | None, sums: dict) -> dict:
  return dict(sums) if total is None else {k: total[k] + sums[k] for k in total}
