"""Every architecture variant keeps the model's invariants: masks mask, the cache is exact,
packing isolates pairs, positions (rope and relative included) see word order, 2 devices equal 1.

One variant axis at a time (config.model.positional, norm, ffn, num_kv_heads) on a tiny model;
the model runs op by op (no jit), which is cheaper than compiling it for a handful of calls.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import jax_utils

from t2t import train_step
from t2t.config import ModelConfig
from t2t.data.batch import unpacked
from t2t.data.batching import rows_to_batch, shard_for_devices
from t2t.devices import unreplicate
from t2t.errors import UserError
from t2t.model import Transformer, grow_cache, init_cache, init_params

V, L = 40, 16
VARIANTS = {
    'rope': dict(positional='rope'),
    'relative': dict(positional='relative'),
    'rmsnorm': dict(norm='rmsnorm'),
    'swiglu': dict(ffn='swiglu'),  # gelu and geglu differ from relu and swiglu only in the activation
    'gqa_post_ln': dict(num_kv_heads=2, pre_norm=False),  # multi-query (1) runs in the 2-device test
}


def tiny(**overrides):
  return ModelConfig(vocab_size=V, d_model=16, num_heads=4, num_encoder_layers=1, num_decoder_layers=1,
                     d_ff=32, max_len=32, dropout=0.0, **overrides)


@pytest.fixture(scope='module', params=list(VARIANTS))
def variant(request):
  """(config, params, model, forward(params, batch) -> logits [2, L, V])."""
  config = tiny(**VARIANTS[request.param])
  params = init_params(config, jax.random.PRNGKey(0))
  model = Transformer(config)
  # Not jitted: op by op, a model this small runs in milliseconds, and compiling it would cost seconds.
  def forward(p, b):
    return model.apply({'params': p}, b.src, b.src_pos, b.src_seg, b.tgt_in, b.tgt_pos, b.tgt_seg)
  return config, params, model, forward


def random_rows(rng, n, lo, hi):
  return [list(rng.integers(4, V, rng.integers(lo, hi))) for _ in range(n)]


def test_future_target_tokens_do_not_change_earlier_logits(variant):
  _, params, _, forward = variant
  rng = np.random.default_rng(1)
  batch = unpacked(random_rows(rng, 2, 3, 12), [list(rng.integers(4, V, 12)) for _ in range(2)], L, L)
  changed = batch._replace(tgt_in=batch.tgt_in.copy())
  changed.tgt_in[:, 6:13] = rng.integers(4, V, (2, 7))  # tokens at positions >= 6
  before, after = forward(params, batch), forward(params, changed)
  np.testing.assert_allclose(before[:, :6], after[:, :6], atol=1e-5)
  assert not np.allclose(before[:, 6:13], after[:, 6:13], atol=1e-3)  # the test can see a change


def test_source_padding_tokens_do_not_change_outputs(variant):
  _, params, _, forward = variant
  rng = np.random.default_rng(2)
  batch = unpacked(random_rows(rng, 2, 2, 8), random_rows(rng, 2, 2, 8), L, L)
  pad = batch.src_seg == 0
  noisy = batch._replace(src=np.where(pad, rng.integers(4, V, pad.shape), batch.src))  # junk behind the mask
  real = batch.tgt_seg > 0
  np.testing.assert_allclose(forward(params, batch)[real], forward(params, noisy)[real], atol=1e-5)


def test_cached_decoding_equals_teacher_forcing(variant):
  """The cache starts 3 positions long and doubles when full (model.grow_cache, as search.Stages
  grows it), up to L: equal to the teacher-forced pass at every position."""
  config, params, model, forward = variant
  rng = np.random.default_rng(3)
  batch = unpacked(random_rows(rng, 2, 2, 12), [list(rng.integers(4, V, L - 1)) for _ in range(2)], L, L)
  full = forward(params, batch)  # [2, L, V]
  variables = {'params': params}
  encoded = model.apply(variables, batch.src, batch.src_pos, batch.src_seg, method=Transformer.encode)
  constants = model.apply(variables, encoded, batch.src_seg, method=Transformer.decoder_constants)
  def step(tok, cache, i):
    return model.apply(variables, tok, constants, cache, i, method=Transformer.decode_step)
  cache, steps = init_cache(config, 2, 3), []
  for i in range(L):
    if i == cache['k'][0].shape[2]:
      cache = grow_cache(cache, min(2 * i, L))
    logits, cache = step(jnp.asarray(batch.tgt_in[:, i]), cache, jnp.int32(i))
    steps.append(logits)
  np.testing.assert_allclose(np.stack(steps, 1), full, atol=3e-5)


def test_packed_rows_equal_separate_rows(variant):
  """Per-segment positions: the second pair of a packed row sees positions from 0, as alone."""
  _, params, _, forward = variant
  rng = np.random.default_rng(4)
  examples = [(list(rng.integers(4, V, n)), list(rng.integers(4, V, m))) for n, m in [(5, 4), (3, 6)]]
  packed = forward(params, rows_to_batch(examples, [[0, 1], []], 2, L))[0]  # [L, V]
  alone = forward(params, unpacked([e[0] for e in examples], [e[1] for e in examples], L, L))
  np.testing.assert_allclose(packed[:5], alone[0, :5], atol=2e-5)
  np.testing.assert_allclose(packed[5:12], alone[1, :7], atol=2e-5)


def test_positions_see_word_order(variant):
  """Reversing the source changes the output. Without positions (e.g. rope or relative not applied)
  the encoder would be permutation-equivariant and cross-attention a set operation: no change."""
  _, params, _, forward = variant
  rng = np.random.default_rng(5)
  src, tgt = random_rows(rng, 2, 6, 10), random_rows(rng, 2, 3, 8)
  batch = unpacked(src, tgt, L, L)
  reversed_src = unpacked([s[::-1] for s in src], tgt, L, L)
  real = batch.tgt_seg > 0
  assert np.abs(forward(params, batch)[real] - forward(params, reversed_src)[real]).max() > 1e-3


@functools.cache
def pmapped_step(num_devices):
  step = functools.partial(train_step.train_step, label_smoothing=0.1)
  return jax.pmap(step, axis_name=train_step.AXIS, devices=jax.devices()[:num_devices])


def test_two_devices_equal_one_device():
  """One model combining variants (compiling a train step twice is the costly part)."""
  if jax.device_count() < 2:
    pytest.skip('needs XLA_FLAGS=--xla_force_host_platform_device_count=2')
  config = tiny(positional='relative', norm='rmsnorm', ffn='geglu', num_kv_heads=1)
  rng = np.random.default_rng(6)
  pairs = [(random_rows(rng, 1, 2, 6)[0], random_rows(rng, 1, 2, 6)[0]) for _ in range(16)]
  batches = [rows_to_batch(pairs[8 * s:8 * s + 8], [[0, 1], [2, 3], [4, 5], [6, 7]], 4, L) for s in range(2)]
  # Plain SGD, as in test_train.py: Adam would amplify float noise in exactly-zero gradients.
  state = train_step.TrainState.create(apply_fn=Transformer(config).apply, tx=optax.sgd(0.5),
                                       params=init_params(config, jax.random.PRNGKey(0)))
  results = []
  for devices in (1, 2):
    replicated = jax_utils.replicate(state, jax.devices()[:devices])
    key = jax_utils.replicate(jax.random.PRNGKey(1), jax.devices()[:devices])
    losses = []
    for batch in batches:
      replicated, metrics = pmapped_step(devices)(replicated, shard_for_devices(batch, devices), key)
      losses.append(float(metrics['loss'][0]))
    results.append((losses, unreplicate(replicated).params))
  np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=2e-6), results[0][1], results[1][1])


@pytest.mark.parametrize('overrides, message', [
    (dict(positional='absolute'), r"^config\.model\.positional='absolute': use 'sinusoidal' or 'learned' or 'rope' or"),
    (dict(norm='batchnorm'), r"^config\.model\.norm='batchnorm': use 'layernorm' or 'rmsnorm'$"),
    (dict(ffn='glu'), r"^config\.model\.ffn='glu': use 'relu' or 'gelu' or 'swiglu' or 'geglu'$"),
    (dict(num_kv_heads=3), r'^config\.model\.num_kv_heads=3 does not divide config\.model\.num_heads=4'),
    (dict(num_kv_heads=-1), r'^config\.model\.num_kv_heads=-1: use an integer >= 0$'),
    (dict(positional='rope', d_model=12, num_heads=4), r"^config\.model\.positional='rope' .* 3 must be even$"),
])
def test_invalid_variant_is_one_line(overrides, message):
  fields = dict(vocab_size=V, d_model=16, num_heads=4)
  with pytest.raises(UserError, match=message):
    ModelConfig(**{**fields, **overrides})

