"""Training state, optimizer, schedule, loss and the pure step functions.

`train_step` and `eval_step` are module-level and pure: constants (the model, label
smoothing) are bound with functools.partial before jax.pmap(axis_name=AXIS) (t2t.devices owns the name).

Glossary: B rows per device, T target length, V vocabulary, P devices.
Metrics are returned as sums over every device (psum), so the host divides once.

A step whose loss, gradients or update are not all finite is skipped: params and
opt_state stay as they were (so the optimizer's own count and the learning-rate schedule do
not advance), but `state.step` still counts it, because a step is one batch consumed: the data
position and the dropout randomness of later steps stay those of an uninterrupted run.
`state.consecutive_skips` counts skipped steps in a row on the device; the trainer reads it
when it logs (no extra host sync) and stops the run after config.max_consecutive_skips.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from t2t.data.batch import Batch
from t2t.devices import AXIS
from t2t.errors import UserError
from t2t.model import Transformer


class TrainState(train_state.TrainState):
  """step, params, opt_state (and the static apply_fn/tx); dropout rng lives outside.

  consecutive_skips: int32 scalar, steps skipped in a row for non-finite values (not saved in
  checkpoints: a checkpoint never holds a skipped update, so a restored run starts at 0).
  """
  consecutive_skips: jax.Array = dataclasses.field(default_factory=lambda: jnp.zeros((), jnp.int32))


def learning_rate_schedule(config):
  """Linear warm-up to `learning_rate`, then decay.

  config.lr_schedule 'rsqrt': with the inverse square root of the step; 'cosine': half a cosine
  from the peak to 0 at config.num_train_steps.
  """
  peak, warmup = config.learning_rate, max(config.warmup_steps, 1)
  if config.lr_schedule not in ('rsqrt', 'cosine'):
    raise UserError(f"config.lr_schedule={config.lr_schedule!r}: use 'rsqrt' or 'cosine'")
  decay_steps = max(config.num_train_steps - warmup, 1)

  def schedule(step):
    step = jnp.maximum(step + 1, 1).astype(jnp.float32)  # step 0 trains at peak / warmup, not 0
    if config.lr_schedule == 'rsqrt':
      return peak * jnp.minimum(step / warmup, jnp.sqrt(warmup / step))
    progress = jnp.clip((step - warmup) / decay_steps, 0.0, 1.0)
    return peak * jnp.minimum(step / warmup, 0.5 * (1.0 + jnp.cos(jnp.pi * progress)))
  return schedule


def decays(path, value) -> bool:
  """Whether weight decay applies to one parameter: matrices only (nanoGPT's dim >= 2 rule).

  Not decayed: LayerNorm scales and biases (also the per-head biases, [3, H, D/H], which are
  not matrices though they have 2+ dimensions), and the embedding tables (token and learned
  positions). Embeddings are left alone on purpose: decoupled decay shrinks every row at every
  step while a token's row gets a gradient only when that token is in the batch, so rare
  tokens would drift to zero; the table is also the tied output layer, scaled by sqrt(D) on input.
  """
  return value.ndim >= 2 and path[-1].key not in ('bias', 'embedding')


def decay_mask(params):
  """A tree of bools like `params`: True where weight decay applies (`decays`)."""
  return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(config) -> optax.GradientTransformation:
  """AdamW with gradient clipping, warm-up/rsqrt schedule and optional accumulation.

  config.weight_decay (decoupled, times the learning rate) applies to matrices only (`decays`);
  at 0 no mask is built, so the optimizer and its state are exactly what they were before.
  """
  tx = optax.chain(
      optax.clip_by_global_norm(config.grad_clip_norm) if config.grad_clip_norm > 0 else optax.identity(),
      optax.adamw(learning_rate_schedule(config), b1=config.adam_b1, b2=config.adam_b2,
                  eps=config.adam_eps, weight_decay=config.weight_decay,
                  mask=decay_mask if config.weight_decay > 0 else None))
  if config.grad_accum_steps > 1:
    tx = optax.MultiSteps(tx, every_k_schedule=config.grad_accum_steps)
  return tx


def create_state(model: Transformer, params, config) -> TrainState:
  return TrainState.create(apply_fn=model.apply, params=params, tx=make_optimizer(config))


def cross_entropy_sums(logits, labels, weights, label_smoothing: float):
  """Label-smoothed cross-entropy, summed, without building a [B, T, V] one-hot target.

  The smoothed target puts 1 - eps on the label and eps spread uniformly over V, so
  -sum_v q_v log p_v = (1 - eps) * nll + eps * (logsumexp - mean(logits)).

  Args:
    logits: float32 [B, T, V]; labels: int [B, T]; weights: float [B, T] (0 for padding).
  Returns:
    dict of scalar sums: loss (smoothed), nll, correct, tokens.
  """
  log_z = jax.nn.logsumexp(logits, axis=-1)  # [B, T]
  label_logit = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]  # [B, T]
  nll = log_z - label_logit
  uniform = log_z - jnp.mean(logits, axis=-1)  # cross-entropy against the uniform distribution
  loss = (1.0 - label_smoothing) * nll + label_smoothing * uniform
  correct = (jnp.argmax(logits, axis=-1) == labels)
  return {'loss': jnp.sum(loss * weights), 'nll': jnp.sum(nll * weights),
          'correct': jnp.sum(correct * weights), 'tokens': jnp.sum(weights)}


def symmetric_kl_sum(logits_a, logits_b, weights):
  """sum over tokens of (KL(p_a || p_b) + KL(p_b || p_a)) / 2, R-Drop's regulariser (Liang et al., 2021).

  Args:
    logits_a, logits_b: float32 [B, T, V], two dropout passes over the same batch.
    weights: float [B, T] (0 for padding).
  Returns:
    A scalar; exactly 0 when the two passes are identical.
  """
  log_p = jax.nn.log_softmax(logits_a, axis=-1)  # [B, T, V]
  log_q = jax.nn.log_softmax(logits_b, axis=-1)
  # KL(p||q) + KL(q||p) = sum_v (p - q)(log p - log q): one term, 0 wherever the passes agree.
  per_token = jnp.sum((jnp.exp(log_p) - jnp.exp(log_q)) * (log_p - log_q), axis=-1)  # [B, T]
  return 0.5 * jnp.sum(per_token * weights)


def _logits(params, batch: Batch, apply_fn, deterministic, rngs=None):
  return apply_fn({'params': params}, batch.src, batch.src_pos, batch.src_seg, batch.tgt_in,
                  batch.tgt_pos, batch.tgt_seg, deterministic=deterministic, rngs=rngs)


def train_step(state: TrainState, batch: Batch, dropout_rng, *, label_smoothing: float,
               rdrop_alpha: float = 0.0):
  """One optimizer update on one device's share of the global batch (runs inside pmap).

  The loss is this device's sum divided by the global token count, and gradients are summed
  over devices, so P devices compute exactly what 1 device would on the whole batch.

  rdrop_alpha > 0 (R-Drop): a second forward pass with other dropout masks; the loss is the
  mean of the two passes' cross-entropies plus rdrop_alpha times their symmetric KL
  (`symmetric_kl_sum`), and the metrics gain `kl`. The first pass draws the masks a run
  with rdrop_alpha = 0 draws; at 0 the step is exactly the plain one (no second pass traced).

  Args:
    state: replicated TrainState.
    batch: Batch of [B, L] arrays (this device's rows).
    dropout_rng: a key shared by all devices; it is folded with the step and device index,
      so a resumed run draws the same dropout masks.
  Returns:
    (new state, metric sums over all devices).
  """
  rng = jax.random.fold_in(jax.random.fold_in(dropout_rng, state.step), jax.lax.axis_index(AXIS))
  weights = (batch.tgt_seg > 0).astype(jnp.float32)
  global_tokens = jnp.maximum(jax.lax.psum(jnp.sum(weights), AXIS), 1.0)

  def loss_fn(params):
    logits = _logits(params, batch, state.apply_fn, False, {'dropout': rng})
    sums = cross_entropy_sums(logits, batch.tgt_out, weights, label_smoothing)
    if not rdrop_alpha:
      return sums['loss'] / global_tokens, sums
    other = _logits(params, batch, state.apply_fn, False, {'dropout': jax.random.fold_in(rng, 1)})
    other_loss = cross_entropy_sums(other, batch.tgt_out, weights, label_smoothing)['loss']
    kl = symmetric_kl_sum(logits, other, weights)
    loss = 0.5 * (sums['loss'] + other_loss) + rdrop_alpha * kl
    return loss / global_tokens, {**sums, 'loss': loss, 'kl': kl}

  grads, sums = jax.grad(loss_fn, has_aux=True)(state.params)
  grads = jax.lax.psum(grads, AXIS)
  metrics = jax.lax.psum(sums, AXIS)
  metrics['grad_norm'] = optax.tree.norm(grads)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  # Norms are NaN or inf as soon as one element is; after the psums every device sees the same
  # values, so all devices take the same branch. Checking the update too catches a finite
  # gradient that the optimizer turns into an infinite step.
  finite = (jnp.isfinite(metrics['loss']) & jnp.isfinite(metrics['grad_norm'])
            & jnp.isfinite(optax.tree.norm(updates)))
  metrics['skipped'] = 1.0 - finite.astype(jnp.float32)
  return apply_if_finite(finite, state, updates, opt_state), metrics


def apply_if_finite(finite, state: TrainState, updates, opt_state) -> TrainState:
  """The updated state if `finite`; else `state` with only the step counted (module docstring).

  jnp.where rather than lax.cond: both sides are already computed, and a select keeps one
  program on every device.
  """
  keep = lambda new, old: jnp.where(finite, new, old)
  return state.replace(
      step=state.step + 1,
      params=jax.tree_util.tree_map(keep, optax.apply_updates(state.params, updates), state.params),
      opt_state=jax.tree_util.tree_map(keep, opt_state, state.opt_state),
      consecutive_skips=jnp.where(finite, 0, state.consecutive_skips + 1).astype(jnp.int32))


def eval_step(params, batch: Batch, *, apply_fn):
  """Metric sums (loss without smoothing, nll, correct, tokens) over all devices."""
  weights = (batch.tgt_seg > 0).astype(jnp.float32)
  logits = _logits(params, batch, apply_fn, True)
  return jax.lax.psum(cross_entropy_sums(logits, batch.tgt_out, weights, 0.0), AXIS)


def pmapped_steps(model: Transformer, config):
  """(p_train_step, p_eval_step), compiled once and reused for the whole run."""
  p_train = jax.pmap(functools.partial(train_step, label_smoothing=config.label_smoothing,
                                       rdrop_alpha=config.get('rdrop_alpha', 0.0)),
                     axis_name=AXIS, donate_argnums=(0,))
  p_eval = jax.pmap(functools.partial(eval_step, apply_fn=model.apply), axis_name=AXIS)
  return p_train, p_eval
