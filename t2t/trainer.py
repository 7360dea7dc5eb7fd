"""The training loop: prepare data, build or resume the state, step, evaluate, checkpoint.

Rerunning the same command on the same workdir resumes from its latest checkpoint, with the
data iterator at the same position and the same dropout randomness.
"""

import dataclasses
import json
import logging
import os
import queue
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import jax_utils

from t2t import checkpoint as ckpt
from t2t import metrics as metrics_lib
from t2t import train_lib
from t2t.config import ModelConfig
from t2t.data import pipeline
from t2t.data.batching import TrainBatches, eval_batches, fill_fraction, filter_by_length, shard_for_devices
from t2t.errors import UserError
from t2t.inference import SearchOptions, Translator
from t2t.model import Transformer, init_params
from t2t.monitor import Monitor

# Fields that must not change between the run that made a workdir and one resuming it.
FIXED_FIELDS = ('model.', 'vocab_size', 'tokenizer_path', 'max_len', 'data.source', 'data.src_lang',
                'data.tgt_lang', 'data.path', 'data.tfds_name')


@dataclasses.dataclass
class Data:
  tokenizer: object
  train: TrainBatches
  eval_examples: list      # encoded validation pairs
  eval_pairs: list         # validation text pairs (for BLEU)
  fill: float              # fraction of real tokens in this epoch's packed rows


def check_workdir(config, workdir: str) -> None:
  """Refuses to resume a workdir made with a different model, data or tokenizer."""
  saved = ckpt.read_train_config(workdir)
  if saved is None:
    return
  requested = json.loads(config.to_json_best_effort())
  old, new = _flatten(saved), _flatten(requested)
  for field in sorted(set(old) | set(new)):
    if field.startswith(FIXED_FIELDS) and old.get(field) != new.get(field):
      raise UserError(f'{os.path.join(workdir, ckpt.TRAIN_CONFIG)}: config.{field} was '
                      f'{old.get(field)!r}, now {new.get(field)!r}; use a new --workdir or the same setting')


def _flatten(tree: dict, prefix: str = '') -> dict:
  """{'model': {'d_model': 8}} -> {'model.d_model': 8}."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[prefix + key] = value
  return flat


def prepare_data(config, workdir: str) -> Data:
  """Loads both splits, trains/loads the tokenizer, encodes, filters and packs."""
  limit = config.data.max_train_examples or None
  train_pairs = pipeline.load_pairs(config.data, config.data.train_split, limit)
  eval_pairs = pipeline.load_pairs(config.data, config.data.eval_split)
  tokenizer = pipeline.get_tokenizer(config, workdir, train_pairs)
  train, dropped = filter_by_length(pipeline.encode_pairs(tokenizer, train_pairs), config.max_len)
  if dropped:
    logging.warning('dropped %d of %d training pairs longer than config.max_len=%d tokens',
                    dropped, len(train_pairs), config.max_len)
  if not train:
    raise UserError(f'no training pair fits config.max_len={config.max_len}: raise it')
  eval_examples, _ = filter_by_length(pipeline.encode_pairs(tokenizer, eval_pairs), config.max_len)
  if config.batch_size % jax.device_count():
    raise UserError(f'config.batch_size={config.batch_size} must be a multiple of the '
                    f'{jax.device_count()} devices')
  batches = TrainBatches(train, config.batch_size, config.max_len, config.seed,
                         jax.process_index(), jax.process_count())
  rows = batches._rows()
  fill = sum(len(train[i][0]) + len(train[i][1]) + 2 for r in rows for i in r) / (
      2 * len(rows) * config.max_len)
  return Data(tokenizer, batches, eval_examples, eval_pairs, fill)


def prefetch(batches: TrainBatches, size: int = 2):
  """Yields (device-sharded batch, iterator state after it), prepared in a background thread."""
  q: queue.Queue = queue.Queue(maxsize=size)
  devices = jax.local_devices()

  def produce():
    for batch in batches:
      sharded = shard_for_devices(batch, len(devices))
      q.put((train_lib.put_sharded(sharded, devices), batches.state(), fill_fraction(batch)))

  threading.Thread(target=produce, daemon=True).start()
  while True:
    yield q.get()


def evaluate(config, p_eval, translator: Translator, state, data: Data) -> dict:
  """Validation loss/accuracy/perplexity on all of val, BLEU on its first sentences."""
  totals = None
  for batch in eval_batches(data.eval_examples, config.batch_size, config.max_len):
    sums = p_eval(state.params, shard_for_devices(batch, jax.local_device_count()))
    totals = metrics_lib.add_sums(totals, jax.tree_util.tree_map(lambda x: float(x[0]), sums))
  results = metrics_lib.summarize(totals)
  pairs = data.eval_pairs[:config.eval_bleu_sentences or None]
  translator.params = state.params
  hypotheses = translator.translate([s for s, _ in pairs], search_options(config))
  results['bleu'] = metrics_lib.corpus_scores(hypotheses, [t for _, t in pairs]).bleu
  return results


def search_options(config) -> SearchOptions:
  return SearchOptions('beam' if config.beam_size > 1 else 'greedy', config.beam_size, config.alpha,
                       config.decode_max_len_a, config.decode_max_len_b)


def save(checkpointer: ckpt.Checkpointer, state, data_state: dict) -> None:
  host_state = jax.device_get(train_lib.unreplicate(state))
  checkpointer.save(int(host_state.step), {'step': np.asarray(host_state.step, np.int32), 'params': host_state.params,
                                           'opt_state': host_state.opt_state}, data_state)


def restore_or_init(config, model_config, checkpointer, data: Data):
  """A fresh TrainState, or the latest checkpoint's (and the data position with it)."""
  params = init_params(model_config, jax.random.PRNGKey(config.seed))
  state = train_lib.create_state(Transformer(model_config), params, config)
  if checkpointer.latest_step() is not None:
    target = {'step': np.asarray(state.step, np.int32), 'params': state.params, 'opt_state': state.opt_state}
    restored, data_state = checkpointer.restore(target)
    state = state.replace(step=restored['step'], params=restored['params'],
                          opt_state=restored['opt_state'])
    data.train.restore(data_state)
    print(f'resumed from step {int(state.step)} of {config.num_train_steps}', file=sys.stderr)
  return state


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming if it holds checkpoints). Returns the last eval."""
  os.makedirs(workdir, exist_ok=True)
  check_workdir(config, workdir)
  data = prepare_data(config, workdir)
  model_config = ModelConfig.from_config(config.model, data.tokenizer.vocab_size)
  if config.max_len > model_config.max_len:
    raise UserError(f'config.max_len={config.max_len} exceeds config.model.max_len='
                    f'{model_config.max_len}: raise config.model.max_len')
  ckpt.write_train_config(workdir, config)
  ckpt.write_model_config(workdir, model_config)
  checkpointer = ckpt.Checkpointer(workdir, config.keep_checkpoints)
  state = restore_or_init(config, model_config, checkpointer, data)
  start = int(state.step)
  state = jax_utils.replicate(state)
  p_train, p_eval = train_lib.pmapped_steps(Transformer(model_config), config)
  translator = Translator(model_config, jax.tree_util.tree_map(lambda x: x[0], state.params),
                          data.tokenizer, config.decode_batch_size)
  dropout_rng = jax_utils.replicate(jax.random.PRNGKey(config.seed + 1))
  monitor = Monitor(workdir, config.num_train_steps, start)
  monitor.message(f'{_count(state.params):,} parameters; padding efficiency (real tokens / '
                  f'slots) {data.fill:.3f}; {data.train.batches_per_epoch()} batches per epoch')
  last_eval = {}
  batches = prefetch(data.train)
  pending, last_log, data_state = [], (start, time.time()), data.train.state()
  for step in range(start, config.num_train_steps):
    batch, data_state, fill = next(batches)
    state, step_metrics = p_train(state, batch, dropout_rng)
    pending.append((step_metrics, fill))
    done = step + 1
    if done % config.log_every_steps == 0 or done == config.num_train_steps:
      last_log = log_train(config, monitor, pending, done, last_log)
      pending = []
    if done % config.eval_every_steps == 0 or done == config.num_train_steps:
      last_eval = evaluate(config, p_eval, translator, state, data)
      monitor.write(done, 'eval', last_eval)
      monitor.message(f'step {done}: ' + ', '.join(f'{k} {v:.4g}' for k, v in last_eval.items()))
    if done % config.checkpoint_every_steps == 0 or done == config.num_train_steps:
      save(checkpointer, state, data_state)
    if done % config.eval_every_steps == 0:
      last_log = (done, time.time())  # tokens/s counts training time only
    monitor.advance(1)
  checkpointer.wait()
  checkpointer.close()
  monitor.close()
  return last_eval


def log_train(config, monitor: Monitor, pending, step: int, last_log):
  """Sums the steps since the last log (one host sync here, none inside the loop)."""
  totals = None
  for step_metrics, _ in pending:
    sums = {k: float(v[0]) for k, v in step_metrics.items() if k != 'grad_norm'}
    totals = metrics_lib.add_sums(totals, sums)
  summary = metrics_lib.summarize(totals)
  last_step, last_time = last_log
  now = time.time()
  summary['tokens_per_sec'] = totals['tokens'] / max(now - last_time, 1e-9)
  summary['learning_rate'] = float(train_lib.learning_rate_schedule(config)(step - 1))
  summary['grad_norm'] = float(pending[-1][0]['grad_norm'][0])
  summary['fill'] = float(np.mean([f for _, f in pending]))
  monitor.write(step, 'train', summary)
  monitor.advance(0, {'loss': summary['loss'], 'lr': summary['learning_rate'],
                      'tok/s': summary['tokens_per_sec']})
  return step, now


def _count(params) -> int:
  return sum(int(np.prod(x.shape[1:])) for x in jax.tree_util.tree_leaves(params))
