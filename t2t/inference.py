"""Translating sentences with a trained model: batching, search, detokenization.

`Translator` glues the model's encode()/decode_step() to the search functions of
t2t/search.py, spreads each batch over the local devices with pmap, and keeps one compiled
function per (source bucket, output length, search options), so a test set compiles a
handful of shapes once.

Glossary: P local devices, R rows per batch, S source bucket length, K beams,
T maximum output length, N = rows x beams.
"""

import dataclasses
import functools
import logging
import math

import jax
import jax.numpy as jnp
import numpy as np

from t2t import devices, search
from t2t.config import ModelConfig
from t2t.data.batch import EOS_ID
from t2t.data.batching import decode_batches
from t2t.model import Transformer, init_cache
from t2t.search import NEG_INF
from t2t.search_options import SearchOptions  # noqa: F401  (re-exported: the search settings' home)


@dataclasses.dataclass
class Hypothesis:
  tokens: list[int]   # without BOS/EOS
  score: float        # beam: length-normalized log-prob; greedy/sample: log-prob sum


def _limit_lengths(logits, index, limits):
  """Forces EOS once a row reaches its own length limit (limits: [N])."""
  forced = jnp.full_like(logits, NEG_INF).at[:, EOS_ID].set(0.0)
  return jnp.where((index >= limits - 1)[:, None], forced, logits)


def _search_fn(params, src, src_pos, src_seg, limits, rng, *, model: Transformer,
               options: SearchOptions, max_len: int):
  """Runs on one device. src*: [R, S], limits: [R] -> (tokens [R, K, T], scores [R, K])."""
  variables = {'params': params}
  rows = src.shape[0]
  beams = options.beams
  encoded = model.apply(variables, src, src_pos, src_seg, method=Transformer.encode)  # [R, S, D]
  if beams > 1:
    encoded, src_seg, limits = search.expand_to_beams((encoded, src_seg, limits), beams)  # [N, ...]
  constants = model.apply(variables, encoded, src_seg, method=Transformer.decoder_constants)
  cache = init_cache(model.config, rows * beams, max_len)

  def step_fn(tokens, cache, index):
    logits, cache = model.apply(variables, tokens, constants, cache, index,
                                method=Transformer.decode_step)
    return _limit_lengths(logits, index, limits), cache

  if options.method == 'beam':
    return search.beam_search(step_fn, cache, rows, beams, max_len, options.alpha)
  if options.method == 'greedy':
    tokens, scores = search.greedy_search(step_fn, cache, rows, max_len, return_scores=True)
  elif options.method == 'sample':
    tokens, scores = search.sample(step_fn, cache, rows, max_len, rng=rng, temperature=options.temperature,
                                   top_k=options.top_k, top_p=options.top_p, return_scores=True)
  else:
    raise ValueError(f'unknown search method {options.method!r}')
  return tokens[:, None], scores[:, None]


class Translator:
  """Translates token ids or text with fixed parameters on all local devices."""

  def __init__(self, model_config: ModelConfig, params, tokenizer=None, batch_size: int = 64):
    """batch_size: decoder rows per batch over all local devices, i.e. sentences x beam size, so
    beam 4 with 64 decodes 16 sentences at a time and greedy search 64. Per-step cost grows with
    the rows (KV cache, logits); on a 2-core CPU 64 rows is the fastest measured (bench/RESULTS.md);
    accelerators want more.
    """
    self.model = Transformer(model_config)
    self.tokenizer = tokenizer
    self.devices = jax.local_devices()
    self.rows_per_device = max(1, math.ceil(batch_size / len(self.devices)))
    self.set_params(params)
    self._compiled: dict = {}

  def set_params(self, params, replicated: bool = False) -> None:
    """Translate with `params` from now on: host parameters (copied to every local device), or
    with `replicated` a tree already replicated over them (the trainer's state.params)."""
    self.params = params if replicated else devices.replicate(params, self.devices)

  def sentences_per_batch(self, options: SearchOptions) -> int:
    """Sentences decoded together: the row budget over the beam size, a multiple of the devices."""
    return max(1, self.rows_per_device // options.beams) * len(self.devices)

  def _function(self, src_len: int, max_len: int, options: SearchOptions):
    key = (src_len, max_len, options)
    if key not in self._compiled:
      fn = functools.partial(_search_fn, model=self.model, options=options, max_len=max_len)
      self._compiled[key] = jax.pmap(fn)
    return self._compiled[key]

  def translate_ids(self, sources: list[list[int]], options: SearchOptions, seed: int = 0,
                    nbest: int = 1) -> list[list[Hypothesis]]:
    """Translates id sequences (without EOS); returns the `nbest` best hypotheses of each."""
    limit = self.model.config.max_len
    sources = [s[:self.model.config.max_sentence_tokens] for s in sources]  # callers warn about cut ones
    results: list[list[Hypothesis] | None] = [None] * len(sources)
    p = len(self.devices)
    rows = self.sentences_per_batch(options)
    rng = jax.random.PRNGKey(seed)
    for number, item in enumerate(decode_batches(sources, rows)):
      lengths = (item.batch.src_seg > 0).sum(-1)  # [R]
      limits = options.output_limit(lengths)  # [R]
      # The static output length comes from the source bucket, so a test set compiles one
      # function per bucket; each row still stops at its own limit (forced EOS).
      max_len = int(min(limit, options.output_limit(item.src_len)))
      fn = self._function(item.src_len, max_len, options)
      shard = lambda x: x.reshape((p, -1) + x.shape[1:])
      rngs = jax.random.split(jax.random.fold_in(rng, number), p)
      tokens, scores = fn(self.params, shard(item.batch.src), shard(item.batch.src_pos),
                          shard(item.batch.src_seg), shard(limits), rngs)
      tokens = np.asarray(tokens).reshape((rows,) + tokens.shape[2:])  # [R, K, T]
      scores = np.asarray(scores).reshape((rows, -1))  # [R, K]
      for row, index in enumerate(item.ids):
        if index >= 0:
          results[index] = [Hypothesis(_strip(tokens[row, k]), float(scores[row, k]))
                            for k in range(min(nbest, tokens.shape[1]))]
    return results  # type: ignore[return-value]  # every index was filled

  def translate(self, sentences: list[str], options: SearchOptions, seed: int = 0) -> list[str]:
    """Detokenized best translation of each sentence."""
    sources = self.tokenizer.encode_batch(sentences)
    too_long = sum(len(s) > self.model.config.max_sentence_tokens for s in sources)
    if too_long:
      logging.warning('%d input sentences exceed the model maximum of %d tokens and were cut',
                      too_long, self.model.config.max_sentence_tokens)
    hypotheses = self.translate_ids(sources, options, seed)
    return self.tokenizer.decode_batch([h[0].tokens for h in hypotheses])


def _strip(tokens: np.ndarray) -> list[int]:
  """Generated ids up to (not including) the first EOS."""
  out = []
  for t in tokens.tolist():
    if t == EOS_ID:
      break
    out.append(t)
  return out
