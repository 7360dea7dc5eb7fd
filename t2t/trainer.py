"""The training loop: prepare data, build or resume the state, step, evaluate, checkpoint.

Rerunning the same command on the same workdir resumes from its latest checkpoint, with the
data iterator at the same position and the same dropout randomness, so an interrupted and
resumed run ends with the same parameters as an uninterrupted one.

Faults:
  SIGTERM/SIGINT   the current step finishes, a checkpoint is written and `Interrupted` is raised
                   (train.py exits 128 + signal number). On several processes JAX's preemption
                   service picks the step at which every host stops together (SIGTERM only).
  non-finite step  skipped in train_step; after config.max_consecutive_skips in a row the run
                   stops with a UserError, without saving (the last checkpoint stays the newest).
  damaged latest   restore falls back to the newest checkpoint that restores (see checkpoint.py).

`after_step` (optional, for tests): called after each step has run, before its logging and
checkpoint, with (step, checkpointer, stop requests); tests/paused_train.py uses it to stop a
run at a known point.
"""

import contextlib
import dataclasses
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable

import jax
import numpy as np
from jax.experimental import multihost_utils

from t2t import checkpoint as ckpt
from t2t import devices as devices_lib
from t2t import metrics as metrics_lib
from t2t import train_step
from t2t import workdir as wd
from t2t.config import ModelConfig, changed_fields
from t2t.config import validate as validate_config
from t2t.data import pipeline
from t2t.data.batching import TrainBatches, eval_batches, fill_fraction, filter_by_length, shard_for_devices
from t2t.data.sampling import SubwordSampler
from t2t.data.tokenizer import ByteTokenizer, Tokenizer
from t2t.errors import UserError
from t2t.flops import Speed
from t2t.inference import Translator
from t2t.lock import WorkdirLock, make_workdir
from t2t.model import Transformer, init_params
from t2t.monitor import Monitor
from t2t.search_options import SearchOptions

# Fields that must not change between the run that made a workdir and one resuming it.
FIXED_FIELDS = ('model.', 'vocab_size', 'tokenizer_path', 'tokenizer_type', 'max_len', 'data.source',
                'data.src_lang', 'data.tgt_lang', 'data.path', 'data.tfds_name')


@dataclasses.dataclass
class Data:
  tokenizer: Tokenizer | ByteTokenizer
  train: TrainBatches
  eval_examples: list      # encoded validation pairs
  eval_pairs: list         # validation text pairs (for BLEU)
  fill: float              # fraction of real tokens in this epoch's packed rows


def check_workdir(config, workdir: str) -> None:
  """Refuses to resume a workdir made with a different model, data or tokenizer."""
  saved = wd.read_train_config(workdir)
  if saved is None:
    return
  for field, old, new in changed_fields(saved, config):
    if field.startswith(FIXED_FIELDS):
      raise UserError(f'{wd.path(workdir, wd.TRAIN_CONFIG)}: config.{field} was '
                      f'{old!r}, now {new!r}; use a new --workdir or the same setting')


def prepare_data(config, workdir: str) -> Data:
  """Trains/loads the tokenizer, encodes the training split once (cached in the workdir),
  filters and packs; validation pairs are read and encoded in memory."""
  tokenizer = pipeline.get_tokenizer(config, workdir)
  check_tokenizer(workdir, tokenizer.path,
                  wd.BYTE_TOKENIZER if isinstance(tokenizer, ByteTokenizer) else wd.TOKENIZER_MODEL)
  all_train = pipeline.encoded_train_pairs(config, workdir, tokenizer)
  train, dropped = all_train.filter_by_length(config.max_len)
  if dropped:
    logging.warning('dropped %d of %d training pairs longer than config.max_len=%d tokens',
                    dropped, len(all_train), config.max_len)
  if not len(train):
    raise UserError(f'no training pair fits config.max_len={config.max_len}: raise it')
  eval_pairs = pipeline.load_pairs(config.data, config.data.eval_split)
  eval_examples, _ = filter_by_length(pipeline.encode_pairs(tokenizer, eval_pairs), config.max_len)
  sampler = None
  if config.get('spm_alpha', 0.0) > 0:
    assert isinstance(tokenizer, Tokenizer)  # config.validate refuses spm_alpha with the byte tokenizer
    sampler = SubwordSampler(tokenizer, config.spm_alpha, config.max_len, config.seed)
  batches = TrainBatches(train, config.batch_size, config.max_len, config.seed,
                         jax.process_index(), jax.process_count(), sampler=sampler)
  return Data(tokenizer, batches, eval_examples, eval_pairs, batches.epoch_fill())


def prefetch(batches: TrainBatches, size: int = 2):
  """Yields (device-sharded batch, iterator state after it), prepared in a background thread.

  An exception in the thread is raised here, in the training loop, with its own traceback.
  """
  q: queue.Queue = queue.Queue(maxsize=size)
  devices = jax.local_devices()

  def produce():
    try:
      for batch in batches:
        sharded = shard_for_devices(batch, len(devices))
        q.put((devices_lib.shard(sharded, devices), batches.state(), fill_fraction(batch)))
      raise RuntimeError('the training batches ended (TrainBatches is endless)')
    except BaseException as e:  # noqa: BLE001  (passed on to the consumer)
      q.put(e)

  threading.Thread(target=produce, daemon=True, name='t2t-prefetch').start()
  while True:
    item = q.get()
    if isinstance(item, BaseException):
      raise item
    yield item


def evaluate(config, p_eval, translator: Translator, state, data: Data) -> dict:
  """Validation loss/accuracy/perplexity on all of val, BLEU on its first sentences."""
  totals: dict | None = None
  for batch in eval_batches(data.eval_examples, config.batch_size, config.max_len):
    sums = p_eval(state.params, shard_for_devices(batch, jax.local_device_count()))
    totals = metrics_lib.add_sums(totals, jax.tree_util.tree_map(lambda x: float(x[0]), sums))
  assert totals is not None, 'the validation split is never empty here'
  results = metrics_lib.summarize(totals)
  pairs = data.eval_pairs[:config.eval_bleu_sentences or None]
  translator.set_params(state.params, replicated=True)
  hypotheses = translator.translate([s for s, _ in pairs], search_options(config))
  results['bleu'] = metrics_lib.corpus_scores(hypotheses, [t for _, t in pairs],
                                              metrics_lib.config_bleu_tokenize(config)).bleu
  return results


def search_options(config) -> SearchOptions:
  """The periodic validation BLEU's search: config.beam_size, config.alpha, config.decode_max_len_a/b."""
  return SearchOptions.from_config(config)


def save(checkpointer: ckpt.Checkpointer, state, data_state: dict) -> None:
  host_state = jax.device_get(devices_lib.unreplicate(state))
  checkpointer.save(int(host_state.step), {'step': np.asarray(host_state.step, np.int32), 'params': host_state.params,
                                           'opt_state': host_state.opt_state}, data_state)


def restore_or_init(config, model_config, checkpointer, data: Data):
  """A fresh TrainState, or the latest checkpoint's (and the data position with it)."""
  params = init_params(model_config, jax.random.PRNGKey(config.seed))
  state = train_step.create_state(Transformer(model_config), params, config)
  if checkpointer.latest_step() is not None:
    target = {'step': np.asarray(state.step, np.int32), 'params': state.params, 'opt_state': state.opt_state}
    _, restored, data_state = checkpointer.restore_latest_good(target)
    state = state.replace(step=restored['step'], params=restored['params'],
                          opt_state=restored['opt_state'])
    data.train.restore(data_state)
    print(f'resumed from step {int(state.step)} of {config.num_train_steps}', file=sys.stderr)
  return state


class Interrupted(Exception):
  """Training stopped early on a signal, after saving a checkpoint at `step`."""

  def __init__(self, signum: int, step: int, directory: str):
    self.signum, self.step = signum, step
    super().__init__(f'stopped by {signal.Signals(signum).name} after step {step}: checkpoint '
                     f'saved in {directory}; rerun the same command to resume')


class StopRequests:
  """Notes SIGTERM/SIGINT so the loop can finish its step, checkpoint and stop.

  One process: Python handlers; a second signal of the same kind acts as usual (kills).
  Several processes: JAX's preemption service (which owns SIGTERM once jax.distributed is up)
  tells every host the same step at which to stop, so their collectives stay matched.
  """

  def __init__(self):
    self.signum = None
    self._previous = {}
    self._multihost = jax.process_count() > 1

  def __enter__(self):
    if not self._multihost and threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGTERM, signal.SIGINT):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def _handle(self, signum, frame):
    del frame
    self.signum = signum
    signal.signal(signum, self._previous[signum])

  def requested(self, step: int) -> bool:
    if self._multihost and self.signum is None and multihost_utils.reached_preemption_sync_point(step):
      self.signum = signal.SIGTERM
    return self.signum is not None


def check_skips(config, state, step: int, checkpointer: ckpt.Checkpointer) -> None:
  """Stops the run after config.max_consecutive_skips non-finite steps in a row (one host sync)."""
  skips = int(state.consecutive_skips[0])
  if skips >= config.max_consecutive_skips:
    raise UserError(
        f'steps {step - skips + 1}-{step} all had a non-finite loss or gradients and were skipped '
        f'(config.max_consecutive_skips={config.max_consecutive_skips}); stopped without saving, '
        f'the newest checkpoint is step {checkpointer.latest_step()}: lower config.learning_rate '
        f'or raise config.warmup_steps, then rerun')


def check_tokenizer(workdir: str, tokenizer_path: str, name: str = wd.TOKENIZER_MODEL) -> None:
  """Refuses a workdir whose tokenizer file differs from the one its checkpoints were trained with.

  name: the workdir's tokenizer file (spm.model, or bytes.json), whose <name>.sha256 records it.
  """
  digest = wd.file_sha256(tokenizer_path)
  saved = wd.read_tokenizer_hash(workdir, name)
  if saved is None:
    wd.write_tokenizer_hash(workdir, digest, name)
  elif saved != digest:
    raise UserError(f'{tokenizer_path} has SHA-256 {digest[:16]}... but this workdir was trained with '
                    f'{saved[:16]}... ({wd.path(workdir, name + ".sha256")}): put the original '
                    f'tokenizer back or use a new --workdir')


AfterStep = Callable[[int, ckpt.Checkpointer, StopRequests], None]


def train_and_evaluate(config, workdir: str, after_step: AfterStep | None = None) -> dict:
  """Trains `config` in `workdir` (resuming if it holds checkpoints). Returns the last eval.

  Every config field and search setting is checked before anything is written; a second run on
  the same workdir is refused while this one holds its lock (t2t/lock.py).
  after_step: called after every step (see the module docstring); None in production.
  """
  validate_config(config, jax.device_count())
  search_options(config)  # an impossible search setting stops the run before any work
  if config.final_eval:
    from t2t import final_eval
    final_eval.search_options(config)
  metrics_lib.config_bleu_tokenize(config)  # an unusable BLEU tokenizer fails now, not at the first eval
  make_workdir(workdir)
  with WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
    return _train_and_evaluate(config, workdir, after_step)


def _train_and_evaluate(config, workdir: str, after_step: AfterStep | None) -> dict:
  started = time.time()
  check_workdir(config, workdir)
  data = prepare_data(config, workdir)
  model_config = ModelConfig.from_config(config.model, data.tokenizer.vocab_size)
  wd.write_train_config(workdir, config)
  wd.write_model_config(workdir, model_config)
  checkpointer = ckpt.Checkpointer(workdir, config.keep_checkpoints)
  best = Best(workdir) if config.keep_best else None
  try:
    with StopRequests() as stop:
      last_eval = _train(config, model_config, workdir, data, checkpointer, stop, best, after_step)
  finally:
    savers: tuple[ckpt.Checkpointer | None, ...] = (checkpointer, best.checkpointer if best else None)
    for saver in savers:
      if saver is not None:
        saver.wait()  # an async write in flight completes, whatever stopped the run
        saver.close()
  print(f'training wall time {time.time() - started:.0f} s (this invocation, data preparation '
        f'included; evaluation after it not included)', file=sys.stderr)
  if config.final_eval and jax.process_index() == 0:
    from t2t import final_eval
    final_eval.run(config, workdir)
  return last_eval


class Best:
  """Keeps the checkpoint with the highest validation BLEU in <workdir>/best (one step)."""

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.checkpointer = ckpt.Checkpointer(workdir, keep=1, folder=wd.BEST_FOLDER)
    saved = wd.read_best(workdir)
    self.bleu = saved['bleu'] if saved else float('-inf')

  def offer(self, state, data_state: dict, step: int, bleu: float, monitor: Monitor) -> None:
    if bleu <= self.bleu:
      return
    self.bleu = bleu
    save(self.checkpointer, state, data_state)
    self.checkpointer.wait()  # best.json never names a step that is not on disk
    wd.write_best(self.workdir, step, bleu)
    monitor.message(f'step {step}: best validation BLEU so far ({bleu:.2f}), kept in '
                    f'{self.checkpointer.step_path(step)}')


def _train(config, model_config, workdir, data, checkpointer, stop: StopRequests, best,
           after_step: AfterStep | None = None) -> dict:
  state = restore_or_init(config, model_config, checkpointer, data)
  start = int(state.step)
  state = devices_lib.replicate(state)
  p_train, p_eval = train_step.pmapped_steps(Transformer(model_config), config)
  translator = Translator(model_config, devices_lib.unreplicate(state.params),
                          data.tokenizer, config.decode_batch_size)
  dropout_rng = devices_lib.replicate(jax.random.PRNGKey(config.seed + 1))
  monitor = Monitor(workdir, config.num_train_steps, start)
  device_kind = jax.devices()[0].device_kind
  speed = Speed.for_training(config, model_config, device_kind, jax.device_count())
  monitor.message(f'{_count(state.params):,} parameters; padding efficiency (real tokens / '
                  f'slots) {data.fill:.3f}; {data.train.batches_per_epoch()} batches per epoch; '
                  + speed.describe(device_kind))
  last_eval = {}
  batches = prefetch(data.train)
  pending, last_log, data_state = [], (start, time.time()), data.train.state()
  try:
    for step in range(start, config.num_train_steps):
      batch, data_state, fill = next(batches)
      state, step_metrics = p_train(state, batch, dropout_rng)
      pending.append((step_metrics, fill))
      done = step + 1
      if after_step is not None:
        after_step(done, checkpointer, stop)
      interrupted = stop.requested(done)
      last = done == config.num_train_steps
      if done % config.log_every_steps == 0 or last or interrupted:
        last_log = log_train(config, monitor, pending, done, last_log, speed)
        pending = []
        check_skips(config, state, done, checkpointer)
      if done % config.eval_every_steps == 0 or last:
        last_eval = evaluate(config, p_eval, translator, state, data)
        monitor.write(done, 'eval', last_eval)
        monitor.message(f'step {done}: ' + ', '.join(f'{k} {v:.4g}' for k, v in last_eval.items()))
        if best is not None:
          best.offer(state, data_state, done, last_eval['bleu'], monitor)
      if done % config.checkpoint_every_steps == 0 or last or interrupted:
        check_skips(config, state, done, checkpointer)  # a failed run is never saved
        save(checkpointer, state, data_state)
      if interrupted:
        checkpointer.wait()
        raise Interrupted(stop.signum, done, checkpointer.step_path(done))
      if done % config.eval_every_steps == 0:
        last_log = (done, time.time())  # tokens/s counts training time only
      monitor.advance(1)
  finally:
    monitor.close()
  return last_eval


def log_train(config, monitor: Monitor, pending, step: int, last_log, speed: Speed):
  """Sums the steps since the last log (one host sync here, none inside the loop); step time,
  achieved model FLOP/s and MFU (`speed`) over the training time since then."""
  totals, skipped = None, 0
  for step_metrics, _ in pending:
    sums = {k: float(v[0]) for k, v in step_metrics.items() if k not in ('grad_norm', 'skipped')}
    if step_metrics['skipped'][0]:
      skipped += 1  # its loss is not finite: leave it out of the means
    else:
      totals = metrics_lib.add_sums(totals, sums)
  summary = metrics_lib.summarize(totals) if totals else {'loss': float('nan')}
  last_step, last_time = last_log
  now = time.time()
  summary['tokens_per_sec'] = (totals['tokens'] if totals else 0.0) / max(now - last_time, 1e-9)
  summary.update(speed.summary(step - last_step, now - last_time))
  summary['learning_rate'] = float(train_step.learning_rate_schedule(config)(step - 1))
  summary['grad_norm'] = float(pending[-1][0]['grad_norm'][0])
  summary['fill'] = float(np.mean([f for _, f in pending]))
  summary['skipped'] = skipped
  if skipped:
    monitor.message(f'step {step}: skipped {skipped} of the last {len(pending)} steps '
                    '(non-finite loss or gradients)')
  monitor.write(step, 'train', summary)
  monitor.advance(0, {'loss': summary['loss'], 'lr': summary['learning_rate'],
                      'tok/s': summary['tokens_per_sec'], 'ms/step': 1e3 * summary['step_time'],
                      **({'mfu': summary['mfu']} if 'mfu' in summary else {})})
  return step, now


def _count(params) -> int:
  return sum(int(np.prod(x.shape[1:])) for x in jax.tree_util.tree_leaves(params))
