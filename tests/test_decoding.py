"""Issue 13's decoding features on a random tiny model and toy inputs: ensembles, forced prefixes,
word alignments (and the built-in corpus's gold ones), MBR."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from t2t import alignment, demo_corpus, ensemble, mbr, search
from t2t.config import ModelConfig
from t2t.data.batch import EOS_ID, PAD_ID
from t2t.errors import UserError
from t2t.inference import SearchOptions, Translator, _mean_probability
from t2t.model import init_params

CONFIG = ModelConfig(vocab_size=40, d_model=16, num_heads=2, num_encoder_layers=1, num_decoder_layers=2,
                     d_ff=32, dropout=0.0, max_len=24)
SEARCHES = [SearchOptions('greedy', 1), SearchOptions('beam', 3, 0.6), SearchOptions('sample', temperature=1.5)]


@pytest.fixture(scope='module')
def params():
  return init_params(CONFIG, jax.random.PRNGKey(0))


@pytest.fixture(scope='module')
def other_params():
  return init_params(CONFIG, jax.random.PRNGKey(1))


@pytest.fixture(scope='module')
def translator(params):
  """The model alone; shared, so each search compiles once for the whole file."""
  return Translator(CONFIG, params, batch_size=8)


@pytest.fixture(scope='module')
def sources():
  rng = np.random.default_rng(3)
  return [rng.integers(4, CONFIG.vocab_size, size=n).tolist() for n in (3, 7, 5, 9, 4)]


def outputs(translator, sources, options, prefixes=None):
  hypotheses = translator.translate_ids(sources, options, seed=4, nbest=options.beams, prefixes=prefixes)
  return [[h.tokens for h in group] for group in hypotheses], [[h.score for h in group] for group in hypotheses]


# ------------------------------------------------------------------------------------------ ensembles


@pytest.mark.parametrize('options', SEARCHES, ids=lambda o: o.method)
def test_ensemble_of_one_and_of_a_model_with_itself_equal_the_model(translator, params, sources, options):
  alone = outputs(translator, sources, options)
  if options.method == 'beam':  # one member runs the very code of the model alone, whatever the search
    assert outputs(Translator.ensemble([(CONFIG, params)], batch_size=8), sources, options) == alone
  twice = outputs(Translator.ensemble([(CONFIG, params), (CONFIG, params)], batch_size=8), sources, options)
  assert twice[0] == alone[0]
  np.testing.assert_allclose(twice[1], alone[1], rtol=1e-5)


def test_ensemble_of_two_models_is_neither(translator, params, other_params, sources):
  greedy = SearchOptions('greedy', 1)
  pair = outputs(Translator.ensemble([(CONFIG, params), (CONFIG, other_params)], batch_size=8), sources, greedy)
  assert pair[0] != outputs(translator, sources, greedy)[0]
  assert pair[0] != outputs(Translator(CONFIG, other_params, batch_size=8), sources, greedy)[0]


def test_members_probabilities_are_averaged():
  rng = np.random.default_rng(0)
  logits = [rng.normal(size=(3, 7)).astype(np.float32) * 3 for _ in range(3)]
  softmax = [np.exp(x) / np.exp(x).sum(-1, keepdims=True) for x in logits]
  np.testing.assert_allclose(np.exp(np.asarray(_mean_probability(logits))), np.mean(softmax, axis=0), rtol=1e-5)


def test_ensemble_refuses_other_vocabularies_and_bad_specs(tmp_path):
  for name, digest in (('a', '1' * 64), ('b', '1' * 64), ('c', '2' * 64)):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'spm.model.sha256').write_text(f'{digest}  spm.model\n')
  ensemble.check_vocabularies([str(tmp_path / 'a'), str(tmp_path / 'b')])
  with pytest.raises(UserError, match=r'--ensemble: .*/c has another vocabulary than .*/a'):
    ensemble.check_vocabularies([str(tmp_path / 'a'), str(tmp_path / 'c')])
  with pytest.raises(UserError, match=r'--ensemble: .*/c has another vocabulary'):
    ensemble.load_ensemble(f'{tmp_path / "a"},{tmp_path / "c"}:700')
  assert ensemble.parse('runs/a, runs/b:700') == [('runs/a', None), ('runs/b', 700)]
  with pytest.raises(UserError, match='--ensemble'):
    ensemble.parse('runs/a,,runs/b')


# ----------------------------------------------------------------------------------- forced prefixes


@pytest.mark.parametrize('options', SEARCHES, ids=lambda o: o.method)
def test_outputs_start_with_the_prefix_and_empty_prefixes_change_nothing(translator, sources, options):
  prefixes = [[5, 6, 7], [], [9], [11, 12, 13, 14, 15, 16], [20, 21]]
  tokens, _ = outputs(translator, sources, options, prefixes)
  for prefix, group in zip(prefixes, tokens):
    for hypothesis in group:
      assert hypothesis[:len(prefix)] == prefix
  plain = outputs(translator, sources, options)
  assert outputs(translator, sources, options, [[]] * len(sources)) == plain
  assert tokens[1] == plain[0][1]  # an empty prefix among others: as if there were none


def test_forced_tokens_count_in_the_scores():
  """A toy model with the same logits at every step, EOS the likeliest: after the prefix, EOS."""
  logits = jnp.log(jnp.array([0.0, 0.5, 0.0, 0.1, 0.15, 0.25]) + 1e-30)  # PAD, EOS, BOS, 3 words
  step = lambda tokens, state, index: (jnp.broadcast_to(logits, (tokens.shape[0], 6)), state)
  log_probs = np.asarray(jax.nn.log_softmax(logits))
  prefix = jnp.array([[3, 4], [5, PAD_ID]], jnp.int32)  # row 1: a one-token prefix
  tokens, scores = search.greedy_search(step, jnp.zeros([2, 1]), 2, 6, return_scores=True, prefix=prefix)
  assert np.asarray(tokens)[:, :3].tolist() == [[3, 4, EOS_ID], [5, EOS_ID, PAD_ID]]
  np.testing.assert_allclose(scores, [log_probs[[3, 4, 1]].sum(), log_probs[[5, 1]].sum()], rtol=1e-6)
  state = search.expand_to_beams(jnp.zeros([2, 1]), 3)
  tokens, scores = search.beam_search(step, state, 2, 3, 6, alpha=0.0, prefix=prefix)
  assert np.asarray(tokens)[:, 0, :3].tolist() == [[3, 4, EOS_ID], [5, EOS_ID, PAD_ID]]
  np.testing.assert_allclose(np.asarray(scores)[:, 0], [log_probs[[3, 4, 1]].sum(), log_probs[[5, 1]].sum()],
                             rtol=1e-6)


# ----------------------------------------------------------------------------------- word alignments


def test_subwords_merge_into_words_and_each_target_word_gets_its_argmax():
  assert alignment.word_ids(['▁The', '▁bi', 'ke', '.', '▁x']) == [0, 1, 1, 1, 2]
  assert alignment.word_ids(['▁', 'x', '▁', '▁Der', 'a', '▁']) == [0, 0, 1, 1, 1, 1]
  assert alignment.word_ids(['▁', '▁']) == [-1, -1]  # no word: detokenizes to ''
  matrix = np.array([[0.1, 0.6, 0.3],    # target piece 0 (word 0): source piece 1 = word 0
                     [0.0, 0.2, 0.8],    # target piece 1 (word 1): source word 1
                     [0.5, 0.1, 0.4]])   # target piece 2 (word 1 too): mean row favours source word 1
  assert alignment.words_alignment(matrix, [0, 0, 1], [0, 1, 1]) == [(0, 0), (1, 1)]
  assert alignment.pharaoh([(1, 1), (0, 0), (2, 1)]) == '0-0 1-1 2-1'
  assert alignment.parse_pharaoh('0-0 1-1 2-1') == {(0, 0), (1, 1), (2, 1)}


def test_aer_is_zero_for_the_gold_and_counts_misses():
  gold = demo_corpus.gold_alignments('test')[:50]
  sure, possible = [s for s, _ in gold], [p for _, p in gold]
  assert alignment.aer(sure, sure, possible) == 0.0
  assert alignment.aer(possible, sure, possible) == 0.0  # possible links are never errors
  assert alignment.aer([{(0, 0), (1, 1)}], [{(0, 0), (2, 1)}]) == 0.5
  pairs = demo_corpus.load_builtin('test')[:50]
  for (english, german), (s, p) in zip(pairs, gold):
    assert s <= p and {j for _, j in p} == set(range(len(german.split())))  # every German word linked
    assert all(i < len(english.split()) for i, _ in p)


def test_alignments_of_a_random_model_are_well_formed(params, sources):
  class Pieces:  # every id its own word
    piece = staticmethod(lambda i: f'▁{i}')
  translator = Translator(CONFIG, params, Pieces(), batch_size=8)
  targets = [t[0] for t in outputs(translator, sources, SearchOptions('greedy', 1))[0]]
  links = translator.word_alignments(list(zip(sources, targets)))
  assert len(links) == len(sources)
  for src, tgt, sentence in zip(sources, targets, links):
    assert [j for _, j in sentence] == list(range(len(tgt)))  # one link per target word, in order
    assert all(0 <= i < len(src) for i, _ in sentence)


# --------------------------------------------------------------------------------------------- MBR


def test_mbr_picks_the_consensus():
  assert mbr.select(['ein Haus'] * 4) == 0
  assert mbr.select(['b', 'a', 'a']) == 1  # 'a' agrees with another 'a'
  # 'the red house' shares words with two others, each of them with it alone: it is the median.
  candidates = ['a green tree', 'the red car', 'the red house', 'the blue house']
  assert mbr.select(candidates) == 2
  assert mbr.select(candidates, 'bleu') == 2
  # A hand-made utility: candidate 2 is the only one close to all others.
  closeness = {frozenset({0, 1}): 0, frozenset({0, 2}): 5, frozenset({1, 2}): 5}
  score = lambda h, r: 100 if h == r else closeness[frozenset({int(h), int(r)})]
  assert mbr.select(['0', '1', '2'], score=score) == 2


@pytest.mark.parametrize('options, nbest, message', [
    (SearchOptions('sample', mbr=1), 1, '--mbr 1: use 0'),
    (SearchOptions('beam', 4, mbr=8, mbr_candidates='nbest'), 1, '--mbr 8 with --mbr_candidates nbest needs --beam_size'),
    (SearchOptions('beam', 4, mbr=4, mbr_candidates='sample'), 1, '--mbr_candidates sample draws'),
    (SearchOptions('sample', mbr=4, mbr_metric='ter'), 1, '--mbr_metric ter'),
    (SearchOptions('sample', mbr=4), 2, '--nbest 2 and --mbr'),
])
def test_impossible_mbr_settings_are_refused(options, nbest, message):
  with pytest.raises(UserError, match=message):
    options.validate(nbest=nbest)
