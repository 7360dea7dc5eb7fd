"""The encoder-decoder Transformer (Vaswani et al., 2017), readable top to bottom.

Glossary: B batch, S source length, T target length, D model width, H heads,
E head width, L decoder layers, V vocabulary, N decoding rows (batch x beams).

Training calls the model on a packed `Batch` (segment ids and per-segment positions).
Decoding uses `encode()` once, `decoder_constants()` once, then `decode_step()` per token
with a key/value cache; the search algorithms live in t2t/search.py, not here.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

from t2t.config import ModelConfig
from t2t.layers import (
  CrossAttention,
  Embedding,
  FeedForward,
  Residual,
  SelfAttention,
  causal_mask,
  compute_dtype,
  segment_mask,
)


class DecoderConstants(NamedTuple):
  """What every decoding step reads but never changes, per decoder layer."""
  cross_k: tuple   # L x [N, S, H, E]
  cross_v: tuple   # L x [N, S, H, E]
  src_seg: jax.Array  # [N, S] source segment ids (0 = padding)


class EncoderLayer(nn.Module):
  config: ModelConfig

  @nn.compact
  def __call__(self, x, mask, deterministic: bool):
    """x: [B, S, D], mask: [B, 1, S, S] -> [B, S, D]."""
    attention = SelfAttention(self.config, name='self_attention')
    ffn = FeedForward(self.config, name='ffn')
    x = Residual(self.config, name='attention_block')(
        x, lambda h: attention(h, mask, deterministic), deterministic)
    return Residual(self.config, name='ffn_block')(x, lambda h: ffn(h, deterministic), deterministic)


class DecoderLayer(nn.Module):
  config: ModelConfig

  def setup(self):
    self.self_attention = SelfAttention(self.config)
    self.cross_attention = CrossAttention(self.config)
    self.ffn = FeedForward(self.config)
    self.self_block = Residual(self.config)
    self.cross_block = Residual(self.config)
    self.ffn_block = Residual(self.config)

  def __call__(self, y, encoded, self_mask, cross_mask, deterministic: bool):
    """Teacher-forced pass. y: [B, T, D], encoded: [B, S, D] -> [B, T, D]."""
    k, v = self.cross_attention.keys_values(encoded)
    y = self.self_block(y, lambda h: self.self_attention(h, self_mask, deterministic), deterministic)
    y = self.cross_block(
        y, lambda h: self.cross_attention(h, k, v, cross_mask, deterministic), deterministic)
    return self.ffn_block(y, lambda h: self.ffn(h, deterministic), deterministic)

  def cross_keys_values(self, encoded):
    return self.cross_attention.keys_values(encoded)

  def step(self, y, cross_k, cross_v, cross_mask, cache_k, cache_v, index):
    """One token. y: [N, 1, D]; caches [N, Tmax, H, E] -> (y [N, 1, D], cache_k, cache_v)."""
    new = {}

    def attend_cached(h):
      out, new['k'], new['v'] = self.self_attention.step(h, cache_k, cache_v, index)
      return out

    y = self.self_block(y, attend_cached, deterministic=True)
    y = self.cross_block(
        y, lambda h: self.cross_attention(h, cross_k, cross_v, cross_mask, True), deterministic=True)
    y = self.ffn_block(y, lambda h: self.ffn(h, True), deterministic=True)
    return y, new['k'], new['v']


class Transformer(nn.Module):
  """Encoder-decoder Transformer with one joint source/target vocabulary."""
  config: ModelConfig

  def setup(self):
    c = self.config
    self.embedding = Embedding(c)  # shared by encoder, decoder and (if tied) the output layer
    self.encoder_layers = [EncoderLayer(c) for _ in range(c.num_encoder_layers)]
    self.decoder_layers = [DecoderLayer(c) for _ in range(c.num_decoder_layers)]
    if c.pre_norm:  # pre-LN leaves the residual stream unnormalised; normalise it once at the end
      self.encoder_norm = nn.LayerNorm(dtype=compute_dtype(c))
      self.decoder_norm = nn.LayerNorm(dtype=compute_dtype(c))
    if not c.tie_embeddings:
      self.output = nn.Dense(c.vocab_size, dtype=compute_dtype(c))

  def __call__(self, src, src_pos, src_seg, tgt_in, tgt_pos, tgt_seg, deterministic: bool = True):
    """Teacher-forced logits for a (possibly packed) batch.

    Args:
      src, src_pos, src_seg: int [B, S]; tgt_in, tgt_pos, tgt_seg: int [B, T] (see t2t.data.batch).
    Returns:
      float32 logits [B, T, V].
    """
    encoded = self.encode(src, src_pos, src_seg, deterministic)
    return self.decode(encoded, src_seg, tgt_in, tgt_pos, tgt_seg, deterministic)

  def encode(self, src, src_pos, src_seg, deterministic: bool = True):
    """[B, S] ints -> encoder output [B, S, D]."""
    x = self.embedding(src, src_pos, deterministic)  # [B, S, D]
    mask = segment_mask(src_seg, src_seg)  # [B, 1, S, S]
    for layer in self.encoder_layers:
      x = layer(x, mask, deterministic)
    return self.encoder_norm(x) if self.config.pre_norm else x

  def decode(self, encoded, src_seg, tgt_in, tgt_pos, tgt_seg, deterministic: bool = True):
    """Teacher-forced decoder: encoded [B, S, D], tgt_* [B, T] -> logits [B, T, V]."""
    y = self.embedding(tgt_in, tgt_pos, deterministic)  # [B, T, D]
    self_mask = causal_mask(tgt_seg)  # [B, 1, T, T]
    cross_mask = segment_mask(tgt_seg, src_seg)  # [B, 1, T, S]
    for layer in self.decoder_layers:
      y = layer(y, encoded, self_mask, cross_mask, deterministic)
    return self.logits(y)

  def logits(self, y):
    """[..., D] -> float32 [..., V]."""
    if self.config.pre_norm:
      y = self.decoder_norm(y)
    if self.config.tie_embeddings:
      return self.embedding.attend(y)
    return self.output(y).astype(jnp.float32)

  def decoder_constants(self, encoded, src_seg) -> DecoderConstants:
    """Cross-attention keys/values of every decoder layer, computed once per sentence."""
    kvs = [layer.cross_keys_values(encoded) for layer in self.decoder_layers]
    return DecoderConstants(tuple(k for k, _ in kvs), tuple(v for _, v in kvs), src_seg)

  def decode_step(self, tokens, constants: DecoderConstants, cache, index):
    """One decoding step.

    Args:
      tokens: int32 [N], the previous token of each row (BOS at index 0).
      constants: DecoderConstants with N rows.
      cache: {'k': L x [N, Tmax, H, E], 'v': same} self-attention cache (see init_cache).
      index: int32 scalar, the position being generated.
    Returns:
      (logits float32 [N, V], updated cache).
    """
    positions = jnp.full(tokens.shape, index, jnp.int32)
    y = self.embedding(tokens[:, None], positions[:, None], deterministic=True)  # [N, 1, D]
    cross_mask = (constants.src_seg > 0)[:, None, None, :]  # [N, 1, 1, S]
    new_k, new_v = [], []
    for i, layer in enumerate(self.decoder_layers):
      y, k, v = layer.step(y, constants.cross_k[i], constants.cross_v[i], cross_mask,
                           cache['k'][i], cache['v'][i], index)
      new_k.append(k)
      new_v.append(v)
    return self.logits(y[:, 0]), {'k': tuple(new_k), 'v': tuple(new_v)}


def init_cache(config: ModelConfig, rows: int, max_len: int):
  """Empty self-attention cache: {'k', 'v'}, each L x [N, Tmax, H, E] in the compute dtype."""
  shape = (rows, max_len, config.num_heads, config.head_dim)
  zeros = tuple(jnp.zeros(shape, compute_dtype(config)) for _ in range(config.num_decoder_layers))
  return {'k': zeros, 'v': zeros}


def init_params(config: ModelConfig, rng, src_len: int = 8, tgt_len: int = 8):
  """Random parameters for `config`, from dummy inputs of the given lengths."""
  src = jnp.ones((1, src_len), jnp.int32)
  tgt = jnp.ones((1, tgt_len), jnp.int32)
  pos_s = jnp.arange(src_len)[None]
  pos_t = jnp.arange(tgt_len)[None]
  return Transformer(config).init(rng, src, pos_s, src, tgt, pos_t, tgt)['params']
