"""Transformer base (Vaswani et al., 2017, Table 3): d 512, 6+6 layers, 8 heads, FFN 2048.

For WMT-sized data, e.g.
  python train.py --config configs/base.py --workdir runs/wmt14 \
    --config.data.source=tfds --config.data.tfds_name=wmt14_translate/de-en
"""

from t2t.config import base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.tfds_name = 'wmt14_translate/de-en'
  config.data.eval_split = 'validation'
  config.data.test_split = 'test'
  config.vocab_size = 32_000
  config.max_len = 256
  config.batch_size = 96              # 96 rows x 256 = ~25k tokens per side per step, as in the paper
  config.num_train_steps = 100_000
  config.learning_rate = 0.0007       # ~ d^-0.5 * warmup^-0.5, the paper's schedule peak
  config.warmup_steps = 4000
  config.label_smoothing = 0.1
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 5000
  config.model.update(d_model=512, num_heads=8, num_encoder_layers=6, num_decoder_layers=6,
                      d_ff=2048, dropout=0.1, max_len=256)
  return config
