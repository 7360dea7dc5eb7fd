"""Moving trees onto this process's devices for pmap, and back: the one owner of replication.

pmap takes arrays whose leading axis has one entry per local device (P). `replicate` gives
every device its own copy of a tree (parameters, the training state, an RNG key), `shard`
puts row p of a host array [P, ...] on device p (a batch), and `unreplicate` takes the first
device's copy back. Arrays are built from per-device pieces with
jax.make_array_from_single_device_arrays, not the deprecated jax.device_put_replicated /
device_put_sharded, so this works across jax releases (0.10, 0.11).

Every pmap over these arrays takes `axis_name=AXIS`: since jax 0.8 pmap runs on jit, and its outputs
carry a sharding over a mesh named after the pmap's axis. Inputs built here use the same mesh
name, so the state a step returns has the sharding of the state it was given and the step compiles
once; with two names the second call sees a new sharding and compiles the whole step again.
"""

import jax
import numpy as np

AXIS = 'batch'  # the one pmap axis name (data parallelism over the local devices)


def _sharding(devices):
  mesh = jax.sharding.Mesh(np.array(devices), (AXIS,))
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(AXIS))


def replicate(tree, devices=None):
  """Each leaf x -> an array [P, *x.shape] holding one copy of x on each device (default: local)."""
  devices = list(devices or jax.local_devices())
  sharding = _sharding(devices)

  def copies(x):
    x = x if isinstance(x, jax.Array) else np.asarray(x)
    pieces = [jax.device_put(x[None], device) for device in devices]  # [1, ...] each
    return jax.make_array_from_single_device_arrays((len(devices),) + x.shape, sharding, pieces)

  return jax.tree_util.tree_map(copies, tree)


def shard(tree, devices=None):
  """Host arrays [P, ...] -> device arrays with row p on device p, as pmap expects."""
  sharding = _sharding(list(devices or jax.local_devices()))
  return jax.tree_util.tree_map(lambda x: jax.device_put(x, sharding), tree)


def unreplicate(tree):
  """The first device's copy of a replicated tree (still on that device; jax.device_get for numpy).

  flax.jax_utils.unreplicate returns a [1, ...] shard when pmap ran on a subset of the local
  devices, so t2t indexes directly.
  """
  return jax.tree_util.tree_map(lambda x: x[0], tree)
