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
