"""Cross-attention maps: the collected weights are real distributions, and the PNG is drawn."""

import struct

import jax
import numpy as np
import pytest

from t2t import attention_maps
from t2t.config import ModelConfig
from t2t.errors import UserError
from t2t.model import init_params

CONFIG = ModelConfig(vocab_size=40, d_model=16, num_heads=2, num_encoder_layers=1, num_decoder_layers=2,
                     d_ff=32, dropout=0.0, max_len=32)


@pytest.fixture(scope='module')
def params():
  return init_params(CONFIG, jax.random.PRNGKey(0))


def random_ids(rng, n):
  return rng.integers(4, CONFIG.vocab_size, size=n).tolist()  # no special ids


def png_size(path):
  data = path.read_bytes()
  assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
  assert data[12:16] == b'IHDR'
  return struct.unpack('>II', data[16:24])  # (width, height)


def test_weights_are_distributions_over_the_source(params):
  rng = np.random.default_rng(1)
  src, tgt = random_ids(rng, 7), random_ids(rng, 5)
  weights = attention_maps.cross_attention(CONFIG, params, src, tgt)
  assert weights.shape == (2, 2, len(tgt) + 1, len(src) + 1)  # [L, H, T + EOS, S + EOS]
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
  assert weights.std() > 0  # not uniform: real attention from random weights


def test_select_means_and_picks(params):
  rng = np.random.default_rng(2)
  weights = attention_maps.cross_attention(CONFIG, params, random_ids(rng, 6), random_ids(rng, 4))
  mean = attention_maps.select(weights)
  np.testing.assert_allclose(mean[('mean', 'mean')], weights.mean((0, 1)), rtol=1e-6)
  np.testing.assert_allclose(mean[('mean', 'mean')].sum(-1), 1.0, atol=1e-5)
  grid = attention_maps.select(weights, 'all', 'all')
  assert list(grid) == [('0', '0'), ('0', '1'), ('1', '0'), ('1', '1')]
  np.testing.assert_array_equal(grid[('1', '0')], weights[1, 0])
  np.testing.assert_array_equal(attention_maps.select(weights, '1', 'mean')[('1', 'mean')], weights[1].mean(0))
  with pytest.raises(UserError, match='--attention_layer 2: the model has 2 decoder layers'):
    attention_maps.select(weights, '2')
  with pytest.raises(UserError, match='--attention_head x'):
    attention_maps.select(weights, 'mean', 'x')


@pytest.mark.parametrize('layer, head, panels', [('mean', 'mean', 1), ('all', 'all', 4)])
def test_plot_writes_a_png(params, tmp_path, layer, head, panels):
  rng = np.random.default_rng(3)
  src, tgt = random_ids(rng, 6), random_ids(rng, 9)
  matrices = attention_maps.select(attention_maps.cross_attention(CONFIG, params, src, tgt), layer, head)
  path = tmp_path / 'map.png'
  attention_maps.plot(matrices, [f's{i}' for i in range(7)], [f't{i}' for i in range(10)], str(path), 'title')
  width, height = png_size(path)
  assert 300 <= width <= 3000 and 250 <= height <= 3000, (width, height)
  if panels > 1:  # a 2 x 2 grid is bigger than one panel in both directions
    single = tmp_path / 'one.png'
    attention_maps.plot(dict([next(iter(matrices.items()))]), [f's{i}' for i in range(7)],
                   [f't{i}' for i in range(10)], str(single))
    assert png_size(path)[0] > png_size(single)[0] and png_size(path)[1] > png_size(single)[1]
