"""Training invariants: the loss is right, a tiny model overfits, 2 devices equal 1, resume is exact."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from t2t import checkpoint as ckpt
from t2t import devices as devices_lib
from t2t import train_step
from t2t.config import ModelConfig, base_config
from t2t.data.batching import rows_to_batch, shard_for_devices
from t2t.devices import unreplicate
from t2t.model import Transformer, init_params

V = 30


def make_config(**overrides):
  config = base_config()
  config.learning_rate = 3e-3
  config.warmup_steps = 1
  config.label_smoothing = 0.1
  config.update(overrides)
  return config


MODEL = ModelConfig(vocab_size=V, d_model=32, num_heads=2, num_encoder_layers=1,
                    num_decoder_layers=1, d_ff=64, dropout=0.0, max_len=32)


def make_batch(seed, rows=4, row_len=16):
  rng = np.random.default_rng(seed)
  examples = [(list(rng.integers(4, V, rng.integers(2, 6))), list(rng.integers(4, V, rng.integers(2, 6))))
              for _ in range(rows * 2)]
  return rows_to_batch(examples, [[2 * r, 2 * r + 1] for r in range(rows)], rows, row_len)


@functools.cache
def steps_on(num_devices):
  """Compiled pmapped train step on the first `num_devices` devices (cached across tests)."""
  config = make_config()
  step = functools.partial(train_step.train_step, label_smoothing=config.label_smoothing)
  return jax.pmap(step, axis_name=train_step.AXIS, devices=jax.devices()[:num_devices])


def fresh_state(config=None):
  config = config or make_config()
  params = init_params(MODEL, jax.random.PRNGKey(0))
  return train_step.create_state(Transformer(MODEL), params, config)


def run_steps(num_devices, batches, state=None):
  devices = jax.devices()[:num_devices]
  state = devices_lib.replicate(state or fresh_state(), devices)
  rng = devices_lib.replicate(jax.random.PRNGKey(1), devices)
  history = []
  for batch in batches:
    state, metrics = steps_on(num_devices)(state, shard_for_devices(batch, num_devices), rng)
    history.append(jax.tree_util.tree_map(lambda x: float(x[0]), metrics))
  return unreplicate(state), history


def test_smoothed_loss_matches_explicit_one_hot():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(2, 5, 11)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 11, (2, 5)))
  weights = jnp.asarray(rng.integers(0, 2, (2, 5)), jnp.float32)
  eps = 0.1
  target = (1 - eps) * jax.nn.one_hot(labels, 11) + eps / 11
  expected = -jnp.sum(jnp.sum(target * jax.nn.log_softmax(logits), -1) * weights)
  sums = train_step.cross_entropy_sums(logits, labels, weights, eps)
  np.testing.assert_allclose(sums['loss'], expected, rtol=1e-5)
  np.testing.assert_allclose(sums['tokens'], weights.sum())


def test_schedule_warms_up_then_decays():
  schedule = train_step.learning_rate_schedule(make_config(learning_rate=1.0, warmup_steps=100))
  values = [float(schedule(s)) for s in (0, 49, 99, 399, 9999)]
  np.testing.assert_allclose(values, [0.01, 0.5, 1.0, 0.5, 0.1], rtol=1e-5)


def test_tiny_model_overfits_one_batch():
  batch = make_batch(0)
  _, history = run_steps(1, [batch] * 150)
  final = history[-1]
  assert history[0]['nll'] / history[0]['tokens'] > 3.0  # starts near log(V)
  # With label smoothing 0.1 the optimum keeps p(label) near 0.9, so nll cannot go far below 0.1.
  assert final['nll'] / final['tokens'] < 0.3, history[-1]
  assert final['correct'] == final['tokens']


def test_two_devices_equal_one_device():
  if jax.device_count() < 2:
    pytest.skip('needs XLA_FLAGS=--xla_force_host_platform_device_count=2')
  batches = [make_batch(s) for s in range(3)]
  # Plain SGD: Adam divides by sqrt(v), which turns float noise in gradients that are zero in
  # exact arithmetic (e.g. key biases, to which softmax is invariant) into lr-sized steps.
  sgd = train_step.TrainState.create(apply_fn=Transformer(MODEL).apply, tx=optax.sgd(0.5),
                                    params=init_params(MODEL, jax.random.PRNGKey(0)))
  state_1, history_1 = run_steps(1, batches, sgd)
  state_2, history_2 = run_steps(2, batches, sgd)
  for m1, m2 in zip(history_1, history_2):
    np.testing.assert_allclose([m1['loss'], m1['grad_norm']], [m2['loss'], m2['grad_norm']], rtol=1e-5)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=2e-6), state_1.params,
                         state_2.params)


def test_save_restore_continue_is_identical(tmp_path):
  batches = [make_batch(s) for s in range(4)]
  straight, _ = run_steps(1, batches)

  half, _ = run_steps(1, batches[:2])
  checkpointer = ckpt.Checkpointer(str(tmp_path), keep=2)
  checkpointer.save(2, {'step': np.asarray(half.step, np.int32), 'params': half.params, 'opt_state': half.opt_state},
                    {'epoch': 0, 'index': 2})
  checkpointer.wait()
  template = fresh_state()
  restored, data_state = checkpointer.restore(
      {'step': np.asarray(template.step, np.int32), 'params': template.params, 'opt_state': template.opt_state})
  assert data_state == {'epoch': 0, 'index': 2}
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored['params'], jax.device_get(half.params))
  resumed = template.replace(step=restored['step'], params=restored['params'], opt_state=restored['opt_state'])
  resumed, _ = run_steps(1, batches[2:], resumed)
  jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(resumed.params),
                         jax.device_get(straight.params))


def test_checkpoint_keeps_last_k_and_averages(tmp_path):
  checkpointer = ckpt.Checkpointer(str(tmp_path), keep=2)
  for step, value in [(1, 1.0), (2, 2.0), (3, 4.0)]:
    checkpointer.save(step, {'step': step, 'params': {'w': np.full(3, value, np.float32)}, 'opt_state': {}}, {})
  checkpointer.wait()
  assert checkpointer.all_steps() == [2, 3]
  params, steps = checkpointer.average_params(2)
  assert steps == [2, 3]
  np.testing.assert_allclose(params['w'], [3.0, 3.0, 3.0])


def test_gradient_accumulation_equals_one_big_batch():
  """Two accumulated half batches give the update of the whole batch (equal token counts)."""
  rng = np.random.default_rng(7)
  examples = [(list(rng.integers(4, V, 5)), list(rng.integers(4, V, 4))) for _ in range(8)]
  whole = rows_to_batch(examples, [[2 * r, 2 * r + 1] for r in range(4)], 4, 16)
  halves = [type(whole)(*(x[:2] for x in whole)), type(whole)(*(x[2:] for x in whole))]
  n_first, n_second = (halves[0].tgt_seg > 0).sum(), (halves[1].tgt_seg > 0).sum()
  assert n_first == n_second  # per-micro-batch mean losses average to the whole-batch mean
  # A large eps keeps Adam's step proportional to the gradient (see test_two_devices_equal_one_device).
  one, _ = run_steps(1, [whole], fresh_state(make_config(adam_eps=1.0)))
  accumulated, _ = run_steps(1, halves, fresh_state(make_config(adam_eps=1.0, grad_accum_steps=2)))
  assert not np.allclose(one.params['decoder_norm']['scale'], 1.0)  # an update happened
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), one.params,
                         accumulated.params)


def test_weight_decay_shrinks_matrices_only():
  """With zero gradients Adam's update is 0, so only decay moves a parameter: kernels shrink by
  (1 - lr * wd), while norms, biases and embedding tables stay exactly as they were."""
  config = base_config()
  config.update(weight_decay=0.5, learning_rate=0.1, warmup_steps=1, lr_schedule='cosine', num_train_steps=100)
  model_config = ModelConfig(vocab_size=32, d_model=16, num_heads=2, num_encoder_layers=1,
                             num_decoder_layers=1, d_ff=32, max_len=16, positional='learned')
  params = init_params(model_config, jax.random.PRNGKey(1))
  tx = train_step.make_optimizer(config)
  zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  lr = float(train_step.learning_rate_schedule(config)(0))
  flat = {jax.tree_util.keystr(path): (value, new_value) for (path, value), new_value in
          zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree_util.tree_leaves(new))}
  decayed = [k for k in flat if k.endswith("['kernel']")]
  kept = [k for k in flat if k not in decayed]
  assert len(decayed) >= 8 and any("['norm']['scale']" in k for k in kept)
  assert "['embedding']['embed']['embedding']" in kept and "['embedding']['positions']['embedding']" in kept
  assert any("['qkv']['bias']" in k and flat[k][0].ndim >= 2 for k in kept)  # per-head bias: not a matrix
  for k in decayed:
    np.testing.assert_allclose(flat[k][1], flat[k][0] * (1 - lr * 0.5), rtol=1e-6, err_msg=k)
  for k in kept:
    np.testing.assert_array_equal(flat[k][1], flat[k][0], err_msg=k)


def rdrop_steps(model_config, alpha, batch, seed=0):
  """One train step on 1 device with config.rdrop_alpha = alpha: (params, metrics)."""
  config = make_config()
  step = jax.pmap(functools.partial(train_step.train_step, label_smoothing=config.label_smoothing,
                                    rdrop_alpha=alpha), axis_name=train_step.AXIS, devices=jax.devices()[:1])
  params = init_params(model_config, jax.random.PRNGKey(seed))
  state = devices_lib.replicate(train_step.create_state(Transformer(model_config), params, config), jax.devices()[:1])
  rng = devices_lib.replicate(jax.random.PRNGKey(1), jax.devices()[:1])
  state, metrics = step(state, shard_for_devices(batch, 1), rng)
  return unreplicate(state).params, jax.tree_util.tree_map(lambda x: float(x[0]), metrics)


def test_rdrop_off_is_the_plain_step_and_without_dropout_adds_nothing():
  batch = make_batch(11)
  plain_state, plain = run_steps(1, [batch])
  off_params, off = rdrop_steps(MODEL, 0.0, batch)
  assert 'kl' not in off and off == plain[0]
  jax.tree_util.tree_map(np.testing.assert_array_equal, off_params, plain_state.params)
  # dropout 0: the two passes are the same computation, so the KL is exactly 0 and the loss the plain one.
  on_params, on = rdrop_steps(MODEL, 5.0, batch)
  assert on['kl'] == 0.0 and on['nll'] == off['nll']
  # the second pass's cross-entropy is the first's up to XLA's summation order
  np.testing.assert_allclose(on['loss'], off['loss'], rtol=1e-6)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), on_params, off_params)


def test_rdrop_with_dropout_adds_a_positive_kl():
  batch = make_batch(12)
  dropout = dataclasses.replace(MODEL, dropout=0.3)
  _, off = rdrop_steps(dropout, 0.0, batch)
  _, on = rdrop_steps(dropout, 1.0, batch)
  assert on['kl'] > 0
  assert on['nll'] == off['nll']  # the first pass draws the masks of a run without R-Drop
  assert on['loss'] > 0 and np.isfinite(on['grad_norm'])
  # the logged KL is the symmetric KL of two passes with the first pass's and the second's masks
  kl = train_step.symmetric_kl_sum(jnp.array([[[0.0, 1.0]]]), jnp.array([[[1.0, 0.0]]]), jnp.ones((1, 1)))
  p = jax.nn.softmax(jnp.array([0.0, 1.0]))
  expected = 0.5 * (jnp.sum(p * jnp.log(p / p[::-1])) + jnp.sum(p[::-1] * jnp.log(p[::-1] / p)))
  np.testing.assert_allclose(float(kl), float(expected), rtol=1e-6)
