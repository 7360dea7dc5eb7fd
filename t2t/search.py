"""Greedy, beam and sampling search: pure JAX functions over a tokens -> logits callable.

Names, so each word means one thing: *search* is choosing output tokens (this module; its
settings are t2t.search_options.SearchOptions); *decode* is the model's decoder
(`Transformer.decode`, teacher-forced, and `decode_step`, one position with a KV cache), and in the config fields
`decode_*` and `data.batching.decode_batches`, inference-time generation as a whole; turning
ids back into text is *detokenizing* (`Tokenizer.decode`, SentencePiece's name).

Nothing here knows about Transformers. A model plugs in through a step function:

  step_fn(tokens, state, index) -> (logits, new_state)
    tokens     [N] int32, the previous token of each row (BOS at index 0)
    state      any pytree whose every array leaf has leading axis N (e.g. a KV cache)
    index      int32 scalar, the position being generated: 0 for the first token
    logits     [N, V] float32 (any float dtype; cast to float32 here)
    new_state  same structure, shapes and dtypes as `state`

The search functions call it inside `lax.while_loop`, so it must be traceable and must not change
the state's shapes. Every row is computed at every step: rows that have ended (greedy, sampling)
are fed PAD_ID and their output is ignored; dead beams are fed their last token. Per-item
constants (the encoder output, the source mask) are better closed over by step_fn than put into
the state: beam search gathers the whole state every step (see beam_search).

All three searches are jit-compatible when sizes and settings are bound with `functools.partial`:
  jax.jit(functools.partial(beam_search, step_fn, batch_size=B, beam_size=K, max_len=T, alpha=0.6))(state)
  jax.jit(functools.partial(sample, step_fn, batch_size=B, max_len=T, top_k=40))(state, rng=rng)
(`rng` by keyword: positionally it would land on batch_size.)

Outputs hold the generated ids only (no BOS), EOS included, PAD_ID after EOS. A row that never
emits EOS within max_len is returned as it stands (max_len tokens, no EOS).

Forced prefixes (CTranslate2's `target_prefix`): every search takes `prefix`, [B, P] int32
with PAD_ID after each row's prefix (a row of PAD_ID: no prefix). Position i < P of row b is
forced to prefix[b, i] when that is not PAD_ID; search goes on from there. The forced tokens are
part of the output and their log-probs count in the scores, as if the model had chosen them.

Growing state (`stages`, every search): a KV cache as long as the longest output makes every
step read, and beam search copy, positions not generated yet. With `stages=Stages(lengths, grow)`
the search starts from a state that holds positions < lengths[0]; before position lengths[i - 1]
it calls grow(state, lengths[i]) (e.g. pads the cache), in its own loop. Most outputs end in
the first, short stage. The tokens and scores are those of the unstaged search (a test).

Glossary:
  B  batch items being decoded
  K  beams per item
  N  rows the step function sees: B for greedy and sampling, B * K for beam search,
     where row b * K + k is beam k of item b
  V  vocabulary size
  T  max_len, the number of positions generated (BOS not counted)
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from t2t.data.batch import BOS_ID, EOS_ID, PAD_ID

StepFn = Callable[[jax.Array, Any, jax.Array], tuple[jax.Array, Any]]

# Stands in for -inf in log-probs and scores: finite, so sums and comparisons never make NaN.
NEG_INF = -1.0e9
# A log-prob at or below this marks an impossible hypothesis (a dead beam, a masked token).
_DEAD = 0.5 * NEG_INF


class Stages(NamedTuple):
  """The search's state grows as positions advance (module docstring).

  lengths: increasing; the given state serves positions < lengths[0], grow(state, lengths[i]) one that
    serves positions < lengths[i]; the last is >= max_len.
  grow: (state, length) -> state, traceable (called inside jit, outside the loops).
  """
  lengths: tuple[int, ...]
  grow: Callable[[Any, int], Any]

  @classmethod
  def doubling(cls, first: int, max_len: int, grow: Callable[[Any, int], Any]) -> 'Stages':
    """first, 2 x first, ... up to max_len (one stage when first >= max_len)."""
    lengths = [min(first, max_len)]
    while lengths[-1] < max_len:
      lengths.append(min(2 * lengths[-1], max_len))
    return cls(tuple(lengths), grow)


def _staged_loop(keep_going, body, carry, stages: 'Stages | None'):
  """lax.while_loop(keep_going, body, carry), the carry's `state` grown stage by stage."""
  if stages is None:
    return lax.while_loop(keep_going, body, carry)
  for i, length in enumerate(stages.lengths):
    if i:
      carry = carry._replace(state=stages.grow(carry.state, length))
    carry = lax.while_loop(functools.partial(_within, keep_going, length), body, carry)
  return carry


def _within(keep_going, end: int, carry) -> jax.Array:
  return keep_going(carry) & (carry.index < end)


def expand_to_beams(tree, beam_size: int):
  """Repeats each row beam_size times, so row b * K + k of the result is row b of the input.

  Args:
    tree: pytree of arrays [B, ...].
    beam_size: K.
  Returns:
    The same pytree with arrays [B * K, ...].
  """
  return jax.tree.map(lambda x: jnp.repeat(x, beam_size, axis=0), tree)


def length_penalty(length, alpha):
  """GNMT length penalty ((5 + length) / 6) ** alpha (Wu et al., 2016); scores are log-prob / penalty."""
  return ((5.0 + length) / 6.0) ** alpha


def _prefix_column(prefix, index):
  """[B] int32: the token forced at position `index` for each row, PAD_ID where none is."""
  width = prefix.shape[1]
  column = lax.dynamic_index_in_dim(prefix, jnp.minimum(index, width - 1), axis=1, keepdims=False)
  return jnp.where(index < width, column, PAD_ID)


def _check_rows(state, rows: int, caller: str, hint: str = ''):
  """Raises ValueError unless every array leaf of `state` has leading axis `rows`."""
  for path, leaf in jax.tree.leaves_with_path(state):
    shape = jnp.shape(leaf)
    if not shape or shape[0] != rows:
      raise ValueError(f'{caller}: state leaf {jax.tree_util.keystr(path) or "<root>"} has shape '
                       f'{shape}; every leaf needs leading axis {rows}{hint}')


# ----------------------------------------------------------------------------- greedy and sampling


class _RowSearch(NamedTuple):
  """Loop carry of greedy_search and sample."""
  index: jax.Array  # type: ignore[assignment]  # [] int32, position being generated (shadows tuple.index)
  last: jax.Array    # [B] int32, previous token of each row
  tokens: jax.Array  # [B, T] int32, generated so far, PAD elsewhere
  ended: jax.Array   # [B] bool, row has emitted EOS
  score: jax.Array   # [B] float32, sum of the model's log-probs of the tokens generated
  state: Any         # step_fn state, B rows


def _row_by_row(step_fn: StepFn, state, batch_size: int, max_len: int, pick, eos_id, bos_id,
                return_scores: bool = False, prefix=None, stages: Stages | None = None):
  """Extends every row one token at a time until all rows have emitted EOS or max_len is reached.

  Args:
    pick: pick(logits [B, V] float32, index) -> next tokens [B] int32.
    return_scores: also return each row's log-probability under the model (unfiltered,
      temperature 1), as fairseq reports for sampled hypotheses.
    prefix: None, or [B, P] int32 forced first tokens (see the module docstring).
    stages: None, or how the state grows (see the module docstring).
  Returns:
    tokens [B, T] int32, PAD after EOS; with return_scores, (tokens, scores [B] float32).
  """
  def keep_going(c):
    return (c.index < max_len) & ~jnp.all(c.ended)

  def extend(c):
    logits, state = step_fn(c.last, c.state, c.index)  # [B, V]
    token = pick(logits.astype(jnp.float32), c.index).astype(jnp.int32)  # [B]
    if prefix is not None:
      forced = _prefix_column(prefix, c.index)  # [B]
      token = jnp.where(forced != PAD_ID, forced, token)
    # Rows that already ended keep running (the batch moves together) but only write PAD.
    token = jnp.where(c.ended, PAD_ID, token)
    tokens = lax.dynamic_update_slice_in_dim(c.tokens, token[:, None], c.index, axis=1)
    log_probs = jax.nn.log_softmax(jnp.maximum(logits.astype(jnp.float32), NEG_INF), axis=-1)
    gained = jnp.take_along_axis(log_probs, token[:, None], axis=-1)[:, 0]  # [B]
    score = c.score + jnp.where(c.ended, 0.0, gained)
    return _RowSearch(c.index + 1, token, tokens, c.ended | (token == eos_id), score, state)

  init = _RowSearch(
      index=jnp.array(0, jnp.int32),
      last=jnp.full([batch_size], bos_id, jnp.int32),
      tokens=jnp.full([batch_size, max_len], PAD_ID, jnp.int32),
      ended=jnp.zeros([batch_size], bool),
      score=jnp.zeros([batch_size], jnp.float32),
      state=state)
  final = _staged_loop(keep_going, extend, init, stages)
  return (final.tokens, final.score) if return_scores else final.tokens


def greedy_search(step_fn: StepFn, state, batch_size: int, max_len: int, eos_id=EOS_ID, bos_id=BOS_ID,
                  return_scores: bool = False, prefix=None, stages: Stages | None = None):
  """Picks the most likely token at every position.

  Args:
    step_fn: see the module docstring; called with N = B rows.
    state: initial step_fn state, leaves [B, ...].
    batch_size: B.
    max_len: T, the most tokens generated per row.
    eos_id: token that ends a row.
    bos_id: previous token fed at index 0.
    prefix: None, or [B, P] int32 forced first tokens, PAD_ID-padded (module docstring).
    stages: None, or how the state grows (module docstring).
  Returns:
    tokens [B, T] int32: generated ids (BOS not included), EOS included, PAD after EOS.
    The loop stops as soon as every row has emitted EOS. With return_scores, (tokens,
    log-prob sums [B]).
  """
  _check_rows(state, batch_size, 'greedy_search')
  pick = lambda logits, index: jnp.argmax(logits, axis=-1)
  return _row_by_row(step_fn, state, batch_size, max_len, pick, eos_id, bos_id, return_scores, prefix, stages)


def _keep_top_k(logits, top_k: int):
  """Masks all but the top_k logits of each row ([B, V] -> [B, V]); ties with the k-th are kept."""
  kth = lax.top_k(logits, top_k)[0][:, -1:]  # [B, 1]
  return jnp.where(logits < kth, jnp.finfo(logits.dtype).min, logits)


def _keep_top_p(logits, top_p: float):
  """Masks all but the nucleus ([B, V] -> [B, V]): the fewest most-likely tokens holding top_p mass."""
  ordered = jnp.sort(logits, axis=-1)[:, ::-1]  # [B, V], descending
  probs = jax.nn.softmax(ordered, axis=-1)
  mass_before = jnp.cumsum(probs, axis=-1) - probs
  # The most likely token has mass_before == 0, so the nucleus is never empty.
  threshold = jnp.min(jnp.where(mass_before < top_p, ordered, jnp.inf), axis=-1, keepdims=True)  # [B, 1]
  return jnp.where(logits < threshold, jnp.finfo(logits.dtype).min, logits)


def sample(step_fn: StepFn, state, batch_size: int, max_len: int, rng, temperature=1.0,
           top_k: int = 0, top_p: float = 1.0, eos_id=EOS_ID, bos_id=BOS_ID, return_scores: bool = False,
           prefix=None, stages: Stages | None = None):
  """Draws each token from softmax(logits / temperature), optionally limited to top-k and the nucleus.

  Args:
    step_fn: see the module docstring; called with N = B rows.
    state: initial step_fn state, leaves [B, ...].
    batch_size: B.
    max_len: T, the most tokens generated per row.
    rng: PRNG key; position i uses fold_in(rng, i), so the same key gives the same tokens.
    temperature: > 0; divides the logits (may be traced). Near 0 approaches greedy.
    top_k: keep only the top_k most likely tokens; 0 keeps all. A Python int (static).
    top_p: keep only the nucleus holding top_p probability, after top_k; 1.0 keeps all. A Python
      float (static).
    eos_id: token that ends a row.
    bos_id: previous token fed at index 0.
    prefix: None, or [B, P] int32 forced first tokens, PAD_ID-padded (module docstring).
    stages: None, or how the state grows (module docstring).
  Returns:
    tokens [B, T] int32: generated ids (BOS not included), EOS included, PAD after EOS.
  """
  _check_rows(state, batch_size, 'sample')

  def pick(logits, index):
    logits = logits / temperature
    if top_k > 0:
      logits = _keep_top_k(logits, top_k)
    if top_p < 1.0:
      logits = _keep_top_p(logits, top_p)
    return jax.random.categorical(jax.random.fold_in(rng, index), logits, axis=-1)

  return _row_by_row(step_fn, state, batch_size, max_len, pick, eos_id, bos_id, return_scores, prefix, stages)


# ---------------------------------------------------------------------------------------- beam search


class BeamState(NamedTuple):
  """Loop carry of beam_search. Token arrays have T + 1 columns: BOS, then position i at column i + 1."""
  index: jax.Array  # type: ignore[assignment]  # [] int32, position being generated (shadows tuple.index)
  alive_tokens: jax.Array     # [B, K, T + 1] int32, beams that may still grow, never holding EOS
  alive_log_probs: jax.Array  # [B, K] float32, sum of log-probs, best first; <= _DEAD if dead
  finished_tokens: jax.Array  # [B, K, T + 1] int32, hypotheses ended by EOS, best first
  finished_scores: jax.Array  # [B, K] float32, log-prob / length_penalty; NEG_INF in empty slots
  finished_flags: jax.Array   # [B, K] bool, slot holds a real finished hypothesis
  state: Any                  # step_fn state, B * K rows, row b * K + k follows alive beam k of item b


def _init_beams(state, batch_size: int, beam_size: int, max_len: int, bos_id) -> BeamState:
  b, k = batch_size, beam_size
  tokens = jnp.full([b, k, max_len + 1], PAD_ID, jnp.int32).at[:, :, 0].set(bos_id)
  # Only beam 0 is alive at first; otherwise the K identical beams would fill the beam with
  # K copies of the same best continuation.
  alive_log_probs = jnp.broadcast_to(jnp.where(jnp.arange(k) == 0, 0.0, NEG_INF), [b, k])  # [B, K]
  return BeamState(
      index=jnp.array(0, jnp.int32),
      alive_tokens=tokens,
      alive_log_probs=alive_log_probs.astype(jnp.float32),
      finished_tokens=jnp.full([b, k, max_len + 1], PAD_ID, jnp.int32),
      finished_scores=jnp.full([b, k], NEG_INF, jnp.float32),
      finished_flags=jnp.zeros([b, k], bool),
      state=state)


def _items_done(s: BeamState, limits, alpha) -> jax.Array:
  """[B] bool: no alive beam of the item can enter its finished set any more (limits: [B] or a
  scalar, the most tokens an item's hypotheses can have)."""
  # Log-probs only fall as a beam grows, so the best score an alive beam can still reach is its
  # log-prob over the largest penalty ahead: the one at its limit when alpha >= 0.
  best_penalty = jnp.maximum(length_penalty(s.index + 1, alpha), length_penalty(limits, alpha))  # [B]
  best_alive = s.alive_log_probs[:, 0]  # [B]
  can_improve = best_alive / best_penalty > s.finished_scores[:, -1]
  full = jnp.all(s.finished_flags, axis=1)
  return (best_alive <= _DEAD) | (full & ~can_improve)


def _update_alive(top_tokens, top_log_probs, parents, ends, state, beam_size: int):
  """Keeps the best K candidates not ending in EOS and reorders the state to follow them.

  Args:
    top_tokens: [B, 2K, T + 1] candidate sequences; top_log_probs [B, 2K]; parents [B, 2K], the alive
      beam each extends; ends [B, 2K] bool, the candidate ends in EOS.
    state: step_fn state after this step, B * K rows.
  Returns:
    (tokens [B, K, T + 1], log_probs [B, K], state with rows gathered from the parent beams).
  """
  b = top_tokens.shape[0]
  log_probs, picks = lax.top_k(jnp.where(ends, NEG_INF, top_log_probs), beam_size)  # [B, K]
  tokens = jnp.take_along_axis(top_tokens, picks[:, :, None], axis=1)  # [B, K, T + 1]
  parent = jnp.take_along_axis(parents, picks, axis=1)  # [B, K]
  rows = (jnp.arange(b)[:, None] * beam_size + parent).reshape(-1)  # [N]
  state = jax.tree.map(lambda x: jnp.take(x, rows, axis=0), state)
  return tokens, log_probs, state


def _update_finished(s: BeamState, top_tokens, top_log_probs, ends, alpha):
  """Merges the candidates ending in EOS into the finished set, keeping the best K by score.

  Returns:
    (tokens [B, K, T + 1], scores [B, K], flags [B, K]).
  """
  beam_size = s.finished_scores.shape[1]
  real = ends & (top_log_probs > _DEAD)  # [B, 2K]
  # The candidate just written at position `index` has index + 1 tokens, EOS included.
  scores = jnp.where(real, top_log_probs / length_penalty(s.index + 1, alpha), NEG_INF)  # [B, 2K]
  all_scores = jnp.concatenate([s.finished_scores, scores], axis=1)  # [B, 3K]
  all_flags = jnp.concatenate([s.finished_flags, real], axis=1)  # [B, 3K]
  all_tokens = jnp.concatenate([s.finished_tokens, top_tokens], axis=1)  # [B, 3K, T + 1]
  scores, picks = lax.top_k(all_scores, beam_size)  # [B, K]
  tokens = jnp.take_along_axis(all_tokens, picks[:, :, None], axis=1)  # [B, K, T + 1]
  return tokens, scores, jnp.take_along_axis(all_flags, picks, axis=1)


def _beam_step(step_fn: StepFn, s: BeamState, alpha, eos_id, prefix=None) -> BeamState:
  """Extends every alive beam by one token (prefix: None or [B, P], the forced first tokens)."""
  b, k, _ = s.alive_tokens.shape
  last = lax.dynamic_index_in_dim(s.alive_tokens, s.index, axis=2, keepdims=False)  # [B, K]
  logits, state = step_fn(last.reshape(b * k), s.state, s.index)  # [N, V]
  v = logits.shape[-1]
  # Clamping keeps -inf logits (masked tokens) and dead beams finite and at a fixed floor.
  log_probs = jnp.maximum(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), NEG_INF)
  if prefix is not None:
    # Inside a prefix the forced token is the only continuation, with the model's own log-prob.
    forced = jnp.repeat(_prefix_column(prefix, s.index), k)  # [N]
    other = jnp.arange(v)[None, :] != forced[:, None]  # [N, V]
    log_probs = jnp.where((forced != PAD_ID)[:, None] & other, NEG_INF, log_probs)
  candidates = s.alive_log_probs[:, :, None] + log_probs.reshape(b, k, v)  # [B, K, V]
  candidates = jnp.maximum(candidates, NEG_INF).reshape(b, k * v)  # [B, K * V]
  # Each beam has one EOS continuation, so at most K of the top 2K end in EOS and at least K
  # remain to keep the alive set full.
  top_log_probs, top_ids = lax.top_k(candidates, min(2 * k, k * v))  # [B, 2K]
  parents = top_ids // v  # [B, 2K]
  new_tokens = (top_ids % v).astype(jnp.int32)  # [B, 2K]
  top_tokens = jnp.take_along_axis(s.alive_tokens, parents[:, :, None], axis=1)  # [B, 2K, T + 1]
  top_tokens = lax.dynamic_update_slice_in_dim(top_tokens, new_tokens[:, :, None], s.index + 1, axis=2)
  ends = new_tokens == eos_id

  alive_tokens, alive_log_probs, state = _update_alive(top_tokens, top_log_probs, parents, ends, state, k)
  finished = _update_finished(s, top_tokens, top_log_probs, ends, alpha)
  return BeamState(s.index + 1, alive_tokens, alive_log_probs, *finished, state)  # type: ignore[call-arg]


def _best_hypotheses(s: BeamState, alpha):
  """Finished hypotheses best first; slots left empty are filled with the best alive beams.

  Returns:
    (tokens [B, K, T] without BOS, scores [B, K]).
  """
  k = s.finished_flags.shape[1]
  # Finished slots are sorted, real ones first (their scores beat NEG_INF), so the empty ones are
  # slots n_finished .. K - 1; they take alive beams 0, 1, ... in order.
  n_finished = jnp.sum(s.finished_flags, axis=1, keepdims=True)  # [B, 1]
  fill = jnp.clip(jnp.arange(k)[None, :] - n_finished, 0, k - 1)  # [B, K]
  alive_tokens = jnp.take_along_axis(s.alive_tokens, fill[:, :, None], axis=1)  # [B, K, T + 1]
  alive_log_probs = jnp.take_along_axis(s.alive_log_probs, fill, axis=1)  # [B, K]
  # Alive beams have s.index tokens (max_len unless every alive beam is dead).
  alive_scores = jnp.where(alive_log_probs > _DEAD, alive_log_probs / length_penalty(s.index, alpha), NEG_INF)
  tokens = jnp.where(s.finished_flags[:, :, None], s.finished_tokens, alive_tokens)[:, :, 1:]  # [B, K, T]
  scores = jnp.where(s.finished_flags, s.finished_scores, alive_scores)
  return tokens, scores


def beam_search(step_fn: StepFn, state, batch_size: int, beam_size: int, max_len: int,
                alpha: float = 0.6, eos_id=EOS_ID, bos_id=BOS_ID, prefix=None, stages: Stages | None = None,
                limits=None):
  """Beam search with the GNMT length penalty and early stopping.

  Each step scores all K * V continuations of the alive beams by total log-prob and takes the top
  2K per item. Those ending in EOS are merged into the item's finished set (best K by normalized
  score log-prob / length_penalty(length), length counting EOS); the best K others become the alive
  beams. The state is then reordered by gathering rows along axis 0 for the chosen parent beams:
  every step copies the whole state, so keep in it only what changes per beam (a KV cache) and
  close step_fn over per-item constants such as the encoder output.

  An item is done when it has K finished hypotheses and its best alive beam cannot beat the worst of
  them even at max_len (or when no alive beam is possible any more); the loop stops when every item
  is done or at max_len.

  With K = 1 this is greedy search plus memory: an EOS that ranks second at some step is kept in
  the finished set and is returned if the greedy continuation ends up scoring worse.

  Args:
    step_fn: see the module docstring; called with N = B * K rows.
    state: initial step_fn state, leaves [B * K, ...]: apply expand_to_beams() to a B-row state.
    batch_size: B.
    beam_size: K.
    max_len: T, the most tokens generated per hypothesis.
    alpha: length penalty exponent; 0 ranks by plain log-prob, larger favours longer outputs.
    eos_id: token that ends a hypothesis.
    bos_id: previous token fed at index 0.
    prefix: None, or [B, P] int32 forced first tokens, PAD_ID-padded (module docstring); while
      inside it, an item has a single alive beam.
    stages: None, or how the state grows (module docstring): the copy of the state each step then
      moves only the current stage's length.
    limits: None, or int [B]: item b's hypotheses have at most limits[b] <= T tokens, EOS included,
      because step_fn forces EOS at index limits[b] - 1 (t2t.inference does). Only early stopping
      reads it: an item whose alive beams cannot reach a long length penalty is done sooner, with
      the same hypotheses as without it (a test).
  Returns:
    tokens [B, K, T] int32 (BOS not included, EOS included, PAD after EOS) and scores [B, K] float32.
    Finished hypotheses come first, best first. If an item has fewer than K finished by max_len,
    the rest of its slots hold its best alive beams, unfinished (T tokens, no EOS), scored as
    log-prob / length_penalty(T) and sorted among themselves; slots with no possible hypothesis
    at all score NEG_INF. Beam 0 is never NEG_INF while any hypothesis has nonzero probability.
  """
  hint = f' = batch_size * beam_size; apply expand_to_beams(state, {beam_size}) to the {batch_size}-row state'
  _check_rows(state, batch_size * beam_size, 'beam_search', hint)

  bound = max_len if limits is None else jnp.minimum(jnp.asarray(limits), max_len)  # [] or [B]

  def keep_going(s):
    return (s.index < max_len) & ~jnp.all(_items_done(s, bound, alpha))

  init = _init_beams(state, batch_size, beam_size, max_len, bos_id)
  final = _staged_loop(keep_going, lambda s: _beam_step(step_fn, s, alpha, eos_id, prefix), init, stages)
  return _best_hypotheses(final, alpha)
