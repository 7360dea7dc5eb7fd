"""Multi30k German->English recipe: the English->German one (configs/multi30k_en_de.py) reversed.

  python train.py --config configs/multi30k_de_en.py --workdir runs/m30k_de_en
"""

import importlib.util
import os


def get_config():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'multi30k_en_de.py')
  spec = importlib.util.spec_from_file_location('multi30k_en_de', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(src_lang='de', tgt_lang='en')
