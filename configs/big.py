"""Transformer big (Vaswani et al., 2017, Table 3): d 1024, 6+6 layers, 16 heads, FFN 4096, dropout 0.3."""

from t2t.config import base_config


def get_config():
  config = base_config()
  config.data.source = 'tfds'
  config.data.tfds_name = 'wmt14_translate/de-en'
  config.data.eval_split = 'validation'
  config.data.test_split = 'test'
  config.vocab_size = 32_000
  config.max_len = 256
  config.batch_size = 96
  config.num_train_steps = 300_000
  config.learning_rate = 0.0005       # ~ d^-0.5 * warmup^-0.5 for d = 1024
  config.warmup_steps = 4000
  config.label_smoothing = 0.1
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 5000
  config.model.update(d_model=1024, num_heads=16, num_encoder_layers=6, num_decoder_layers=6,
                      d_ff=4096, dropout=0.3, max_len=256)
  return config
