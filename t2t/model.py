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
  make_norm,
  segment_mask,
)


class DecoderConstants(NamedTuple):
  """What every decoding step reads but never changes, per decoder layer."""
  cross_k: tuple   # L x [B, G, S, E]
  cross_v: tuple   # L x [B, G, S, E]
  src_seg: jax.Array  # [B, S] source segment ids (0 = padding)


class EncoderLayer(nn.Module):
  config: ModelConfig

  @nn.compact
  def __call__(self, x, positions, mask, deterministic: bool):
    """x: [B, S, D], positions: [B, S], mask: [B, 1, S, S] -> [B, S, D]."""
    attention = SelfAttention(self.config, name='self_attention')
    ffn = FeedForward(self.config, name='ffn')
    attention_block = Residual(self.config, name='attention_block')
    x = attention_block.add(x, attention(attention_block.input(x), positions, mask, deterministic)[0],
                            deterministic)
    return Residual(self.config, name='ffn_block')(x, lambda h: ffn(h, deterministic), deterministic)


class DecoderLayer(nn.Module):
  """One body for the teacher-forced pass (no cache) and for cached decoding (one position)."""
  config: ModelConfig

  def setup(self):
    self.self_attention = SelfAttention(self.config, causal=True)
    self.cross_attention = CrossAttention(self.config)
    self.ffn = FeedForward(self.config)
    self.self_block = Residual(self.config)
    self.cross_block = Residual(self.config)
    self.ffn_block = Residual(self.config)

  def __call__(self, y, positions, cross_k, cross_v, self_mask, cross_mask, deterministic: bool,
               cache=None, index=None):
    """y: [B, T, D], positions: [B, T], cross_k/v: [B, G, S, E] (cross_keys_values) -> (y, cache).

    Teacher-forced: cache None, self_mask [B, 1, T, T]. Decoding: T = 1, cache (k, v) each
    [B, G, Tmax, E], index the position of y, self_mask [B, 1, 1, Tmax]; returns the cache with
    position `index` written.
    """
    h, cache = self.self_attention(self.self_block.input(y), positions, self_mask, deterministic,
                                   cache, index)
    y = self.self_block.add(y, h, deterministic)
    y = self.cross_block(
        y, lambda h: self.cross_attention(h, cross_k, cross_v, cross_mask, deterministic), deterministic)
    return self.ffn_block(y, lambda h: self.ffn(h, deterministic), deterministic), cache

  def cross_keys_values(self, encoded):
    return self.cross_attention.keys_values(encoded)

  def self_keys_values(self, y, positions):
    """What the cache holds for y [N, Tmax, D]: (k, v) each [N, G, Tmax, E] (for their shapes)."""
    _, k, v = self.self_attention.project(self.self_block.input(y), positions)
    return k, v


class Transformer(nn.Module):
  """Encoder-decoder Transformer with one joint source/target vocabulary."""
  config: ModelConfig

  def setup(self):
    c = self.config
    self.embedding = Embedding(c)  # shared by encoder, decoder and (if tied) the output layer
    self.encoder_layers = [EncoderLayer(c) for _ in range(c.num_encoder_layers)]
    self.decoder_layers = [DecoderLayer(c) for _ in range(c.num_decoder_layers)]
    if c.pre_norm:  # pre-LN leaves the residual stream unnormalised; normalise it once at the end
      self.encoder_norm = make_norm(c)
      self.decoder_norm = make_norm(c)
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
      x = layer(x, src_pos, mask, deterministic)
    return self.encoder_norm(x) if self.config.pre_norm else x

  def decode(self, encoded, src_seg, tgt_in, tgt_pos, tgt_seg, deterministic: bool = True):
    """Teacher-forced decoder: encoded [B, S, D], tgt_* [B, T] -> logits [B, T, V]."""
    constants = self.decoder_constants(encoded, src_seg)
    y = self.embedding(tgt_in, tgt_pos, deterministic)  # [B, T, D]
    self_mask = causal_mask(tgt_seg)  # [B, 1, T, T]
    cross_mask = segment_mask(tgt_seg, src_seg)  # [B, 1, T, S]
    for i, layer in enumerate(self.decoder_layers):
      y, _ = layer(y, tgt_pos, constants.cross_k[i], constants.cross_v[i], self_mask, cross_mask,
                   deterministic)
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
      constants: DecoderConstants of B sentences, N = B * K: K >= 1 consecutive rows per sentence
        (beam search's layout, search.expand_to_beams), which share its cross-attention keys.
      cache: {'k': L x [N, G, Tmax, E], 'v': same} self-attention cache (see init_cache).
      index: int32 scalar, the position being generated.
    Returns:
      (logits float32 [N, V], updated cache).
    """
    positions = jnp.full(tokens.shape, index, jnp.int32)[:, None]  # [N, 1]
    y = self.embedding(tokens[:, None], positions, deterministic=True)  # [N, 1, D]
    self_mask = (jnp.arange(cache['k'][0].shape[2]) <= index)[None, None, None, :]  # [1, 1, 1, Tmax]
    cross_mask = (constants.src_seg > 0)[:, None, None, :]  # [B, 1, 1, S]
    new_k, new_v = [], []
    for i, layer in enumerate(self.decoder_layers):
      y, (k, v) = layer(y, positions, constants.cross_k[i], constants.cross_v[i], self_mask, cross_mask,
                        True, (cache['k'][i], cache['v'][i]), index)
      new_k.append(k)
      new_v.append(v)
    return self.logits(y[:, 0]), {'k': tuple(new_k), 'v': tuple(new_v)}

  def self_keys_values(self, tokens):
    """tokens [N, Tmax] -> {'k': L x [N, G, Tmax, E], 'v': same}: the cache's structure (init_cache)."""
    positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
    y = self.embedding(tokens, positions, deterministic=True)
    kvs = [layer.self_keys_values(y, positions) for layer in self.decoder_layers]
    return {'k': tuple(k for k, _ in kvs), 'v': tuple(v for _, v in kvs)}


def init_cache(config: ModelConfig, rows: int, max_len: int):
  """Empty self-attention cache {'k', 'v'}, each L x [N, G, Tmax, E] in the compute dtype.

  Shapes and dtypes come from the modules themselves (an abstract init of the keys/values they
  project), so a variant that changes what attention caches cannot disagree with the cache.
  """
  def project(tokens):
    return Transformer(config).init_with_output(jax.random.PRNGKey(0), tokens,
                                                method=Transformer.self_keys_values)[0]
  shapes = jax.eval_shape(project, jax.ShapeDtypeStruct((rows, max_len), jnp.int32))
  return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def grow_cache(cache, length: int):
  """The cache (any pytree of init_cache's [N, G, Tmax, E] arrays) padded to `length` positions.

  decode_step reads its maximum position from the cache length, so the positions already written
  keep their values and the new ones start empty (search.Stages grows the cache this way).
  """
  def pad(x):
    return jnp.pad(x, [(0, 0), (0, 0), (0, length - x.shape[2])] + [(0, 0)] * (x.ndim - 3))
  return jax.tree_util.tree_map(pad, cache)


def init_params(config: ModelConfig, rng, src_len: int = 8, tgt_len: int = 8):
  """Random parameters for `config`, from dummy inputs of the given lengths."""
  src = jnp.ones((1, src_len), jnp.int32)
  tgt = jnp.ones((1, tgt_len), jnp.int32)
  pos_s = jnp.arange(src_len)[None]
  pos_t = jnp.arange(tgt_len)[None]
  return Transformer(config).init(rng, src, pos_s, src, tgt, pos_t, tgt)['params']
