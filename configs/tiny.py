"""A model small enough to compile and train in seconds on a CPU: for tests."""

from t2t.config import base_config


def get_config():
  config = base_config()
  config.data.source = 'builtin'
  config.data.max_train_examples = 2000
  config.eval_bleu_sentences = 16
  config.vocab_size = 300
  config.max_len = 32
  config.batch_size = 8
  config.num_train_steps = 20
  config.learning_rate = 3e-3
  config.warmup_steps = 5
  config.log_every_steps = 5
  config.eval_every_steps = 10
  config.checkpoint_every_steps = 10
  config.decode_batch_size = 8
  config.beam_size = 2
  config.model.update(d_model=32, num_heads=2, num_encoder_layers=1, num_decoder_layers=1,
                      d_ff=64, dropout=0.0, max_len=64)
  return config
