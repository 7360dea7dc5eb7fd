"""Faults without a subprocess: non-finite steps are skipped, damaged checkpoints are set aside,
interrupted writes are ignored, keep-K prunes exactly, the fingerprint is deterministic."""

import functools
import os
import shutil
import signal

import jax
import numpy as np
import pytest

from t2t import checkpoint as ckpt
from t2t import devices as devices_lib
from t2t import train_step
from t2t.config import ModelConfig, base_config
from t2t.data.batching import rows_to_batch, shard_for_devices
from t2t.devices import unreplicate
from t2t.errors import UserError
from t2t.model import Transformer, init_params

V = 30
MODEL = ModelConfig(vocab_size=V, d_model=16, num_heads=2, num_encoder_layers=1,
                    num_decoder_layers=1, d_ff=32, dropout=0.1, max_len=32)


@functools.cache
def p_train():
  return jax.pmap(functools.partial(train_step.train_step, label_smoothing=0.1),
                  axis_name=train_step.AXIS, devices=jax.devices()[:1])


def fresh_state():
  config = base_config()
  config.warmup_steps = 1
  return train_step.create_state(Transformer(MODEL), init_params(MODEL, jax.random.PRNGKey(0)), config)


def batch(seed):
  rng = np.random.default_rng(seed)
  examples = [(list(rng.integers(4, V, 5)), list(rng.integers(4, V, 4))) for _ in range(8)]
  return shard_for_devices(rows_to_batch(examples, [[2 * r, 2 * r + 1] for r in range(4)], 4, 16), 1)


def step(state, seed):
  rng = devices_lib.replicate(jax.random.PRNGKey(1), jax.devices()[:1])
  new, metrics = p_train()(devices_lib.replicate(state, jax.devices()[:1]), batch(seed), rng)
  return jax.device_get(unreplicate(new)), jax.tree_util.tree_map(lambda x: float(x[0]), metrics)


def assert_trees_equal(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(a), jax.device_get(b))


def test_non_finite_step_is_skipped_and_counted():
  good = fresh_state()
  poisoned = good.replace(params=jax.tree_util.tree_map(np.array, good.params))  # writable copies
  poisoned.params['decoder_norm']['scale'][3] = np.nan  # one NaN makes the loss NaN
  after, metrics = step(poisoned, 0)
  assert metrics['skipped'] == 1.0 and not np.isfinite(metrics['loss'])
  assert int(after.step) == 1 and int(after.consecutive_skips) == 1  # the batch is consumed
  assert_trees_equal(after.params, poisoned.params)
  assert_trees_equal(after.opt_state, poisoned.opt_state)
  again, _ = step(after, 1)
  assert int(again.step) == 2 and int(again.consecutive_skips) == 2

  updated, metrics = step(good, 0)
  assert metrics['skipped'] == 0.0 and int(updated.consecutive_skips) == 0
  assert not np.array_equal(updated.params['decoder_norm']['scale'], good.params['decoder_norm']['scale'])


def save_steps(directory, steps, keep=3):
  checkpointer = ckpt.Checkpointer(str(directory), keep=keep)
  for s in steps:
    checkpointer.save(s, {'step': np.asarray(s, np.int32), 'params': {'w': np.full(3, s, np.float32)},
                          'opt_state': {}}, {'epoch': 0, 'index': s})
  checkpointer.wait()
  checkpointer.close()


TARGET = {'step': np.asarray(0, np.int32), 'params': {'w': np.zeros(3, np.float32)}, 'opt_state': {}}


def test_pruning_keeps_exactly_k_and_ignores_interrupted_writes(tmp_path):
  save_steps(tmp_path, [1, 2, 3, 4, 5], keep=2)
  folder = tmp_path / 'checkpoints'
  assert sorted(os.listdir(folder)) == ['4', '5']
  # What a SIGKILL during an async save leaves: orbax's temporary folder, never renamed.
  shutil.copytree(folder / '5', folder / '6.orbax-checkpoint-tmp-1234')
  (folder / '6.orbax-checkpoint-tmp-1234' / 'state' / '_METADATA').unlink(missing_ok=True)
  checkpointer = ckpt.Checkpointer(str(tmp_path), keep=2)
  assert checkpointer.all_steps() == [4, 5]
  step_number, state, data_state = checkpointer.restore_latest_good(TARGET)
  assert step_number == 5 and data_state == {'epoch': 0, 'index': 5}
  np.testing.assert_array_equal(state['params']['w'], [5, 5, 5])
  checkpointer.close()
  assert sorted(os.listdir(folder)) == ['4', '5']  # the leftover is cleaned up


def damage(step_dir):
  """Truncates every file of the parameter arrays, as a torn copy or a full disk would."""
  files = [os.path.join(root, f) for root, _, names in os.walk(step_dir / 'state') for f in names]
  data_files = [f for f in files if 'd/' in f.replace(os.sep, '/') or 'ocdbt' in f or f.endswith('.zarray')]
  for path in data_files or files:
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 3)


# A failed read can leave tensorstore callbacks that arrive after orbax closed its event loop:
# harmless noise on this failure path, reported by pytest as an unraisable exception.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('how', ['truncated', 'missing'])
def test_damaged_latest_checkpoint_falls_back_with_a_warning(tmp_path, capsys, how):
  save_steps(tmp_path, [10, 20, 30])
  latest = tmp_path / 'checkpoints' / '30'
  if how == 'truncated':
    damage(latest)
  else:
    shutil.rmtree(latest / 'state')
  checkpointer = ckpt.Checkpointer(str(tmp_path))
  step_number, state, _ = checkpointer.restore_latest_good(TARGET)
  assert step_number == 20
  np.testing.assert_array_equal(state['params']['w'], [20, 20, 20])
  assert f'checkpoint {latest} is damaged; moved to {latest}.damaged' in capsys.readouterr().err
  assert checkpointer.latest_step() == 20 and (tmp_path / 'checkpoints' / '30.damaged').is_dir()
  # The run can write step 30 again; the damaged copy is kept for inspection.
  checkpointer.save(30, {'step': np.asarray(30, np.int32), 'params': {'w': np.ones(3, np.float32)},
                         'opt_state': {}}, {})
  checkpointer.wait()
  assert checkpointer.all_steps() == [10, 20, 30]
  checkpointer.close()


def test_no_restorable_checkpoint_moves_nothing(tmp_path):
  save_steps(tmp_path, [1, 2])
  checkpointer = ckpt.Checkpointer(str(tmp_path))
  wrong = {**TARGET, 'params': {'w': np.zeros(3, np.float32), 'b': np.zeros(2, np.float32)}}
  with pytest.raises(UserError, match='no checkpoint in .* restores; the newest, .*/2, fails'):
    checkpointer.restore_latest_good(wrong)
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['1', '2']
  checkpointer.close()


def test_fingerprint_is_over_sorted_keys_dtypes_shapes_and_bytes(tmp_path, capsys):
  params = {'b': np.arange(6, dtype=np.float32).reshape(2, 3), 'a': {'k': np.ones(2, np.float32)}}
  reordered = {'a': {'k': np.ones(2, np.float32)}, 'b': np.arange(6, dtype=np.float32).reshape(2, 3)}
  assert ckpt.fingerprint(params) == ckpt.fingerprint(reordered)
  assert ckpt.fingerprint(params) != ckpt.fingerprint({**params, 'b': params['b'].reshape(3, 2)})
  assert ckpt.fingerprint(params) != ckpt.fingerprint({**params, 'b': params['b'].astype(np.float64)})
  nudged = params['b'].copy()
  nudged[1, 2] = np.nextafter(nudged[1, 2], np.float32(10))
  assert ckpt.fingerprint(params) != ckpt.fingerprint({**params, 'b': nudged})

  save_steps(tmp_path, [7])
  ckpt.main(['--workdir', str(tmp_path), '--fingerprint'])
  expected = ckpt.fingerprint({'w': np.full(3, 7, np.float32)})
  assert capsys.readouterr().out == f'step 7 sha256 {expected}\n'
  with pytest.raises(SystemExit) as exit_info:
    ckpt.main(['--workdir', str(tmp_path / 'nothing'), '--fingerprint'])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith('error: ') and 'nothing' in err[0]


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_noted_once_then_acts_as_usual(signum):
  from t2t.trainer import Interrupted, StopRequests
  before = signal.getsignal(signum)
  with StopRequests() as stop:
    assert not stop.requested(1)
    os.kill(os.getpid(), signum)
    assert stop.requested(1) and stop.signum == signum
    assert signal.getsignal(signum) is before  # a second signal is not swallowed
  assert signal.getsignal(signum) is before
  message = str(Interrupted(signum, 7, '/w/checkpoints/7'))
  assert message == (f'stopped by {signal.Signals(signum).name} after step 7: checkpoint saved in '
                     '/w/checkpoints/7; rerun the same command to resume')


def test_multi_process_flags_go_together(monkeypatch):
  """(With none at all, every train.py run in the tests is the single-process case.)"""
  from t2t import distributed
  for variable in distributed.ENV.values():
    monkeypatch.delenv(variable, raising=False)
  with pytest.raises(UserError, match='^--num_processes, --process_id missing: a multi-process run needs'):
    distributed.initialize('127.0.0.1:1234')
  monkeypatch.setenv('JAX_NUM_PROCESSES', '2')
  with pytest.raises(UserError, match=r'^--process_id=2 must be in \[0, 2\)'):
    distributed.initialize('127.0.0.1:1234', process_id=2)


@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_evaluation_skips_a_damaged_latest_checkpoint_and_moves_nothing(tmp_path, capsys):
  save_steps(tmp_path, [10, 20, 30])
  latest = tmp_path / 'checkpoints' / '30'
  damage(latest)
  before = sorted(os.listdir(tmp_path / 'checkpoints'))
  params = ckpt.Checkpointer(str(tmp_path)).restore_params()
  np.testing.assert_array_equal(params['w'], [20, 20, 20])
  assert f'checkpoint {latest} does not restore' in capsys.readouterr().err
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == before
