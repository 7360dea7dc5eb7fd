"""The offline demo: a small model on t2t's built-in synthetic English->German corpus.

`python train.py --workdir runs/demo` (no --config) uses this file; on a 2-core CPU it trains
in a few minutes and `python evaluate.py --workdir runs/demo` reports BLEU on the held-out
test split.
"""

from t2t.config import base_config


def get_config():
  config = base_config()
  config.data.source = 'builtin'
  config.data.eval_split = 'val'
  config.data.test_split = 'test'
  config.vocab_size = 900             # ~ word-level: the grammar has a few hundred words per side
  config.max_len = 64
  config.batch_size = 48
  config.num_train_steps = 700
  config.learning_rate = 2.5e-3
  config.warmup_steps = 150
  config.label_smoothing = 0.1
  config.log_every_steps = 50
  config.eval_every_steps = 350
  config.checkpoint_every_steps = 350
  config.eval_bleu_sentences = 200
  config.decode_batch_size = 100
  config.model.update(d_model=128, num_heads=4, num_encoder_layers=2, num_decoder_layers=2,
                      d_ff=512, dropout=0.1, max_len=64)
  return config
