"""Translating a stream of lines: batches, n-best lists, empty and over-long lines, a prompt.

Every input line gives exactly one output line (or K with n-best), in input order, so the
output stays aligned with the input: an empty line gives an empty line, and a line longer
than the model's maximum is translated from its first max_len - 1 tokens with a warning that
names the line number.

N-best output is fairseq-like: K lines per input, each `score<TAB>translation`, best first.
Beam scores are length-normalized log-probs (GNMT penalty); sampled ones are log-prob sums.
With word alignments, each translation is followed by ` ||| ` and its Pharaoh links (`0-0 1-2`,
source word - target word; Marian's format), from t2t/alignment.py.
"""

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

import jax

from t2t.alignment import pharaoh
from t2t.data import text
from t2t.errors import UserError
from t2t.inference import Hypothesis, Translator
from t2t.search_options import SearchOptions


def check_search(options: SearchOptions, nbest: int) -> None:
  """Raises a one-line UserError for settings that cannot work together (SearchOptions.validate)."""
  options.validate(nbest=nbest)


def derived_seed(seed: int, *folds: int) -> int:
  """An int seed from fold_in(PRNGKey(seed), fold...): independent streams per batch and sample."""
  key = jax.random.PRNGKey(seed)
  for fold in folds:
    key = jax.random.fold_in(key, fold)
  return int(jax.random.randint(key, (), 0, 2**31 - 1))


class LineTranslator:
  """Turns batches of input lines into output lines with fixed search settings."""

  def __init__(self, translator: Translator, options: SearchOptions, nbest: int = 1, seed: int = 0,
               warnings: TextIO | None = None, alignments: bool = False):
    check_search(options, nbest)
    self.alignments = alignments
    self.translator = translator
    self.tokenizer = translator.tokenizer
    self.options = options
    self.nbest = nbest
    self.seed = seed
    self.warnings = warnings or sys.stderr
    self.max_tokens = translator.model.config.max_sentence_tokens
    self._batches = 0

  def hypotheses(self, sources: list[list[int]], prefixes: list[list[int]] | None = None
                 ) -> list[list[Hypothesis]]:
    """The nbest hypotheses of each source, best first (prefixes: see Translator.translate_ids)."""
    batch = self._batches
    self._batches += 1
    if self.options.method != 'sample':
      return self.translator.translate_ids(sources, self.options, nbest=self.nbest, prefixes=prefixes)
    # K independent samples per line, each from its own fold_in seed.
    draws = [self.translator.translate_ids(sources, self.options, derived_seed(self.seed, batch, k),
                                           prefixes=prefixes)
             for k in range(self.nbest)]
    return [sorted((d[i][0] for d in draws), key=lambda h: -h.score) for i in range(len(sources))]

  def translate_lines(self, lines: list[str], first_number: int = 1, prefixes: list[str] | None = None
                      ) -> list[str]:
    """Output lines for `lines` (normalized text); first_number is the first one's line number.

    prefixes: None, or one target prefix per line ('' for none) that its translations start with.
    """
    empty = [''] * self.nbest if self.nbest == 1 else [f'{0.0:.4f}\t'] * self.nbest
    if self.alignments:
      empty = [line + ' ||| ' for line in empty]
    todo = [i for i, line in enumerate(lines) if line]
    sources = self.tokenizer.encode_batch([lines[i] for i in todo])
    for i, ids in zip(todo, sources):
      if len(ids) > self.max_tokens:
        print(f'warning: line {first_number + i} has {len(ids)} tokens, more than the model maximum '
              f'of {self.max_tokens}: translating its first {self.max_tokens}', file=self.warnings)
    outputs = [empty] * len(lines)
    prefix_ids = None if prefixes is None else self.translator.encode_prefixes([prefixes[i] for i in todo])
    if todo:
      found = self.hypotheses(sources, prefix_ids)
      links: Iterator[list[tuple[int, int]]] | None = None
      if self.alignments:
        pairs = [(src, h.tokens) for src, group in zip(sources, found) for h in group]
        links = iter(self.translator.word_alignments(pairs))
      for i, hypotheses in zip(todo, found):
        texts = self.tokenizer.decode_batch([h.tokens for h in hypotheses])
        if links is not None:
          texts = [f'{t} ||| {pharaoh(next(links))}' for t in texts]
        if self.nbest == 1:
          outputs[i] = texts
        else:
          outputs[i] = [f'{h.score:.4f}\t{t}' for h, t in zip(hypotheses, texts)]
    return [line for group in outputs for line in group]


def chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
  """Consecutive lists of `size` lines (the last may be shorter)."""
  chunk = []
  for line in lines:
    chunk.append(line)
    if len(chunk) == size:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


def translate_stream(line_translator: LineTranslator, lines: Iterable[str], out: TextIO,
                     batch_size: int, prefixes: list[str] | None = None) -> int:
  """Translates `batch_size` lines at a time, writing and flushing after each batch.

  prefixes: None, or one target prefix per input line; a count that differs from the input's is
  a one-line UserError (the batches before it are written).
  Returns:
    The number of input lines read.
  """
  number = 1
  for chunk in chunks(lines, batch_size):
    chunk_prefixes = None
    if prefixes is not None:
      chunk_prefixes = prefixes[number - 1:number - 1 + len(chunk)]
      if len(chunk_prefixes) < len(chunk):
        raise UserError(f'the prefix file has {len(prefixes)} lines but the input has more: give one prefix '
                        'line (empty for none) per input line')
    out.write(''.join(line + '\n' for line in line_translator.translate_lines(chunk, number, chunk_prefixes)))
    out.flush()
    number += len(chunk)
  if prefixes is not None and len(prefixes) != number - 1:
    raise UserError(f'the prefix file has {len(prefixes)} lines but the input had {number - 1}: give one '
                    'prefix line (empty for none) per input line')
  return number - 1


def interactive(line_translator: LineTranslator, stdin: TextIO, out: TextIO, prompt: TextIO) -> None:
  """Reads a sentence, prints its translation, repeats until end of input (Ctrl-D)."""
  print('Type a sentence and press Enter; Ctrl-D ends.', file=prompt)
  number = 1
  while True:
    prompt.write('> ')
    prompt.flush()
    line = stdin.readline()
    if not line:
      prompt.write('\n')
      return
    for output in line_translator.translate_lines([text.normalize(line)], number):
      out.write(output + '\n')
    out.flush()
    number += 1
