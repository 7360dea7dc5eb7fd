"""Every preset in configs/ loads and initialises a model of the intended size."""

import glob
import os

import jax
import numpy as np
import pytest

from t2t.config import ModelConfig, load_config_file
from t2t.model import init_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', '*.py')))


def load(path):
  return load_config_file(path)


def count(config) -> int:
  model = ModelConfig.from_config(config.model, config.vocab_size)
  shapes = jax.eval_shape(lambda: init_params(model, jax.random.PRNGKey(0)))  # no compute, no memory
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes))


def test_all_presets_are_tested():
  assert {os.path.basename(p) for p in CONFIGS} >= {'tiny.py', 'default.py', 'small.py', 'base.py', 'big.py'}


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_loads_and_initializes(path):
  config = load(path)
  assert config.max_len <= config.model.max_len
  assert count(config) > 0


def test_base_and_big_have_the_paper_sizes():
  # Vaswani et al. (2017), Table 3: base 65M and big 213M parameters with a 37k shared vocabulary.
  # Ours use 32k, so the embedding is ~2.5M (base) / ~5M (big) smaller.
  base, big = count(load(os.path.join(ROOT, 'configs', 'base.py'))), count(load(os.path.join(ROOT, 'configs', 'big.py')))
  assert 58e6 < base < 66e6, base
  assert 200e6 < big < 215e6, big
