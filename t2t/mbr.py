"""Minimum Bayes risk (MBR) selection: of N candidate translations, the one the others agree with most.

Each candidate's expected utility is its mean sentence score (sacreBLEU's chrF by default, or
BLEU with effective order) against the N - 1 other candidates as references; the highest wins,
the earliest on ties (for an n-best list: the better-ranked). Candidates come from N samples or
from beam search's N-best list (`SearchOptions.mbr_candidates`, run by t2t.inference).
Duplicates are scored once: sampling often draws the same translation several times.
"""

from collections import Counter
from collections.abc import Callable

from sacrebleu.metrics import BLEU, CHRF

METRICS = ('chrf', 'bleu')
CANDIDATES = ('sample', 'nbest')


def utility(metric: str) -> Callable[[str, str], float]:
  """(hypothesis, reference) -> sentence score in [0, 100] for 'chrf' or 'bleu'."""
  scorer: CHRF | BLEU
  if metric == 'chrf':
    scorer = CHRF()
  elif metric == 'bleu':
    scorer = BLEU(effective_order=True)
  else:
    raise ValueError(f'unknown MBR metric {metric!r}: use one of {", ".join(METRICS)}')
  return lambda hypothesis, reference: scorer.sentence_score(hypothesis, [reference]).score


def select(candidates: list[str], metric: str = 'chrf',
           score: Callable[[str, str], float] | None = None) -> int:
  """The index of the candidate with the highest mean utility against the other candidates.

  Args:
    candidates: N >= 1 translations of one sentence.
    metric: 'chrf' or 'bleu' (see `utility`), unless `score` is given.
    score: (hypothesis, reference) -> utility, replacing `metric`.
  """
  if len(candidates) < 2:
    return 0
  score = score or utility(metric)
  counts = Counter(candidates)
  unique = list(counts)
  best, best_value = 0, float('-inf')
  for text in unique:
    # Against every other draw: the copies of itself count, the candidate itself does not.
    total = sum(counts[other] * score(text, other) for other in unique) - score(text, text)
    value = total / (len(candidates) - 1)
    if value > best_value:
      best, best_value = candidates.index(text), value
  return best
