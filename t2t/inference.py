"""Translating sentences with a trained model: batching, search, detokenization.

`Translator` glues the model's encode()/decode_step() to the search functions of
t2t/search.py, spreads each batch over the local devices with pmap, and keeps one compiled
function per (source bucket, output length, search options), so a test set compiles a
handful of shapes once.

Ensembles (`Translator.ensemble`, t2t/ensemble.py loads them): every member encodes the source
and keeps its own KV cache; at each step the search sees the log of the members' mean
probability, log(1/M sum_m p_m(y | ...)), as fairseq's ensembles do, so greedy, beam and
sampling all work unchanged. A single member is the plain model: its logits go to the search
untouched.

MBR (`SearchOptions.mbr`): translate_ids draws N candidates per sentence and keeps the one
t2t/mbr.py selects; it needs the tokenizer (the utility compares detokenized text).

Forced prefixes (`prefixes=`): each hypothesis starts with its prefix's tokens (the forced
tokens are part of the output) and search continues from there (t2t/search.py).

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

from t2t import devices, mbr, search
from t2t.config import ModelConfig
from t2t.data.batch import EOS_ID
from t2t.data.batching import decode_batches
from t2t.model import Transformer, grow_cache, init_cache
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


def _mean_probability(logits: list) -> jax.Array:
  """log(mean_m softmax(logits_m)): M x [N, V] -> [N, V] float32 log-probs."""
  log_probs = jnp.stack([jax.nn.log_softmax(x.astype(jnp.float32), axis=-1) for x in logits])  # [M, N, V]
  return jax.scipy.special.logsumexp(log_probs, axis=0) - math.log(len(logits))


def _search_fn(params, src, src_pos, src_seg, limits, prefix, rng, *, models: tuple[Transformer, ...],
               options: SearchOptions, max_len: int, first_stage: int):
  """Runs on one device. params: one tree per member; src*: [R, S], limits: [R], prefix: [R, T]
  or None -> (tokens [R, K, T], scores [R, K]). The KV caches start `first_stage` positions long
  and double as the output grows (search.Stages; 0: max_len from the start)."""
  rows = src.shape[0]
  beams = options.beams
  stages = search.Stages.doubling(first_stage or max_len, max_len, grow_cache)
  constants, caches = [], []
  for model, member_params in zip(models, params):
    variables = {'params': member_params}
    encoded = model.apply(variables, src, src_pos, src_seg, method=Transformer.encode)  # [R, S, D]
    # R sentences' cross-attention keys, shared by each sentence's beams (see decode_step).
    constants.append(model.apply(variables, encoded, src_seg, method=Transformer.decoder_constants))
    caches.append(init_cache(model.config, rows * beams, stages.lengths[0]))
  item_limits = limits  # [R]
  if beams > 1:
    limits = search.expand_to_beams(limits, beams)  # [N]

  def step_fn(tokens, caches, index):
    logits, new_caches = [], []
    for model, member_params, member_constants, cache in zip(models, params, constants, caches):
      member_logits, cache = model.apply({'params': member_params}, tokens, member_constants, cache, index,
                                         method=Transformer.decode_step)  # [N, V]
      logits.append(member_logits)
      new_caches.append(cache)
    combined = logits[0] if len(logits) == 1 else _mean_probability(logits)  # [N, V]
    return _limit_lengths(combined, index, limits), tuple(new_caches)

  state = tuple(caches)
  if options.method == 'beam':
    return search.beam_search(step_fn, state, rows, beams, max_len, options.alpha, prefix=prefix, stages=stages,
                              limits=item_limits)
  if options.method == 'greedy':
    tokens, scores = search.greedy_search(step_fn, state, rows, max_len, return_scores=True, prefix=prefix,
                                          stages=stages)
  elif options.method == 'sample':
    tokens, scores = search.sample(step_fn, state, rows, max_len, rng=rng, temperature=options.temperature,
                                   top_k=options.top_k, top_p=options.top_p, return_scores=True,
                                   prefix=prefix, stages=stages)
  else:
    raise ValueError(f'unknown search method {options.method!r}')
  return tokens[:, None], scores[:, None]


# The KV cache's first length (positions); it doubles as the output grows. Short stages spare each
# step reading, and beam search copying, positions not generated yet (bench/RESULTS.md).
CACHE_STAGE = 8


class Translator:
  """Translates token ids or text with fixed parameters on all local devices."""

  def __init__(self, model_config: ModelConfig, params, tokenizer=None, batch_size: int = 64,
               cache_stage: int = CACHE_STAGE):
    """batch_size: decoder rows per batch over all local devices, i.e. sentences x beam size, so
    beam 4 with 64 decodes 16 sentences at a time and greedy search 64. Per-step cost grows with
    the rows (KV cache, logits); on a 2-core CPU 64 rows is the fastest measured (bench/RESULTS.md);
    accelerators want more.
    cache_stage: the KV cache's first length; it doubles as outputs grow (0: the batch's whole
    output limit from the first step). Outputs do not depend on it.
    """
    self.cache_stage = cache_stage
    self.models: tuple[Transformer, ...] = (Transformer(model_config),)
    self.model = self.models[0]
    self.tokenizer = tokenizer
    self.devices = jax.local_devices()
    self.rows_per_device = max(1, math.ceil(batch_size / len(self.devices)))
    self.set_params(params)
    self._compiled: dict = {}

  @classmethod
  def ensemble(cls, members: list, tokenizer=None, batch_size: int = 64) -> 'Translator':
    """A Translator that averages `members`' probabilities at every step (module docstring).

    members: [(ModelConfig, host params), ...] sharing one vocabulary (t2t.ensemble checks the
    workdirs' tokenizers). The output limit and the longest source are the smallest member's.
    """
    if not members:
      raise ValueError('an ensemble needs at least one member')
    translator = cls(members[0][0], members[0][1], tokenizer, batch_size)
    translator.models = tuple(Transformer(config) for config, _ in members)
    translator.params += tuple(devices.replicate(params, translator.devices) for _, params in members[1:])
    translator.model = min(translator.models, key=lambda m: m.config.max_len)  # sets the limits
    return translator

  def set_params(self, params, replicated: bool = False) -> None:
    """Translate with `params` from now on (one model, not an ensemble): host parameters (copied
    to every local device), or with `replicated` a tree already replicated over them (the
    trainer's state.params)."""
    if len(self.models) != 1:
      raise ValueError('set_params replaces a single model; build a new Translator for an ensemble')
    self.params = (params if replicated else devices.replicate(params, self.devices),)

  def sentences_per_batch(self, options: SearchOptions) -> int:
    """Sentences decoded together: the row budget over the beam size, a multiple of the devices."""
    return max(1, self.rows_per_device // options.beams) * len(self.devices)

  def _function(self, src_len: int, max_len: int, options: SearchOptions, prefixed: bool):
    key = (src_len, max_len, options, prefixed)
    if key not in self._compiled:
      fn = functools.partial(_search_fn, models=self.models, options=options, max_len=max_len,
                             first_stage=self.cache_stage)
      self._compiled[key] = jax.pmap(fn, axis_name=devices.AXIS)
    return self._compiled[key]

  def translate_ids(self, sources: list[list[int]], options: SearchOptions, seed: int = 0,
                    nbest: int = 1, prefixes: list[list[int]] | None = None) -> list[list[Hypothesis]]:
    """Translates id sequences (without EOS); returns the `nbest` best hypotheses of each.

    prefixes: None, or one id sequence per source that every hypothesis of it starts with
    ([] for none); cut to the model's max_len - 1 tokens. A row's output limit grows to hold
    its prefix and one more token.
    """
    if options.mbr:
      return self._translate_mbr(sources, options, seed, prefixes)
    limit = self.model.config.max_len
    sources = [s[:self.model.config.max_sentence_tokens] for s in sources]  # callers warn about cut ones
    if prefixes is not None:
      if len(prefixes) != len(sources):
        raise ValueError(f'{len(prefixes)} prefixes for {len(sources)} sources')
      prefixes = [list(p)[:limit - 1] for p in prefixes]
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
      prefix = None
      if prefixes is not None:
        prefix_lengths = np.array([len(prefixes[i]) if i >= 0 else 0 for i in item.ids])  # [R]
        limits = np.maximum(limits, prefix_lengths + 1)
        max_len = int(min(limit, max(max_len, prefix_lengths.max() + 1)))
        prefix = np.zeros([rows, max_len], np.int32)  # [R, T], PAD_ID after each prefix
        for row, index in enumerate(item.ids):
          if index >= 0:
            prefix[row, :len(prefixes[index])] = prefixes[index]
      fn = self._function(item.src_len, max_len, options, prefix is not None)
      shard = lambda x: None if x is None else x.reshape((p, -1) + x.shape[1:])
      rngs = jax.random.split(jax.random.fold_in(rng, number), p)
      tokens, scores = fn(self.params, shard(item.batch.src), shard(item.batch.src_pos),
                          shard(item.batch.src_seg), shard(limits), shard(prefix), rngs)
      tokens = np.asarray(tokens).reshape((rows,) + tokens.shape[2:])  # [R, K, T]
      scores = np.asarray(scores).reshape((rows, -1))  # [R, K]
      for row, index in enumerate(item.ids):
        if index >= 0:
          results[index] = [Hypothesis(_strip(tokens[row, k]), float(scores[row, k]))
                            for k in range(min(nbest, tokens.shape[1]))]
    return results  # type: ignore[return-value]  # every index was filled

  def _translate_mbr(self, sources, options: SearchOptions, seed: int, prefixes) -> list[list[Hypothesis]]:
    """One hypothesis per source, chosen by MBR (t2t/mbr.py) among options.mbr candidates:
    samples (each source repeated N times in the batches) or the N-best list."""
    n, search = options.mbr, options.candidate_search
    if options.mbr_candidates == 'sample':
      repeated = [s for s in sources for _ in range(n)]
      repeated_prefixes = None if prefixes is None else [p for p in prefixes for _ in range(n)]
      flat = self.translate_ids(repeated, search, seed, prefixes=repeated_prefixes)
      groups = [[flat[i * n + k][0] for k in range(n)] for i in range(len(sources))]
    else:
      groups = self.translate_ids(sources, search, seed, nbest=n, prefixes=prefixes)
    chosen = []
    for group in groups:
      texts = self.tokenizer.decode_batch([h.tokens for h in group])
      chosen.append([group[mbr.select(texts, options.mbr_metric)]])
    return chosen

  def word_alignments(self, pairs: list[tuple[list[int], list[int]]]) -> list[list[tuple[int, int]]]:
    """Word alignments of (source ids, target ids) pairs from the (first) model's cross-attention
    (t2t/alignment.py: last decoder layer, mean of heads, argmax per target word)."""
    from t2t import alignment  # pylint: disable=import-outside-toplevel  (imports attention_maps)
    params = jax.device_get(devices.unreplicate(self.params[0]))
    return alignment.align(self.models[0].config, params, self.tokenizer, pairs)

  def encode_prefixes(self, prefixes: list[str] | None) -> list[list[int]] | None:
    """Target prefixes as ids ('' -> [], no prefix); None stays None."""
    if prefixes is None:
      return None
    return [self.tokenizer.encode(p) if p else [] for p in prefixes]

  def translate(self, sentences: list[str], options: SearchOptions, seed: int = 0,
                prefixes: list[str] | None = None) -> list[str]:
    """Detokenized best translation of each sentence; prefixes: see translate_ids (as text)."""
    sources = self.tokenizer.encode_batch(sentences)
    too_long = sum(len(s) > self.model.config.max_sentence_tokens for s in sources)
    if too_long:
      logging.warning('%d input sentences exceed the model maximum of %d tokens and were cut',
                      too_long, self.model.config.max_sentence_tokens)
    hypotheses = self.translate_ids(sources, options, seed, prefixes=self.encode_prefixes(prefixes))
    return self.tokenizer.decode_batch([h[0].tokens for h in hypotheses])


def _strip(tokens: np.ndarray) -> list[int]:
  """Generated ids up to (not including) the first EOS."""
  out = []
  for t in tokens.tolist():
    if t == EOS_ID:
      break
    out.append(t)
  return out
