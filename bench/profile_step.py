"""Where a training step's time goes: the step taken apart and timed piece by piece.

  python bench/profile_step.py [--config configs/small.py] [--steps 10]

On one device, same packed batch as bench/train_speed.py, each row a separately jitted program
(median of timed runs after warm-up):
  full step           the pmapped train step as training runs it (dropout as in the config)
  full, no dropout    the same with every dropout rate 0
  forward+backward    the gradient only (dropout on), no optimizer
  forward             the loss only, deterministic
  optimizer           clipping + AdamW update + apply on gradients of the parameters' shapes
  matmul floor (XLA)  every GEMM of one training step (forward and both backward products of
                      each projection, FFN, attention and logits matmul), with the step's exact
                      shapes, in one jitted program and nothing else
  matmul floor (MKL)  the same GEMM list through PyTorch (oneDNN/MKL), if torch is installed
The gap between "full step" and "matmul floor (XLA)" is what is not matmul (softmax, layer norm,
dropout masks, the loss, the optimizer, memory traffic); the gap between the two floors is what
XLA's CPU dot leaves behind MKL's on the same shapes.
"""

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402
from bench.train_speed import time_t2t  # noqa: E402
from t2t import train_step  # noqa: E402
from t2t.config import ModelConfig  # noqa: E402
from t2t.flops import train_flops_per_step  # noqa: E402
from t2t.model import Transformer, init_params  # noqa: E402


def timed(fn, *args, steps: int, warmup: int = 2) -> float:
  """Median seconds of fn(*args) (blocked until ready)."""
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def step_gemms(m: ModelConfig, rows: int, length: int) -> list[tuple[int, int, int, int]]:
  """(batch, M, K, N) of every matmul in one training step: forward C = A B, backward dA, dB."""
  tokens, d, f, v, h = rows * length, m.d_model, m.d_ff, m.vocab_size, m.num_heads
  hd = d // h
  dense = []  # (M, K, N) forward projections
  for _ in range(m.num_encoder_layers):
    dense += [(tokens, d, 3 * d), (tokens, d, d), (tokens, d, f), (tokens, f, d)]
  for _ in range(m.num_decoder_layers):
    dense += [(tokens, d, 3 * d), (tokens, d, d), (tokens, d, d), (tokens, d, 2 * d), (tokens, d, d),
              (tokens, d, f), (tokens, f, d)]
  dense.append((tokens, d, v))
  attention = [(rows * h, length, hd, length), (rows * h, length, length, hd)]  # scores, values
  batched = attention * (m.num_encoder_layers + 2 * m.num_decoder_layers)
  gemms = []
  for mm, k, n in dense:
    gemms += [(1, mm, k, n), (1, mm, n, k), (1, k, mm, n)]  # C = AB, dA = dC B^T, dB = A^T dC
  for b, mm, k, n in batched:
    gemms += [(b, mm, k, n), (b, mm, n, k), (b, k, mm, n)]
  return gemms


def xla_floor(gemms, steps: int) -> float:
  rng = np.random.default_rng(0)
  operands = [(jnp.asarray(rng.standard_normal((b, mm, k)), jnp.float32),
               jnp.asarray(rng.standard_normal((b, k, n)), jnp.float32)) for b, mm, k, n in gemms]
  run = jax.jit(lambda ops: [jnp.matmul(a, b) for a, b in ops])
  return timed(run, operands, steps=steps)


def mkl_floor(gemms, steps: int) -> float | None:
  try:
    import torch
  except ImportError:
    return None
  torch.manual_seed(0)
  operands = [(torch.randn(b, mm, k), torch.randn(b, k, n)) for b, mm, k, n in gemms]
  run = lambda: [torch.matmul(a, b) for a, b in operands]
  for _ in range(2):
    run()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default='configs/small.py')
  parser.add_argument('--steps', type=int, default=10, help='timed runs of each row (median)')
  parser.add_argument('--workdir', default=None, help='reuse this folder for the tokenizer')
  args = parser.parse_args()

  config, batch, model_config, _ = common.setup(args.config, args.workdir, 't2t_profile_')
  rows, length = batch.src.shape
  flops = train_flops_per_step(model_config, rows, length)
  device_batch = jax.tree_util.tree_map(jnp.asarray, batch)
  rng = jax.random.PRNGKey(1)
  model = Transformer(model_config)
  state = train_step.create_state(model, init_params(model_config, jax.random.PRNGKey(0)), config)
  rows_out = []
  full = statistics.median(time_t2t(config, model_config, batch, args.steps, 2)[1])
  rows_out.append(('full step', full))
  quiet = ModelConfig(**{**model_config.__dict__, 'dropout': 0.0, 'attention_dropout': 0.0,
                         'activation_dropout': 0.0})
  rows_out.append(('full, no dropout', statistics.median(time_t2t(config, quiet, batch, args.steps, 2)[1])))

  weights = (device_batch.tgt_seg > 0).astype(jnp.float32)

  def loss(params, deterministic, r):
    logits = train_step._logits(params, device_batch, model.apply, deterministic, {'dropout': r} if r is not None else None)
    return train_step.cross_entropy_sums(logits, device_batch.tgt_out, weights, config.label_smoothing)['loss']

  grad = jax.jit(lambda p, r: jax.grad(loss)(p, False, r))
  rows_out.append(('forward+backward', timed(grad, state.params, rng, steps=args.steps)))
  forward = jax.jit(lambda p: loss(p, True, None))
  rows_out.append(('forward', timed(forward, state.params, steps=args.steps)))

  tx = train_step.make_optimizer(config)
  grads = jax.tree_util.tree_map(lambda x: jnp.full_like(x, 1e-3), state.params)

  @jax.jit
  def optimizer(params, opt_state, grads):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
  rows_out.append(('optimizer', timed(optimizer, state.params, state.opt_state, grads, steps=args.steps)))

  gemms = step_gemms(model_config, rows, length)
  gemm_flops = sum(2.0 * b * mm * k * n for b, mm, k, n in gemms)
  rows_out.append(('matmul floor (XLA)', xla_floor(gemms, args.steps)))
  mkl = mkl_floor(gemms, args.steps)
  if mkl is not None:
    rows_out.append(('matmul floor (MKL)', mkl))

  print(f'machine: {common.machine()}; jax {jax.__version__}, one {jax.devices()[0].platform} device')
  print(f'config {args.config}: batch {rows} x {length}; model FLOPs per step {flops / 1e9:.1f} G '
        f'(t2t/flops.py count); the {len(gemms)} GEMMs below: {gemm_flops / 1e9:.1f} G')
  print(f'\n{"part":<22}{"ms":>9}{"of full step":>14}{"GFLOP/s (model)":>17}')
  for name, seconds in rows_out:
    print(f'{name:<22}{seconds * 1e3:>9.1f}{seconds / full:>14.2f}{flops / seconds / 1e9:>17.1f}')
  xla = dict(rows_out)['matmul floor (XLA)']
  print(f'\nnot matmul: {(full - xla) * 1e3:.0f} ms ({(full - xla) / full:.0%} of the step); '
        f'dropout: {(full - dict(rows_out)["full, no dropout"]) * 1e3:.0f} ms; GEMM rate XLA '
        f'{gemm_flops / xla / 1e9:.1f} GFLOP/s' + (f', MKL {gemm_flops / mkl / 1e9:.1f} GFLOP/s' if mkl else ''))
  print(f'profile step_ms={full * 1e3:.1f} matmul_xla_ms={xla * 1e3:.1f}'
        + (f' matmul_mkl_ms={mkl * 1e3:.1f}' if mkl else ''))


if __name__ == '__main__':
  main()
