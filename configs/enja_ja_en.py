"""small_parallel_enja Japanese->English recipe: the English->Japanese one (configs/enja_en_ja.py) reversed.

  python train.py --config configs/enja_ja_en.py --workdir runs/enja_ja_en
"""

import importlib.util
import os


def get_config():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'enja_en_ja.py')
  spec = importlib.util.spec_from_file_location('enja_en_ja', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(src_lang='ja', tgt_lang='en')
