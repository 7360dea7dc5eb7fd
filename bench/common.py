"""Shared by the benchmarks: configs by path, a real training batch, the machine's matmul peak."""

import os
import platform
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from t2t.config import load_config_file
from t2t.data import pipeline
from t2t.data.batching import TrainBatches


def load_config(path: str):
  return load_config_file(path)


def real_batch(config, workdir: str):
  """The first packed training batch of the config's data, its tokenizer, and the fill of one epoch."""
  tokenizer = pipeline.get_tokenizer(config, workdir)
  examples, _ = pipeline.encoded_train_pairs(config, workdir, tokenizer).filter_by_length(config.max_len)
  batches = TrainBatches(examples, config.batch_size, config.max_len, config.seed)
  return next(batches), tokenizer, batches.epoch_fill()


def setup(config_path: str, workdir: str | None, prefix: str):
  """(config, first real batch, ModelConfig, epoch fill) for a config file; the tokenizer goes in
  `workdir`, or in a new temporary folder."""
  from t2t.config import ModelConfig
  config = load_config(config_path)
  batch, tokenizer, fill = real_batch(config, workdir or tempfile.mkdtemp(prefix=prefix))
  return config, batch, ModelConfig.from_config(config.model, tokenizer.vocab_size), fill


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
  """Best of jax's and torch's median float32 n x n matmul rate, FLOP/s."""
  rates = []
  a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), jnp.float32)
  f = jax.jit(lambda x, y: x @ y)
  f(a, a).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    f(a, a).block_until_ready()
    times.append(time.perf_counter() - start)
  rates.append(2 * n ** 3 / statistics.median(times))
  try:
    import torch
    t = torch.randn(n, n)
    t @ t
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      t @ t
      times.append(time.perf_counter() - start)
    rates.append(2 * n ** 3 / statistics.median(times))
  except ImportError:
    pass
  return max(rates)


def machine() -> str:
  name = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      name = next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
  except (OSError, StopIteration):
    pass
  return f'{name}, {os.cpu_count()} cores'


def peak_rss_mib() -> float:
  import resource
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_batch(rows: int, length: int, vocab_size: int, seed: int = 0):
  """A packed Batch of random tokens, [rows, length] per side: each row filled with pairs of 8 to 48
  tokens (the last one cut to fit), for shapes whose data is not at hand (configs/base.py's WMT14)."""
  from t2t.data.batch import BOS_ID, Batch
  rng = np.random.default_rng(seed)
  src_pos, seg = np.zeros((rows, length), np.int32), np.zeros((rows, length), np.int32)
  for r in range(rows):
    start, n = 0, 0
    while length - start >= 4:
      size = min(int(rng.integers(8, 49)), length - start)
      n += 1
      seg[r, start:start + size] = n
      src_pos[r, start:start + size] = np.arange(size)
      start += size
  tokens = lambda: np.where(seg > 0, rng.integers(4, vocab_size, (rows, length)), 0).astype(np.int32)
  tgt_out = tokens()
  tgt_in = np.where(src_pos == 0, BOS_ID, np.roll(tgt_out, 1, axis=1)) * (seg > 0)
  return Batch(tokens(), src_pos, seg.copy(), tgt_in.astype(np.int32), tgt_out, src_pos.copy(), seg.copy())


def peak_flops(configured: float = 0.0) -> tuple[float, str]:
  """(one device's peak FLOP/s, where it came from): `configured` when > 0, else the dense bf16 peak
  of the device kind (t2t/flops.py: H100/H200 989e12), else this machine's measured f32 matmul rate."""
  from t2t.flops import device_peak_flops
  kind = jax.devices()[0].device_kind
  peak = device_peak_flops(kind, configured)
  if peak is not None:
    return peak, ('--peak_flops' if configured > 0 else f'dense bf16 peak of {kind!r}')
  return matmul_peak(), f'measured f32 matmul rate of {kind!r}'
