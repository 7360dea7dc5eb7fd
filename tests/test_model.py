"""Invariants of the Transformer: masks mask, the cache is exact, packing isolates pairs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from t2t.config import ModelConfig
from t2t.data.batch import Batch, unpacked
from t2t.data.batching import rows_to_batch
from t2t.model import Transformer, init_cache, init_params

V = 40


@pytest.fixture(scope='module', params=['pre_ln_sinusoidal', 'post_ln_learned_untied'])
def setup(request):
  if request.param == 'pre_ln_sinusoidal':
    config = ModelConfig(vocab_size=V, d_model=32, num_heads=4, num_encoder_layers=2,
                         num_decoder_layers=2, d_ff=64, max_len=32)
  else:
    config = ModelConfig(vocab_size=V, d_model=32, num_heads=4, num_encoder_layers=2,
                         num_decoder_layers=2, d_ff=64, max_len=32, pre_norm=False,
                         positional='learned', tie_embeddings=False)
  params = init_params(config, jax.random.PRNGKey(0))
  model = Transformer(config)
  def forward(p, b):
    b = Batch(*b)
    return jitted(p, b.src, b.src_pos, b.src_seg, b.tgt_in, b.tgt_pos, b.tgt_seg)
  jitted = jax.jit(lambda p, *arrays: model.apply({'params': p}, *arrays))
  return config, params, model, forward


def random_rows(rng, n, lo, hi):
  return [list(rng.integers(4, V, rng.integers(lo, hi))) for _ in range(n)]


def test_future_target_tokens_do_not_change_earlier_logits(setup):
  _, params, _, forward = setup
  rng = np.random.default_rng(1)
  src, tgt = random_rows(rng, 3, 3, 9), [list(rng.integers(4, V, 8)) for _ in range(3)]
  batch = unpacked(src, tgt, 10, 9)
  changed = list(batch)
  changed[3] = batch.tgt_in.copy()
  changed[3][:, 5:] = rng.integers(4, V, changed[3][:, 5:].shape)  # tokens at positions >= 5
  before, after = forward(params, tuple(batch)), forward(params, tuple(changed))
  np.testing.assert_allclose(before[:, :5], after[:, :5], atol=1e-5)
  assert not np.allclose(before[:, 5:], after[:, 5:], atol=1e-3)  # the test can see a change


def test_source_padding_tokens_do_not_change_outputs(setup):
  _, params, _, forward = setup
  rng = np.random.default_rng(2)
  batch = unpacked(random_rows(rng, 3, 2, 6), random_rows(rng, 3, 2, 6), 12, 8)
  noisy = list(batch)
  pad = batch.src_seg == 0
  noisy[0] = np.where(pad, rng.integers(4, V, pad.shape), batch.src)  # junk behind the padding mask
  real = batch.tgt_seg > 0  # outputs at target padding are never read (masked out of the loss)
  np.testing.assert_allclose(forward(params, tuple(batch))[real], forward(params, tuple(noisy))[real],
                             atol=1e-5)


def test_cached_decoding_equals_teacher_forcing(setup):
  config, params, model, forward = setup
  rng = np.random.default_rng(3)
  t = 7
  batch = unpacked(random_rows(rng, 4, 2, 9), [list(rng.integers(4, V, t - 1)) for _ in range(4)], 10, t)
  full = forward(params, tuple(batch))  # [B, T, V]
  variables = {'params': params}
  encoded = model.apply(variables, batch.src, batch.src_pos, batch.src_seg, method=Transformer.encode)
  constants = model.apply(variables, encoded, batch.src_seg, method=Transformer.decoder_constants)
  step = jax.jit(lambda tok, cache, i: model.apply(variables, tok, constants, cache, i,
                                                   method=Transformer.decode_step))
  cache, steps = init_cache(config, 4, t), []
  for i in range(t):
    logits, cache = step(jnp.asarray(batch.tgt_in[:, i]), cache, jnp.int32(i))
    steps.append(logits)
  np.testing.assert_allclose(np.stack(steps, 1), full, atol=2e-5)


def test_beams_sharing_a_sentences_cross_keys_equal_teacher_forcing(setup):
  """Beam search's layout: K rows per sentence read the sentence's cross-attention keys once.

  Each beam has its own target tokens; its cached logits must equal the teacher-forced pass of
  that beam's tokens with its own sentence (a wrong row-to-sentence mapping mixes sentences)."""
  config, params, model, forward = setup
  rng = np.random.default_rng(6)
  sentences, beams, t = 3, 2, 6
  src = random_rows(rng, sentences, 2, 9)
  tgt = [list(rng.integers(4, V, t - 1)) for _ in range(sentences * beams)]
  per_beam = unpacked([src[r // beams] for r in range(sentences * beams)], tgt, 10, t)  # row b * K + k
  full = forward(params, tuple(per_beam))  # [B * K, T, V]
  variables = {'params': params}
  by_sentence = unpacked(src, tgt[:sentences], 10, t)
  encoded = model.apply(variables, by_sentence.src, by_sentence.src_pos, by_sentence.src_seg,
                        method=Transformer.encode)
  constants = model.apply(variables, encoded, by_sentence.src_seg, method=Transformer.decoder_constants)
  assert constants.cross_k[0].shape[0] == sentences
  step = jax.jit(lambda tok, cache, i: model.apply(variables, tok, constants, cache, i,
                                                   method=Transformer.decode_step))
  cache, steps = init_cache(config, sentences * beams, t), []
  for i in range(t):
    logits, cache = step(jnp.asarray(per_beam.tgt_in[:, i]), cache, jnp.int32(i))
    steps.append(logits)
  np.testing.assert_allclose(np.stack(steps, 1), full, atol=2e-5)


def test_packed_rows_equal_separate_rows(setup):
  """Segment ids isolate pairs: packing two pairs in one row changes none of their logits."""
  _, params, _, forward = setup
  rng = np.random.default_rng(4)
  examples = [(list(rng.integers(4, V, n)), list(rng.integers(4, V, m))) for n, m in [(5, 4), (3, 6)]]
  packed = forward(params, tuple(rows_to_batch(examples, [[0, 1]], 1, 16)))[0]  # [T, V]
  alone = forward(params, tuple(unpacked([e[0] for e in examples], [e[1] for e in examples], 16, 16)))
  np.testing.assert_allclose(packed[:5], alone[0, :5], atol=2e-5)
  np.testing.assert_allclose(packed[5:12], alone[1, :7], atol=2e-5)


def test_bfloat16_compute_keeps_float32_params_and_close_logits():
  config = ModelConfig(vocab_size=V, d_model=32, num_heads=4, num_encoder_layers=1,
                       num_decoder_layers=1, d_ff=64, max_len=32)
  bf16 = ModelConfig(**{**config.__dict__, 'dtype': 'bfloat16'})
  params = init_params(config, jax.random.PRNGKey(0))
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(init_params(bf16, jax.random.PRNGKey(0))))
  rng = np.random.default_rng(5)
  b = unpacked(random_rows(rng, 2, 3, 8), random_rows(rng, 2, 3, 8), 10, 10)
  args = (b.src, b.src_pos, b.src_seg, b.tgt_in, b.tgt_pos, b.tgt_seg)
  full = Transformer(config).apply({'params': params}, *args)
  half = Transformer(bf16).apply({'params': params}, *args)
  assert half.dtype == jnp.float32  # logits are float32 for the loss
  real = b.tgt_seg > 0
  np.testing.assert_allclose(half[real], full[real], atol=0.15)
  assert not np.array_equal(half, full)  # bf16 really was used
