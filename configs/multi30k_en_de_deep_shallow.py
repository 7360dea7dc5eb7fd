"""Multi30k English->German with a deep encoder and a shallow decoder (Kasai et al., 2021).

  python train.py --config configs/multi30k_en_de_deep_shallow.py --workdir runs/m30k_deep_shallow

configs/multi30k_en_de.py with 6 encoder layers and 1 decoder layer instead of 3 + 3: about
the same parameters (encoder layer 4D^2 + 2DF, decoder layer 8D^2 + 2DF: 5.8M vs 5.5M outside the
embeddings at D=256, F=1024), while decoding, which runs the decoder once per output token,
does a third of the layer work. No code: only the layer counts differ. As a sweep axis:
  --config.model.num_encoder_layers=6 --config.model.num_decoder_layers=1
"""

import importlib.util
import os


def get_config():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'multi30k_en_de.py')
  spec = importlib.util.spec_from_file_location('t2t_config_multi30k_en_de', path)
  assert spec is not None and spec.loader is not None
  recipe = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(recipe)
  config = recipe.get_config()
  config.model.update(num_encoder_layers=6, num_decoder_layers=1)
  return config
