"""Model FLOPs and MFU: one count shared by the trainer's log and the benchmarks."""

import os

import pytest

from bench import profile_step, train_speed
from t2t import flops
from t2t.config import ModelConfig, base_config, load_config_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_small_config_count_is_the_benchmarks_former_number():
  """bench/RESULTS.md: 192.9 GFLOP per step for configs/small.py (64 rows x 64 tokens, V 8000);
  the exact value is what bench/train_speed.py's own formula gave before it moved here."""
  config = load_config_file(os.path.join(ROOT, 'configs', 'small.py'))
  model_config = ModelConfig.from_config(config.model, config.vocab_size)
  count = flops.train_flops_per_step(model_config, config.batch_size, config.max_len)
  assert count == 192_870_875_136
  assert train_speed.train_flops_per_step is flops.train_flops_per_step
  assert profile_step.train_flops_per_step is flops.train_flops_per_step


@pytest.mark.parametrize('kind, configured, expected', [
    ('NVIDIA H100 80GB HBM3', 0.0, 989e12), ('NVIDIA H200', 0.0, 989e12),
    ('NVIDIA A100-SXM4-40GB', 0.0, 312e12), ('TPU v4', 0.0, 275e12), ('TPU v5 lite', 0.0, 197e12),
    ('cpu', 0.0, None), ('cpu', 5e11, 5e11), ('NVIDIA H100 80GB HBM3', 1e15, 1e15),
])
def test_peak_by_device_kind_or_config(kind, configured, expected):
  assert flops.device_peak_flops(kind, configured) == expected


def test_speed_summary_reports_mfu_only_with_a_peak():
  config = base_config()
  model_config = ModelConfig(vocab_size=100, d_model=16, num_heads=2, num_encoder_layers=1,
                             num_decoder_layers=1, d_ff=32)
  per_step = flops.train_flops_per_step(model_config, config.batch_size, config.max_len)
  unknown = flops.Speed.for_training(config, model_config, 'cpu', 2).summary(steps=4, seconds=2.0)
  assert unknown == {'step_time': 0.5, 'flops_per_sec': per_step / 0.5}
  config.peak_flops = 1e9
  known = flops.Speed.for_training(config, model_config, 'cpu', 2).summary(steps=4, seconds=2.0)
  assert known['mfu'] == pytest.approx(per_step / 0.5 / 2e9)


@pytest.mark.parametrize('variant', [{}, {'ffn': 'swiglu'}, {'ffn': 'geglu', 'num_kv_heads': 1},
                                     {'num_kv_heads': 2, 'positional': 'rope'}, {'positional': 'relative'}])
def test_count_is_every_weight_matrix_once_per_token(variant):
  """Matmul FLOPs = 2 x each kernel's size per token (every kernel meets each token of its side once,
  both sides `length` long) + the tied embedding as logits + the attention scores and values:
  a variant whose matrices change (gated FFN, grouped-query) changes the count by exactly them."""
  import jax
  import numpy as np

  from t2t.model import init_params
  m = ModelConfig(vocab_size=50, d_model=16, num_heads=4, num_encoder_layers=2, num_decoder_layers=1,
                  d_ff=24, **variant)
  shapes = jax.eval_shape(lambda: init_params(m, jax.random.PRNGKey(0)))
  kernels = sum(int(np.prod(x.shape)) for path, x in jax.tree_util.tree_leaves_with_path(shapes)
                if jax.tree_util.keystr(path).endswith("['kernel']"))
  rows, length = 3, 10
  scores = 4 * length * m.d_model * (m.num_encoder_layers + 2 * m.num_decoder_layers)
  expected = 3 * rows * length * (2 * kernels + 2 * m.d_model * m.vocab_size + scores)
  assert flops.train_flops_per_step(m, rows, length) == expected
