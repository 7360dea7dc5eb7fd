"""Replication over the local devices: every device holds the same values, and they come back."""

import jax
import numpy as np

from t2t import devices


def test_replicate_puts_one_copy_on_each_device_and_unreplicate_gets_it_back():
  rng = np.random.default_rng(0)
  tree = {'w': rng.normal(size=(3, 4)).astype(np.float32), 'step': 7, 'key': jax.random.PRNGKey(5)}
  replicated = devices.replicate(tree)
  local = jax.local_devices()
  assert len(local) == 2  # conftest: two host CPU devices
  for leaf, original in zip(jax.tree_util.tree_leaves(replicated), jax.tree_util.tree_leaves(tree)):
    assert leaf.shape == (len(local),) + np.shape(original)
    shards = sorted(leaf.addressable_shards, key=lambda s: s.index[0].start)
    assert [s.device for s in shards] == local
    for shard in shards:
      np.testing.assert_array_equal(np.asarray(shard.data)[0], np.asarray(original))
  back = jax.device_get(devices.unreplicate(replicated))
  np.testing.assert_array_equal(back['w'], tree['w'])
  assert int(back['step']) == 7


def test_pmap_sees_the_same_values_on_every_device():
  x = np.random.default_rng(1).normal(size=(5,)).astype(np.float32)
  total = jax.pmap(lambda v: jax.lax.psum(v, 'i'), axis_name='i')(devices.replicate(x))
  np.testing.assert_allclose(np.asarray(total), np.stack([2 * x, 2 * x]), rtol=1e-6)


def test_shard_puts_row_p_on_device_p():
  rows = np.arange(2 * 3, dtype=np.int32).reshape(2, 3)
  sharded = devices.shard(rows)
  for shard in sharded.addressable_shards:
    p = jax.local_devices().index(shard.device)
    np.testing.assert_array_equal(np.asarray(shard.data)[0], rows[p])


def test_a_pmapped_step_compiles_once_on_its_own_outputs():
  """The state a step returns must look (sharding included) like the state it was given, or every
  training run compiles its step twice: replicate/shard and pmap share one axis name."""
  compiles = []

  def listen(event, duration, **_):
    if event == '/jax/core/compile/backend_compile_duration':
      compiles.append(duration)

  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    step = jax.pmap(lambda state, x: jax.tree_util.tree_map(lambda s: s + jax.lax.psum(x, devices.AXIS), state),
                    axis_name=devices.AXIS, donate_argnums=(0,))
    state = devices.replicate({'w': np.zeros(3, np.float32)})
    for _ in range(3):
      state = step(state, devices.shard(np.ones((2, 3), np.float32)))
    jax.block_until_ready(state)
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)
  assert len(compiles) == 1, compiles
  np.testing.assert_allclose(np.asarray(devices.unreplicate(state)['w']), [6.0, 6.0, 6.0])
