"""Every preset in configs/ loads and initialises a model of the intended size."""

import glob
import os
import re

import jax
import numpy as np
import pytest

from t2t import config as config_lib
from t2t.config import ModelConfig, load_config_file
from t2t.errors import UserError
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


def numeric_fields(config, prefix=''):
  """Dotted names of every int or float field (bools excluded) of an ml_collections config."""
  names = []
  for key, value in config.items():
    if hasattr(value, 'items'):
      names += numeric_fields(value, f'{prefix}{key}.')
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      names.append(prefix + key)
  return names


def test_every_numeric_field_has_a_range():
  ranged = (set(config_lib.TRAIN_RANGES) | set(config_lib.SEARCH_FIELDS)
            | {f'model.{k}' for k in config_lib.MODEL_RANGES})
  assert set(numeric_fields(config_lib.base_config())) <= ranged


@pytest.mark.parametrize('field, value', [('beam_size', 0), ('alpha', -0.5), ('decode_max_len_a', -1.0),
                                          ('decode_max_len_b', -2), ('final_beam_size', 0),
                                          ('final_alphas', (0.6, -1.0))])
def test_search_fields_are_checked_by_search_options(field, value):
  """validate() refuses them before anything is written, with SearchOptions' message."""
  config = load(os.path.join(ROOT, 'configs', 'tiny.py'))
  config[field] = value
  with pytest.raises(UserError, match=re.escape(f'config.{field}=')):
    config_lib.validate(config, device_count=2)


def outside(valid):
  """Values just outside a Range."""
  values = []
  if valid.low is not None:
    values.append(valid.low if valid.low_open else valid.low - 1)
  if valid.high is not None:
    values.append(valid.high if valid.high_open else valid.high + 1)
  if valid.integer:
    values.append((valid.low or 0) + 1.5)
  return values + [float('nan')]


CASES = ([(name, value) for name, valid in config_lib.TRAIN_RANGES.items() for value in outside(valid)] +
         [(f'model.{name}', value) for name, valid in config_lib.MODEL_RANGES.items()
          if name != 'vocab_size' for value in outside(valid)])


@pytest.mark.parametrize('field,value', CASES, ids=[f'{n}={v}' for n, v in CASES])
def test_a_value_out_of_range_is_refused_naming_the_field_and_range(field, value):
  config = load(os.path.join(ROOT, 'configs', 'tiny.py'))
  config_lib.validate(config, device_count=2)  # tiny itself is valid
  group, _, name = field.rpartition('.')
  target = config[group] if group else config
  with target.ignore_type():
    target[name] = value
  valid = config_lib.MODEL_RANGES[name] if group == 'model' else config_lib.TRAIN_RANGES[field]
  with pytest.raises(UserError) as error:
    config_lib.validate(config, device_count=2)
  assert str(error.value) == f'config.{field}={target[name]!r}: use {valid}'


@pytest.mark.parametrize('changes,message', [
    ({'batch_size': 9}, 'config.batch_size=9 must be a multiple of the 2 devices'),
    ({'lr_schedule': 'cosine', 'warmup_steps': 20}, 'config.warmup_steps=20 must be below config.num_train_steps=20'),
    ({'lr_schedule': 'linear'}, "config.lr_schedule='linear': use 'rsqrt' or 'cosine'"),
    ({'max_len': 65}, 'config.max_len=65 exceeds config.model.max_len=64'),
    ({'final_alphas': ()}, 'config.final_alphas=(): use one or more numbers >= 0'),
    ({'tokenizer_type': 'wordpiece'}, "config.tokenizer_type='wordpiece': use 'unigram', 'bpe' or 'byte'"),
    ({'tokenizer_type': 'byte', 'tokenizer_path': 'x.model'}, "config.tokenizer_type='byte' needs none"),
    ({'tokenizer_type': 'byte', 'spm_alpha': 0.1}, "config.spm_alpha=0.1 samples SentencePiece segmentations"),
])
def test_fields_that_must_agree_are_checked_together(changes, message):
  config = load(os.path.join(ROOT, 'configs', 'tiny.py'))
  config.update(changes)
  with pytest.raises(UserError, match=re.escape(message)):
    config_lib.validate(config, device_count=2)


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_preset_is_valid(path):
  config_lib.validate(load(path), device_count=1)
