"""Training throughput: t2t's train step vs a PyTorch reference of identical shape, same batch.

  python bench/train_speed.py [--config configs/small.py] [--steps 20] [--skip_torch]
      [--dtype bfloat16] [--batch_tokens 25000 --synthetic] [--peak_flops 989e12] [--json F]

Both sides train the same model shape (D, layers, heads, FFN, vocabulary, tied embeddings),
on the same packed batch (block-diagonal attention masks from segment ids), with AdamW,
gradient clipping and label smoothing. Model FLOPs are counted from the matmuls (forward x 3
for training; t2t/flops.py, the count the trainer logs) and MFU is taken against --peak_flops, else
the device kind's dense bfloat16 peak (t2t/flops.py: H100 and H200 989e12), else (a CPU) this
machine's float32 matmul rate measured in the same run. --dtype bfloat16 computes in bfloat16 in
t2t (params float32) and under torch.autocast(bfloat16) in the reference. --batch_tokens sets the
rows to batch_tokens // max_len; --synthetic packs random tokens instead of reading the config's
data (configs/base.py and big.py read WMT14 from TFDS). The last line is:

  train tokens/s t2t=<x> torch=<y> ratio=<x/y> mfu=<m>
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
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


def parser():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', default='configs/small.py')
  parser.add_argument('--steps', type=int, default=20, help='timed steps (median reported)')
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--workdir', default=None, help='reuse this folder for the tokenizer')
  parser.add_argument('--skip_torch', action='store_true')
  parser.add_argument('--dtype', default=None, choices=('float32', 'bfloat16'), help="default: the config's")
  parser.add_argument('--batch_tokens', type=int, default=0, help='rows = this // max_len (0: the config)')
  parser.add_argument('--synthetic', action='store_true', help='random packed tokens, not the config data')
  parser.add_argument('--peak_flops', type=float, default=0.0, help='one device peak FLOP/s (0: by kind)')
  parser.add_argument('--json', default=None, help='also write the figures to this file')
  return parser


def load(args):
  """(config, batch, ModelConfig, padding efficiency) as the flags ask."""
  config = common.load_config(args.config)
  if args.batch_tokens:
    config.batch_size = max(1, args.batch_tokens // config.max_len)
  if args.dtype:
    config.model.dtype = args.dtype
  if args.synthetic:
    from t2t.config import ModelConfig
    batch = common.synthetic_batch(config.batch_size, config.max_len, config.vocab_size)
    fill = float((batch.tgt_seg > 0).mean())
    return config, batch, ModelConfig.from_config(config.model, config.vocab_size), fill
  if args.workdir is None:
    args.workdir = tempfile.mkdtemp(prefix='t2t_bench_')
  batch, tokenizer, fill = common.real_batch(config, args.workdir)
  from t2t.config import ModelConfig
  return config, batch, ModelConfig.from_config(config.model, tokenizer.vocab_size), fill


def measure(args) -> dict:
  """Prints the table and returns its figures (for --json and bench/gpu_suite.py)."""
  config, batch, model_config, fill = load(args)
  rows, length = batch.src.shape
  target_tokens = int((batch.tgt_seg > 0).sum())
  flops = train_flops_per_step(model_config, rows, length)
  peak, peak_source = common.peak_flops(args.peak_flops)
  peak *= jax.local_device_count()

  print(f'machine: {common.machine()}; jax {jax.__version__} on {jax.local_device_count()} '
        f'{jax.devices()[0].platform} device(s)')
  print(f'config {args.config}: D {model_config.d_model}, layers {model_config.num_encoder_layers}+'
        f'{model_config.num_decoder_layers}, heads {model_config.num_heads}, FFN {model_config.d_ff}, '
        f'V {model_config.vocab_size}, tied {model_config.tie_embeddings}; batch {rows} x {length}, '
        f'{target_tokens} real target tokens')
  print(f'padding efficiency (real tokens / slots, one epoch of {config.data.source} training data): {fill:.3f}')
  print(f'model FLOPs per step {flops / 1e9:.1f} GFLOP; dtype {model_config.dtype}; '
        f'peak {peak / 1e9:.1f} GFLOP/s ({peak_source}, all devices)')

  compile_seconds, times, loss = time_t2t(config, model_config, batch, args.steps, args.warmup)
  t2t_step = statistics.median(times)
  rows_out = [('t2t (jax)', t2t_step, compile_seconds, loss)]
  torch_step = None
  if not args.skip_torch:
    from bench import torch_reference
    torch_step, torch_loss = torch_reference.time_steps(model_config, config, batch, args.steps, args.warmup,
                                                        bfloat16=model_config.dtype == 'bfloat16')
    rows_out.append(('torch', torch_step, 0.0, torch_loss))

  print(f'\n{"framework":<12}{"step ms":>10}{"tokens/s":>12}{"GFLOP/s":>10}{"MFU":>7}{"compile s":>11}{"loss":>8}')
  for name, step, compiled, first_loss in rows_out:
    print(f'{name:<12}{step * 1e3:>10.1f}{target_tokens / step:>12.0f}{flops / step / 1e9:>10.1f}'
          f'{flops / step / peak:>7.2f}{compiled:>11.1f}{first_loss:>8.3f}')
  t2t_rate = target_tokens / t2t_step
  torch_rate = target_tokens / torch_step if torch_step else float('nan')
  print(f'train tokens/s t2t={t2t_rate:.0f} torch={torch_rate:.0f} ratio={t2t_rate / torch_rate:.2f} '
        f'mfu={flops / t2t_step / peak:.3f}')
  result = {
      'config': args.config, 'dtype': model_config.dtype, 'rows': rows, 'length': length,
      'target_tokens': target_tokens, 'padding_efficiency': fill, 'flops_per_step': flops,
      'peak_flops': peak, 'peak_source': peak_source, 'device': jax.devices()[0].device_kind,
      't2t_step_s': t2t_step, 't2t_compile_s': compile_seconds, 't2t_tokens_per_s': t2t_rate,
      'mfu': flops / t2t_step / peak, 'torch_step_s': torch_step, 'torch_tokens_per_s': torch_rate,
      'ratio': t2t_rate / torch_rate, 't2t_loss': loss}
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(result, f, indent=2)
  return result


def main():
  measure(parser().parse_args())


if __name__ == '__main__':
  main()
