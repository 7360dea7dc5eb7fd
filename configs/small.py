"""A Multi30k-sized model: d 256, 3+3 layers, 4 heads, FFN 1024, on Multi30k: config.data.path,
$T2T_MULTI30K or else ../shared/data/multi30k, as in the Multi30k recipes."""

import os

from t2t.config import base_config


def get_config():
  config = base_config()
  config.data.source = 'text'
  config.data.path = os.environ.get('T2T_MULTI30K', '../shared/data/multi30k')
  config.data.src_lang = 'en'
  config.data.tgt_lang = 'de'
  config.data.eval_split = 'val'
  config.data.test_split = 'test2016'
  config.vocab_size = 8000
  config.max_len = 64
  config.batch_size = 64              # 64 rows x 64 = 4096 token slots per side
  config.num_train_steps = 8000
  config.learning_rate = 1e-3
  config.warmup_steps = 1000
  config.label_smoothing = 0.1
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.model.update(d_model=256, num_heads=4, num_encoder_layers=3, num_decoder_layers=3,
                      d_ff=1024, dropout=0.2, attention_dropout=0.1, max_len=128)
  return config
