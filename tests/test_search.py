"""Tests for t2t/search.py on toy Markov-chain "models" whose answers can be computed by hand or by brute force."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from t2t import search as search_lib
from t2t.data.batch import BOS_ID, EOS_ID, PAD_ID

V = 6  # PAD, EOS, BOS and three word tokens
TOK_A, TOK_B, TOK_C = 3, 4, 5
IMPOSSIBLE = -1e9  # logit of a token that can never come next


# ------------------------------------------------------------------------------------------ toy models


def markov_step(tokens, state, index):
  """Toy model: the next token depends only on the previous one, through a table carried in the state.

  Args:
    tokens: [N] previous tokens.
    state: (tables [N, V, V] next-token logits of row n given the previous token, calls [N, 1] int32
      steps taken). Where `calls` disagrees with `index` (state dropped, reset or rows mixed up) the
      logits go flat, which changes every result below.
    index: position being generated.
  Returns:
    logits [N, V] and the new state.
  """
  tables, calls = state
  logits = tables[jnp.arange(tokens.shape[0]), tokens]  # [N, V]
  logits = jnp.where(calls == index, logits, 0.0)
  return logits, (tables, calls + 1)


def markov_state(tables):
  """B-row markov_step state from tables [B, V, V]."""
  tables = jnp.asarray(tables, jnp.float32)
  return tables, jnp.zeros([tables.shape[0], 1], jnp.int32)


def running_sum_step(tokens, state, index):
  """Toy model whose next-token distribution depends on the whole prefix, through the state.

  state = (tables [N, W, W, W], total [N, 1] sum of the tokens fed so far, BOS included):
  logits = tables[n, new total mod W, previous token]. A beam that inherits another beam's total sees
  the wrong distribution, so beam search only matches brute force if it reorders the state right.
  """
  del index
  tables, total = state
  total = total + tokens[:, None]  # [N, 1]
  w = tables.shape[-1]
  logits = tables[jnp.arange(tokens.shape[0]), total[:, 0] % w, tokens]  # [N, W]
  return logits, (tables, total)


STEP_CALLS = []


def counted_markov_step(tokens, state, index):
  """markov_step that records each call on the host, to see how many loop iterations ran."""
  jax.debug.callback(STEP_CALLS.append, index)
  return markov_step(tokens, state, index)


@functools.cache
def jitted(search, step_fn, **static):
  """The search jitted the way callers do it; cached so equal settings compile once."""
  return jax.jit(functools.partial(search, step_fn, **static))


def count_calls(fn, *args, **kwargs):
  """Runs fn and returns (its output as numpy, number of counted_markov_step calls)."""
  STEP_CALLS.clear()
  out = jax.block_until_ready(fn(*args, **kwargs))
  jax.effects_barrier()
  return jax.tree.map(np.asarray, out), len(STEP_CALLS)


def greedy(step_fn, state, batch_size, max_len):
  return np.asarray(jitted(search_lib.greedy_search, step_fn, batch_size=batch_size, max_len=max_len)(state))


def beam(step_fn, state, batch_size, beam_size, max_len, alpha):
  search = jitted(search_lib.beam_search, step_fn, batch_size=batch_size, beam_size=beam_size,
                  max_len=max_len, alpha=alpha)
  tokens, scores = search(search_lib.expand_to_beams(state, beam_size))
  return np.asarray(tokens), np.asarray(scores)


def sample(step_fn, state, batch_size, max_len, seed, **settings):
  search = jitted(search_lib.sample, step_fn, batch_size=batch_size, max_len=max_len, **settings)
  return np.asarray(search(state, rng=jax.random.key(seed)))


def log_table(probs):
  """[V, V] logits from {previous: {next: probability}}; missing entries are impossible."""
  table = np.full([V, V], IMPOSSIBLE, np.float32)
  for prev, row in probs.items():
    for nxt, p in row.items():
      table[prev, nxt] = np.log(p)
  return table


def random_tables(seed, n, eos_bias=0.0):
  """[n, V, V] random logits; PAD and BOS are never generated, so PAD in an output can only be padding."""
  tables = np.random.default_rng(seed).normal(scale=1.5, size=[n, V, V]).astype(np.float32)
  tables[:, :, EOS_ID] += eos_bias
  tables[:, :, [PAD_ID, BOS_ID]] = IMPOSSIBLE
  return tables


def log_softmax(x):
  x = np.asarray(x, np.float64)
  return x - np.log(np.sum(np.exp(x - x.max()))) - x.max()


def assert_pad_after_eos(tokens):
  """Every row is words, then EOS, then only PAD; or max_len words without EOS (no PAD in words)."""
  for row in tokens.reshape(-1, tokens.shape[-1]):
    ends = np.flatnonzero(row == EOS_ID)
    length = ends[0] + 1 if ends.size else len(row)
    assert np.all(row[length:] == PAD_ID), row
    assert np.all(row[:length] != PAD_ID), row


# -------------------------------------------------------------------------------- brute-force search


def enumerate_hypotheses(next_log_probs, vocab, max_len, alpha):
  """Scores every hypothesis beam search could return, by visiting all of them.

  Args:
    next_log_probs: prefix (tuple of generated ids) -> [vocab] log-probs of the next token.
  Returns:
    Two lists of (tokens padded to max_len, score), best first: finished hypotheses (ending in EOS,
    score log-prob / penalty(length with EOS)) and unfinished ones (max_len tokens without EOS).
  """
  finished, unfinished = [], []

  def grow(prefix, log_prob):
    log_probs = next_log_probs(prefix)
    for token in range(vocab):
      seq, total = prefix + (token,), log_prob + log_probs[token]
      if token == EOS_ID:
        padded = seq + (PAD_ID,) * (max_len - len(seq))
        finished.append((padded, total / search_lib.length_penalty(len(seq), alpha)))
      elif len(seq) == max_len:
        unfinished.append((seq, total / search_lib.length_penalty(max_len, alpha)))
      else:
        grow(seq, total)

  grow((), 0.0)
  best_first = lambda hypotheses: sorted(hypotheses, key=lambda h: -h[1])
  return best_first(finished), best_first(unfinished)


def markov_log_probs(table):
  return lambda prefix: log_softmax(table[prefix[-1] if prefix else BOS_ID])


def running_sum_log_probs(tables):
  def next_log_probs(prefix):
    prev = prefix[-1] if prefix else BOS_ID
    return log_softmax(tables[(BOS_ID + sum(prefix)) % tables.shape[-1], prev])
  return next_log_probs


def assert_exhaustive_beam(step_fn, state, next_log_probs, vocab, max_len, alpha, beam_size):
  """With 2K >= every possible candidate at every step, beam search must return the best hypotheses in order."""
  tokens, scores = beam(step_fn, state, len(next_log_probs), beam_size, max_len, alpha)
  for item, log_probs in enumerate(next_log_probs):
    finished, unfinished = enumerate_hypotheses(log_probs, vocab, max_len, alpha)
    # Finished hypotheses come first, then the best unfinished ones fill the remaining slots.
    expected = (finished + unfinished)[:beam_size]
    np.testing.assert_allclose(scores[item], [score for _, score in expected], rtol=1e-5)
    # Markov chains have exact ties (paths through the same transitions in another order), so the
    # tokens are checked by their own scores rather than by position: distinct hypotheses, each
    # with its true score, finished ones (with EOS) first.
    true_score = dict(finished + unfinished)
    returned = [tuple(seq) for seq in tokens[item]]
    np.testing.assert_allclose(scores[item], [true_score[seq] for seq in returned], rtol=1e-5)
    assert len(set(returned)) == beam_size
    has_eos = [EOS_ID in seq for seq in returned]
    assert has_eos == [True] * len(finished) + [False] * (beam_size - len(finished))


# --------------------------------------------------------------------------------------------- tests

# Greedy takes the locally best first token a and ends worse than beam search, which finds b EOS:
#   BOS -> a .5, b .4, c .1
#   a   -> c .4, EOS .3, a .2, b .1
#   b   -> EOS .9, a .05, c .05
#   c   -> EOS .6, a .4
HAND_TABLE = log_table({
    BOS_ID: {TOK_A: .5, TOK_B: .4, TOK_C: .1},
    TOK_A: {TOK_C: .4, EOS_ID: .3, TOK_A: .2, TOK_B: .1},
    TOK_B: {EOS_ID: .9, TOK_A: .05, TOK_C: .05},
    TOK_C: {EOS_ID: .6, TOK_A: .4},
})
# BOS -> a, then a -> EOS, each with probability 1.
CERTAIN_TABLE = log_table({BOS_ID: {TOK_A: 1.0}, TOK_A: {EOS_ID: 1.0}})


def test_greedy_on_hand_made_model():
  # Greedy: a (.5), then c (.4), then EOS (.6): total .12, worse than b EOS (.36).
  # With a batch the loop runs until the last row ends: row 0 (CERTAIN) after 2 steps, row 1 after 3.
  tokens, calls = count_calls(greedy, counted_markov_step, markov_state([CERTAIN_TABLE, HAND_TABLE]), 2, 6)
  np.testing.assert_array_equal(tokens, [[TOK_A, EOS_ID, 0, 0, 0, 0], [TOK_A, TOK_C, EOS_ID, 0, 0, 0]])
  assert calls == 3


@pytest.mark.parametrize('alpha', [0.0, 0.6])
def test_beam_search_on_hand_made_model(alpha):
  state = markov_state([HAND_TABLE])
  lp = lambda length: search_lib.length_penalty(length, alpha)
  # K = 2. Step 0: alive a .5, b .4 (EOS cannot follow BOS).
  # Step 1: candidates b EOS .36, a c .2, a EOS .15, a a .1, a b .05, b a .02, b c .02; the top 2K = 4
  #   put b EOS and a EOS into the finished set, a c and a a into the alive set.
  # Step 2: a c EOS .12, a c a .08, a a c .04, a a EOS .03; no new finished beats .15. The best alive
  #   a c a (.08) cannot beat the worst finished a EOS (.15) even at max_len, so the search stops:
  #   3 step_fn calls, not max_len = 5 (same outcome with alpha 0.6: -2.53 / lp(5) < -1.90 / lp(2)).
  (tokens, scores), calls = count_calls(beam, counted_markov_step, state, 1, 2, 5, alpha)
  np.testing.assert_array_equal(tokens, [[[TOK_B, EOS_ID, 0, 0, 0], [TOK_A, EOS_ID, 0, 0, 0]]])
  np.testing.assert_allclose(scores, [[np.log(.36) / lp(2), np.log(.15) / lp(2)]], rtol=1e-5)
  assert calls == 3

  # K = 3. Step 0: alive a .5, b .4, c .1.
  # Step 1: top 6 = b EOS .36, a c .2, a EOS .15, a a .1, c EOS .06, a b .05: finished b EOS, a EOS,
  #   c EOS; alive a c, a a, a b.
  # Step 2: top 6 = a c EOS .12, a c a .08, a b EOS .045, a a c .04, a a EOS .03, a a a .02; a c EOS
  #   displaces c EOS (.06; also by score with alpha 0.6: -2.12 / lp(3) > -2.81 / lp(2)).
  #   Best alive a c a .08 < worst finished .12: done after 3 calls.
  (tokens, scores), calls = count_calls(beam, counted_markov_step, state, 1, 3, 5, alpha)
  np.testing.assert_array_equal(
      tokens, [[[TOK_B, EOS_ID, 0, 0, 0], [TOK_A, EOS_ID, 0, 0, 0], [TOK_A, TOK_C, EOS_ID, 0, 0]]])
  np.testing.assert_allclose(scores, [[np.log(.36) / lp(2), np.log(.15) / lp(2), np.log(.12) / lp(3)]],
                             rtol=1e-5)
  assert calls == 3


def test_beam_search_matches_brute_force():
  # V = 5, max_len = 4: at most 4^3 = 64 non-EOS prefixes of length 3 and 64 * 5 = 320 candidates
  # per step, so K = 160 (2K = 320) prunes nothing that could still finish. It must return all
  # 1 + 4 + 16 + 64 = 85 finished hypotheses in score order, then the best 75 of the 4^4 = 256
  # unfinished ones.
  vocab, max_len, beam_size = 5, 4, 160
  tables = np.random.default_rng(0).normal(scale=2.0, size=[2, vocab, vocab]).astype(np.float32)
  assert_exhaustive_beam(markov_step, markov_state(tables), [markov_log_probs(t) for t in tables],
                         vocab, max_len, alpha=0.6, beam_size=beam_size)


def test_beam_search_reorders_state():
  vocab, max_len = 5, 4
  tables = np.random.default_rng(1).normal(scale=2.0, size=[2, vocab, vocab, vocab]).astype(np.float32)
  state = (jnp.asarray(tables), jnp.zeros([2, 1], jnp.int32))
  next_log_probs = [running_sum_log_probs(t) for t in tables]
  assert_exhaustive_beam(running_sum_step, state, next_log_probs, vocab, max_len, alpha=0.6, beam_size=160)

  # A small beam prunes, but every hypothesis it returns must carry its own exact score.
  tokens, scores = beam(running_sum_step, state, 2, 3, max_len, 0.6)
  for item, log_probs in enumerate(next_log_probs):
    finished, unfinished = enumerate_hypotheses(log_probs, vocab, max_len, 0.6)
    all_scores = dict(finished + unfinished)
    np.testing.assert_allclose(scores[item], [all_scores[tuple(seq)] for seq in tokens[item]], rtol=1e-5)


def greedy_friendly_tables(seed, n):
  """Random tables where EOS is in each row either the most likely token or the least likely word.

  With K = 1 the finished set sees EOS whenever it is among the top 2K = 2 candidates; were EOS a
  runner-up, beam search would remember that hypothesis and could rightly return it instead of
  greedy's. Without runner-up EOS, beam search with K = 1 and alpha = 0 must follow greedy exactly.
  """
  tables = random_tables(seed, n)
  words = tables[:, :, [EOS_ID, TOK_A, TOK_B, TOK_C]]
  eos_first = np.random.default_rng(seed).random([n, V]) < 0.3
  tables[:, :, EOS_ID] = np.where(eos_first, words.max(-1) + 1.0, words.min(-1) - 1.0)
  return tables


def test_beam_size_one_equals_greedy():
  batch_size, max_len = 4, 6
  for seed in range(5):
    tables = greedy_friendly_tables(seed, batch_size)
    expected = greedy(markov_step, markov_state(tables), batch_size, max_len)
    tokens, scores = beam(markov_step, markov_state(tables), batch_size, 1, max_len, 0.0)
    np.testing.assert_array_equal(tokens[:, 0], expected)
    # alpha = 0: the score is the plain log-prob of greedy's sequence.
    for item, row in enumerate(expected):
      prev = np.concatenate([[BOS_ID], row[:-1]])
      log_prob = sum(log_softmax(tables[item, p])[t] for p, t in zip(prev, row) if t != PAD_ID)
      np.testing.assert_allclose(scores[item, 0], log_prob, rtol=1e-5)


def test_searches_stop_early():
  # CERTAIN_TABLE ends every row after 2 tokens; max_len = 20 must not cost 20 steps.
  state = markov_state([CERTAIN_TABLE] * 3)
  expected = np.zeros([3, 20], np.int32)
  expected[:, :2] = [TOK_A, EOS_ID]
  tokens, calls = count_calls(greedy, counted_markov_step, state, 3, 20)
  np.testing.assert_array_equal(tokens, expected)
  assert calls == 2
  tokens, calls = count_calls(sample, counted_markov_step, state, 3, 20, seed=0)
  np.testing.assert_array_equal(tokens, expected)
  assert calls == 2
  # Beam: after a EOS no other hypothesis is possible, so every item is done after 2 steps, and the
  # slot that no finished hypothesis fills holds an impossible one with a finite NEG_INF score.
  (tokens, scores), calls = count_calls(beam, counted_markov_step, state, 3, 2, 20, 0.6)
  np.testing.assert_array_equal(tokens[:, 0], expected)
  np.testing.assert_allclose(scores[:, 0], 0.0, atol=1e-6)
  np.testing.assert_array_equal(scores[:, 1], search_lib.NEG_INF)
  assert calls == 2


def test_beam_search_waits_for_longer_hypotheses_that_can_still_win():
  # alpha = 1, K = 1. Step 0 finishes EOS (.55, score log .55 / lp(1) = -0.60) and keeps a (.45).
  # At length 2 the alive beam could only reach log .45 / lp(2) = -0.68, but at max_len it could reach
  # log .45 / lp(6) = -0.44, so the search goes on and finds a b c EOS: log .45 / lp(4) = -0.53.
  table = log_table({BOS_ID: {EOS_ID: .55, TOK_A: .45}, TOK_A: {TOK_B: 1.0}, TOK_B: {TOK_C: 1.0},
                     TOK_C: {EOS_ID: 1.0}})
  tokens, scores = beam(markov_step, markov_state([table]), 1, 1, 6, 1.0)
  np.testing.assert_array_equal(tokens, [[[TOK_A, TOK_B, TOK_C, EOS_ID, 0, 0]]])
  np.testing.assert_allclose(scores, [[np.log(.45) / search_lib.length_penalty(4, 1.0)]], rtol=1e-5)


def test_beam_search_returns_alive_beams_when_none_finished():
  # EOS impossible everywhere: nothing finishes, so the best max_len-token beams come back unfinished.
  table = log_table({BOS_ID: {TOK_A: .7, TOK_B: .3}, TOK_A: {TOK_A: .6, TOK_C: .4},
                     TOK_B: {TOK_B: 1.0}, TOK_C: {TOK_C: 1.0}})
  tokens, scores = beam(markov_step, markov_state([table]), 1, 2, 3, 0.6)
  # Step 0: a .7, b .3. Step 1: a a .42, b b .3 stay; a c .28 is pruned although a c c (.28) would
  # end best. Step 2: b b b .3, a a a .252 (a a c .168 third).
  np.testing.assert_array_equal(tokens, [[[TOK_B, TOK_B, TOK_B], [TOK_A, TOK_A, TOK_A]]])
  np.testing.assert_allclose(scores, [np.log([.3, .252]) / search_lib.length_penalty(3, 0.6)], rtol=1e-5)


def test_tokens_after_eos_are_pad():
  batch_size, max_len = 8, 8
  tables = random_tables(2, batch_size, eos_bias=-0.5)
  state = markov_state(tables)
  tokens = greedy(markov_step, state, batch_size, max_len)
  assert_pad_after_eos(tokens)
  # Rows end at different steps, so padding after EOS really happened (and some rows may not end).
  assert len({int(np.sum(row != PAD_ID)) for row in tokens}) > 1
  assert_pad_after_eos(sample(markov_step, state, batch_size, max_len, seed=0))
  tokens, _ = beam(markov_step, state, batch_size, 3, max_len, 0.6)
  assert_pad_after_eos(tokens)


def test_sample_is_reproducible_and_seed_dependent():
  flat = np.zeros([8, V, V], np.float32)
  flat[:, :, [PAD_ID, BOS_ID]] = IMPOSSIBLE
  state = markov_state(flat)
  first = sample(markov_step, state, 8, 6, seed=0)
  np.testing.assert_array_equal(sample(markov_step, state, 8, 6, seed=0), first)
  assert not np.array_equal(sample(markov_step, state, 8, 6, seed=1), first)
  assert_pad_after_eos(first)
  # Each position draws fresh noise: reusing one key for all steps would repeat the first word.
  assert any(len(set(row[row > BOS_ID])) > 1 for row in first)


@pytest.mark.parametrize('settings', [dict(top_k=1), dict(temperature=1e-4), dict(top_p=1e-3)])
def test_sample_degenerates_to_greedy(settings):
  tables = random_tables(3, 8)
  expected = greedy(markov_step, markov_state(tables), 8, 6)
  np.testing.assert_array_equal(sample(markov_step, markov_state(tables), 8, 6, seed=0, **settings), expected)


def test_sample_stays_within_top_k():
  batch_size, max_len, top_k = 16, 8, 2
  tables = random_tables(4, batch_size)
  tokens = sample(markov_step, markov_state(tables), batch_size, max_len, seed=0, top_k=top_k)
  for table, row in zip(tables, tokens):
    prev = np.concatenate([[BOS_ID], row[:-1]])
    for p, t in zip(prev, row):
      if p == EOS_ID or p == PAD_ID:
        break
      assert t in np.argsort(-table[p])[:top_k], (row, p, t)


@pytest.mark.parametrize('temperature, top_k, top_p', [(2.0, 3, 1.0), (1.0, 0, 0.7)])
def test_sample_distribution(temperature, top_k, top_p):
  # 4000 first tokens from one row of logits follow the filtered, renormalized softmax.
  n = 4000
  logits = np.array([IMPOSSIBLE, 0.3, IMPOSSIBLE, 1.5, 0.9, -0.4], np.float32)
  tables = np.broadcast_to(logits, [n, V, V])
  tokens = sample(markov_step, markov_state(tables), n, 1, seed=0,
                  temperature=temperature, top_k=top_k, top_p=top_p)
  probs = np.exp(log_softmax(logits / temperature))
  order = np.argsort(-probs)
  keep = order[:top_k] if top_k else order
  mass_before = np.cumsum(probs[keep]) - probs[keep]
  keep = keep[mass_before < top_p]
  expected = np.zeros(V)
  expected[keep] = probs[keep] / probs[keep].sum()
  counts = np.bincount(tokens[:, 0], minlength=V) / n
  np.testing.assert_allclose(counts, expected, atol=0.04)
  assert np.all(counts[expected == 0] == 0)


def test_beam_search_rejects_unexpanded_state():
  with pytest.raises(ValueError, match='expand_to_beams'):
    search_lib.beam_search(markov_step, markov_state([HAND_TABLE]), batch_size=1, beam_size=2, max_len=4)


def test_expand_to_beams_repeats_rows_in_place():
  tree = {'x': jnp.array([[1, 2], [3, 4]]), 'y': jnp.array([5, 6])}
  out = search_lib.expand_to_beams(tree, 3)
  np.testing.assert_array_equal(out['x'], [[1, 2]] * 3 + [[3, 4]] * 3)
  np.testing.assert_array_equal(out['y'], [5, 5, 5, 6, 6, 6])


def history_step(tokens, state, index):
  """Toy model with a growing cache: state = (tables [N, W, W, W], history [N, H]) where history
  holds the tokens fed so far (BOS included) at their positions; logits = tables[n, sum of the
  history mod W, previous token]. A cache too short for `index` (the write is clamped to its last
  slot) or a lost or misplaced history after growing changes the sum, and so the results."""
  tables, history = state
  history = lax_dynamic_write(history, tokens, index)
  w = tables.shape[-1]
  logits = tables[jnp.arange(tokens.shape[0]), jnp.sum(history, axis=1) % w, tokens]  # [N, W]
  return logits, (tables, history)


def lax_dynamic_write(history, tokens, index):
  return jax.lax.dynamic_update_slice_in_dim(history, tokens[:, None], index, axis=1)


def grow_history(state, length):
  tables, history = state
  return tables, jnp.pad(history, [(0, 0), (0, length - history.shape[1])])


@pytest.mark.parametrize('search', ['greedy', 'beam', 'sample'])
def test_staged_state_gives_the_unstaged_results(search):
  """Stages 2, 4, 8, 10 (max_len 10) give the tokens and scores of a 10-long state from the start."""
  vocab, max_len, rows = 5, 10, 3
  tables = np.random.default_rng(7).normal(scale=2.0, size=[rows, vocab, vocab, vocab]).astype(np.float32)
  tables[..., [PAD_ID, BOS_ID]] = IMPOSSIBLE
  tables[..., EOS_ID] = IMPOSSIBLE  # max_len outputs, so every stage is reached
  stages = search_lib.Stages.doubling(2, max_len, grow_history)
  assert stages.lengths == (2, 4, 8, 10)
  def run(first, staged):
    state = (jnp.asarray(tables), jnp.zeros([rows, first], jnp.int32))
    settings = dict(stages=stages) if staged else {}
    if search == 'beam':
      fn = functools.partial(search_lib.beam_search, history_step, batch_size=rows, beam_size=3,
                             max_len=max_len, **settings)
      return jax.jit(fn)(search_lib.expand_to_beams(state, 3))
    if search == 'greedy':
      fn = functools.partial(search_lib.greedy_search, history_step, batch_size=rows, max_len=max_len,
                             return_scores=True, **settings)
      return jax.jit(fn)(state)
    fn = functools.partial(search_lib.sample, history_step, batch_size=rows, max_len=max_len,
                           return_scores=True, **settings)
    return jax.jit(fn)(state, rng=jax.random.key(3))
  tokens, scores = map(np.asarray, run(max_len, staged=False))
  assert (tokens != PAD_ID).all()  # the last stage was used
  staged_tokens, staged_scores = map(np.asarray, run(2, staged=True))
  np.testing.assert_array_equal(staged_tokens, tokens)
  np.testing.assert_allclose(staged_scores, scores, rtol=1e-6)
  short_tokens, _ = map(np.asarray, run(2, staged=False))  # the check can fail: a 2-long state alone
  assert not np.array_equal(short_tokens, tokens)


def test_per_item_limits_stop_sooner_with_the_same_hypotheses():
  """beam_search(limits=...) with a step_fn that forces EOS at each item's limit (as t2t.inference
  does) returns exactly what the search without limits returns, in fewer steps: only the early-
  stopping bound reads the limits."""
  items, beams, max_len = 6, 3, 16
  limits = np.array([3, 5, 9, 4, 7, 6], np.int32)  # [B] tokens, EOS included; max_len 16 for the batch
  tables = random_tables(13, items, eos_bias=2.0)  # finished sets fill early: the bound decides
  rows = np.repeat(limits, beams)  # [N]

  def limited_step(tokens, state, index):
    logits, state = counted_markov_step(tokens, state, index)
    forced = jnp.full_like(logits, IMPOSSIBLE).at[:, EOS_ID].set(0.0)
    return jnp.where((index >= rows - 1)[:, None], forced, logits), state

  def run(**limit):
    fn = functools.partial(search_lib.beam_search, limited_step, batch_size=items, beam_size=beams,
                           max_len=max_len, alpha=0.6, **limit)
    return count_calls(jax.jit(fn), search_lib.expand_to_beams(markov_state(tables), beams))

  (tokens, scores), calls = run()
  (limited_tokens, limited_scores), limited_calls = run(limits=jnp.asarray(limits))
  lengths = (tokens != PAD_ID).sum(-1)  # [B, K]
  assert (lengths <= limits[:, None]).all() and (lengths == limits[:, None]).any()  # limits were reached
  np.testing.assert_array_equal(limited_tokens, tokens)
  np.testing.assert_allclose(limited_scores, scores, rtol=1e-6)
  assert limited_calls < calls  # the limits took effect
