"""Training throughput: t2t's train step vs a PyTorch reference of identical shape, same batch.

  python bench/train_speed.py [--config configs/small.py] [--steps 20] [--skip_torch]

Both sides train the same model shape (D, layers, heads, FFN, vocabulary, tied embeddings),
on the same packed batch (block-diagonal attention masks from segment ids), with AdamW,
gradient clipping and label smoothing. Model FLOPs are counted from the matmuls (forward x 3
for training; t2t/flops.py, the count the trainer logs) and MFU is taken against this machine's
float32 matmul peak, measured in the same run. The last line is:

  train tokens/s t2t=<x> torch=<y> ratio=<x/y> mfu=<m>
"""

import argparse
import os
import statistics
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common  # noqa: E402
from t2t import train_step  # noqa: E402
from t2t.data.batching import shard_for_devices  # noqa: E402
from t2t.devices import replicate, shard  # noqa: E402
from t2t.flops import train_flops_per_step  # noqa: E402
from t2t.model import Transformer, init_params  # noqa: E402


def time_t2t(config, model_config, batch, steps: int, warmup: int):
  """(compile seconds, step times) of the pmapped train step on the local devices."""
  model = Transformer(model_config)
  state = train_step.create_state(model, init_params(model_config, jax.random.PRNGKey(0)), config)
  devices = jax.local_devices()
  p_train, _ = train_step.pmapped_steps(model, config)
  state = replicate(state, devices)
  sharded = shard(shard_for_devices(batch, len(devices)), devices)
  rng = replicate(jax.random.PRNGKey(1), devices)
  start = time.perf_counter()
  state, metrics = p_train(state, sharded, rng)
  jax.block_until_ready(metrics)
  compile_seconds = time.perf_counter() - start
  times = []
  for i in range(warmup + steps):
    start = time.perf_counter()
    state, metrics = p_train(state, sharded, rng)
    jax.block_until_ready(metrics)
    if i >= warmup:
      times.append(time.perf_counter() - start)
  return compile_seconds, times, float(metrics['loss'][0] / metrics['tokens'][0])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default='configs/small.py')
  parser.add_argument('--steps', type=int, default=20, help='timed steps (median reported)')
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--workdir', default=None, help='reuse this folder for the tokenizer')
  parser.add_argument('--skip_torch', action='store_true')
  args = parser.parse_args()

  config, batch, model_config, fill = common.setup(args.config, args.workdir, 't2t_bench_')
  rows, length = batch.src.shape
  target_tokens = int((batch.tgt_seg > 0).sum())
  flops = train_flops_per_step(model_config, rows, length)
  peak = common.matmul_peak()

  print(f'machine: {common.machine()}; jax {jax.__version__} on {jax.local_device_count()} '
        f'{jax.devices()[0].platform} device(s)')
  print(f'config {args.config}: D {model_config.d_model}, layers {model_config.num_encoder_layers}+'
        f'{model_config.num_decoder_layers}, heads {model_config.num_heads}, FFN {model_config.d_ff}, '
        f'V {model_config.vocab_size}, tied {model_config.tie_embeddings}; batch {rows} x {length}, '
        f'{target_tokens} real target tokens')
  print(f'padding efficiency (real tokens / slots, one epoch of {config.data.source} training data): {fill:.3f}')
  print(f'model FLOPs per step {flops / 1e9:.1f} GFLOP; float32 matmul peak {peak / 1e9:.1f} GFLOP/s')

  compile_seconds, times, loss = time_t2t(config, model_config, batch, args.steps, args.warmup)
  t2t_step = statistics.median(times)
  rows_out = [('t2t (jax)', t2t_step, compile_seconds, loss)]
  torch_step = None
  if not args.skip_torch:
    from bench import torch_reference
    torch_step, torch_loss = torch_reference.time_steps(model_config, config, batch, args.steps, args.warmup)
    rows_out.append(('torch', torch_step, 0.0, torch_loss))

  print(f'\n{"framework":<12}{"step ms":>10}{"tokens/s":>12}{"GFLOP/s":>10}{"MFU":>7}{"compile s":>11}{"loss":>8}')
  for name, step, compiled, first_loss in rows_out:
    print(f'{name:<12}{step * 1e3:>10.1f}{target_tokens / step:>12.0f}{flops / step / 1e9:>10.1f}'
          f'{flops / step / peak:>7.2f}{compiled:>11.1f}{first_loss:>8.3f}')
  t2t_rate = target_tokens / t2t_step
  torch_rate = target_tokens / torch_step if torch_step else float('nan')
  print(f'train tokens/s t2t={t2t_rate:.0f} torch={torch_rate:.0f} ratio={t2t_rate / torch_rate:.2f} '
        f'mfu={flops / t2t_step / peak:.3f}')


if __name__ == '__main__':
  main()
