"""Building blocks of the Transformer: attention, feed-forward, embeddings, positions.

Glossary: B batch, S source length, T target length, Q query length, K key length,
D model width, H heads, E head width (D / H), F feed-forward width, V vocabulary.
N rows while decoding (batch x beams).

Masks are boolean and broadcast to [B, H, Q, K]; True means "may attend".
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from t2t.config import ModelConfig

# NEG_INF, finite stand-in for -inf (one value for masks and search): fully masked rows (padding
# queries) then get a uniform softmax instead of NaN, and nothing downstream reads them.
from t2t.search import NEG_INF

dense_init = nn.initializers.xavier_uniform()


def compute_dtype(config: ModelConfig):
  return jnp.bfloat16 if config.dtype == 'bfloat16' else jnp.float32


def sinusoidal_encoding(positions: jax.Array, d_model: int) -> jax.Array:
  """Sinusoidal positional encoding, [sin | cos] halves (Vaswani et al., tensor2tensor layout).

  Args:
    positions: int array [...], position of each token within its sequence.
    d_model: D.
  Returns:
    float32 [..., D].
  """
  half = d_model // 2
  # Geometric timescales from 1 to 10^4 so that every position has a unique code.
  inv_timescales = np.exp(-np.log(10_000.0) * np.arange(half) / max(half - 1, 1))
  angles = positions[..., None].astype(jnp.float32) * inv_timescales  # [..., D/2]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)  # [..., D]


def segment_mask(q_seg: jax.Array, k_seg: jax.Array) -> jax.Array:
  """Segment mask: queries attend to keys of their own segment, never to padding.

  Args:
    q_seg: [B, Q] segment ids (0 = padding).
    k_seg: [B, K] segment ids.
  Returns:
    bool [B, 1, Q, K].
  """
  same = q_seg[:, :, None] == k_seg[:, None, :]
  return (same & (k_seg[:, None, :] > 0))[:, None]


def causal_mask(seg: jax.Array) -> jax.Array:
  """Segment mask plus "no peeking ahead": [B, T] -> bool [B, 1, T, T]."""
  t = seg.shape[-1]
  lower = jnp.tril(jnp.ones((t, t), bool))
  return segment_mask(seg, seg) & lower[None, None]


def attend(q, k, v, mask, dropout: nn.Module, deterministic: bool):
  """Scaled dot-product attention.

  Args:
    q: [B, Q, H, E]; k, v: [B, K, H, E]; mask: bool broadcastable to [B, H, Q, K].
  Returns:
    (output [B, Q, H, E], attention weights float32 [B, H, Q, K]).
  """
  scale = q.shape[-1] ** -0.5
  logits = jnp.einsum('bqhe,bkhe->bhqk', q * scale, k).astype(jnp.float32)
  logits = jnp.where(mask, logits, NEG_INF)
  weights = jax.nn.softmax(logits, axis=-1)  # softmax in float32 even under bf16 compute
  dropped = dropout(weights, deterministic=deterministic).astype(v.dtype)
  return jnp.einsum('bhqk,bkhe->bqhe', dropped, v), weights


class SelfAttention(nn.Module):
  """Multi-head self-attention with one fused query/key/value projection."""
  config: ModelConfig

  def setup(self):
    c = self.config
    dtype = compute_dtype(c)
    self.qkv = nn.DenseGeneral((3, c.num_heads, c.head_dim), dtype=dtype, kernel_init=dense_init)
    self.out = nn.DenseGeneral(c.d_model, axis=(-2, -1), dtype=dtype, kernel_init=dense_init)
    self.dropout = nn.Dropout(c.attention_dropout)

  def __call__(self, x, mask, deterministic: bool):
    """x: [B, T, D], mask: [B, 1, T, T] -> [B, T, D]."""
    qkv = self.qkv(x)  # [B, T, 3, H, E]
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    y, _ = attend(q, k, v, mask, self.dropout, deterministic)
    return self.out(y)

  def step(self, x, cache_k, cache_v, index):
    """One decoding step with a key/value cache.

    Args:
      x: [N, 1, D], the newest token's representation.
      cache_k, cache_v: [N, Tmax, H, E], keys/values of positions < index (rest unused).
      index: int32 scalar, the position of x.
    Returns:
      (y [N, 1, D], cache_k, cache_v) with position `index` written.
    """
    qkv = self.qkv(x)  # [N, 1, 3, H, E]
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    cache_k = jax.lax.dynamic_update_slice_in_dim(cache_k, k.astype(cache_k.dtype), index, axis=1)
    cache_v = jax.lax.dynamic_update_slice_in_dim(cache_v, v.astype(cache_v.dtype), index, axis=1)
    visible = (jnp.arange(cache_k.shape[1]) <= index)[None, None, None, :]  # [1, 1, 1, Tmax]
    y, _ = attend(q, cache_k, cache_v, visible, self.dropout, deterministic=True)
    return self.out(y), cache_k, cache_v


class CrossAttention(nn.Module):
  """Decoder-to-encoder attention; keys and values come from one fused projection."""
  config: ModelConfig

  def setup(self):
    c = self.config
    dtype = compute_dtype(c)
    self.query = nn.DenseGeneral((c.num_heads, c.head_dim), dtype=dtype, kernel_init=dense_init)
    self.kv = nn.DenseGeneral((2, c.num_heads, c.head_dim), dtype=dtype, kernel_init=dense_init)
    self.out = nn.DenseGeneral(c.d_model, axis=(-2, -1), dtype=dtype, kernel_init=dense_init)
    self.dropout = nn.Dropout(c.attention_dropout)

  def keys_values(self, encoded):
    """encoded: [B, S, D] -> (k, v), each [B, S, H, E]; computed once per sentence when decoding."""
    kv = self.kv(encoded)  # [B, S, 2, H, E]
    return kv[:, :, 0], kv[:, :, 1]

  def __call__(self, x, k, v, mask, deterministic: bool):
    """x: [B, T, D], k/v: [B, S, H, E], mask: [B, 1, T, S] -> [B, T, D]."""
    y, weights = attend(self.query(x), k, v, mask, self.dropout, deterministic)
    # Kept for attention plots; a no-op unless the caller asks for 'intermediates'.
    self.sow('intermediates', 'cross_attention', weights)
    return self.out(y)


class FeedForward(nn.Module):
  """Position-wise two-layer network: D -> F (ReLU) -> D."""
  config: ModelConfig

  @nn.compact
  def __call__(self, x, deterministic: bool):
    c = self.config
    dtype = compute_dtype(c)
    h = nn.relu(nn.Dense(c.d_ff, dtype=dtype, kernel_init=dense_init)(x))  # [B, T, F]
    h = nn.Dropout(c.activation_dropout)(h, deterministic=deterministic)
    return nn.Dense(c.d_model, dtype=dtype, kernel_init=dense_init)(h)  # [B, T, D]


class Residual(nn.Module):
  """Wraps a sublayer with dropout, a residual connection and LayerNorm (pre- or post-LN)."""
  config: ModelConfig

  def setup(self):
    self.norm = nn.LayerNorm(dtype=compute_dtype(self.config))
    self.dropout = nn.Dropout(self.config.dropout)

  def __call__(self, x, sublayer, deterministic: bool):
    if self.config.pre_norm:
      return x + self.dropout(sublayer(self.norm(x)), deterministic=deterministic)
    return self.norm(x + self.dropout(sublayer(x), deterministic=deterministic))


class Embedding(nn.Module):
  """Token embedding scaled by sqrt(D), plus positional encoding, plus dropout.

  `attend()` gives tied output logits through the transposed embedding matrix.
  """
  config: ModelConfig

  def setup(self):
    c = self.config
    # std D^-1/2 and the sqrt(D) scale give unit-variance token vectors, comparable in
    # magnitude to the positional encoding, while tied logits start small.
    self.embed = nn.Embed(c.vocab_size, c.d_model, dtype=compute_dtype(c),
                          embedding_init=nn.initializers.normal(c.d_model ** -0.5))
    if c.positional == 'learned':
      self.positions = nn.Embed(c.max_len, c.d_model, embedding_init=nn.initializers.normal(0.02))
    self.dropout = nn.Dropout(c.dropout)

  def __call__(self, tokens, positions, deterministic: bool):
    """tokens, positions: int [B, L] -> [B, L, D] in the compute dtype."""
    c = self.config
    x = self.embed(tokens) * jnp.sqrt(float(c.d_model))
    if c.positional == 'learned':
      x = x + self.positions(positions)
    else:
      x = x + sinusoidal_encoding(positions, c.d_model)
    x = self.dropout(x, deterministic=deterministic)
    return x.astype(compute_dtype(c))

  def attend(self, x):
    """x: [B, T, D] -> logits float32 [B, T, V] (the matmul runs in the compute dtype)."""
    return self.embed.attend(x).astype(jnp.float32)
