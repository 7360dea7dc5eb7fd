"""Multi30k English->German on one H100/H200 GPU in about 5 minutes: bench/gpu_suite.sh trains it.

  python train.py --config configs/multi30k_en_de_gpu.py --workdir runs/m30k_gpu

The data folder is $T2T_MULTI30K, else .data/multi30k in the checkout (the GPU machine has no
../shared: docs/GPU.md copies Multi30k there). Against configs/multi30k_en_de.py (the 2-core CPU
recipe, whose rotary positions it keeps): bfloat16 compute, a wider model (d 512, FFN 2048, 8
heads) with more dropout for 29k pairs, and ~7.5k target tokens per step. Set once before any GPU
run (no sweep), not yet measured.
"""

import importlib.util
import os


def get_config():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'multi30k_en_de.py')
  spec = importlib.util.spec_from_file_location('multi30k_en_de', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.data.path = os.environ.get('T2T_MULTI30K', '.data/multi30k')
  config.batch_size = 128             # packed rows of 64 slots: ~7.5k target tokens per step
  config.num_train_steps = 2400       # ~40 epochs of the 29k pairs
  config.learning_rate = 1e-3
  config.warmup_steps = 400
  config.eval_every_steps = 600
  config.checkpoint_every_steps = 200
  config.decode_batch_size = 512      # rows: 128 sentences at beam 4
  config.model.update(d_model=512, num_heads=8, num_encoder_layers=4, num_decoder_layers=4,
                      d_ff=2048, dropout=0.3, dtype='bfloat16')
  return config
