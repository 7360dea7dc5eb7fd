"""Building blocks of the Transformer: attention, feed-forward, norms, embeddings, positions.

Glossary: B batch, S source length, T target length, Q query length, K key length,
D model width, H query heads, G key/value heads (H for multi-head, 1 for multi-query),
E head width (D / H), F feed-forward width, V vocabulary, R relative-position buckets.
N rows while decoding (batch x beams), Tmax the decoding cache length.

Keys and values are kept head-major, [B, G, K, E], from their projection on: it is the layout
the attention products read, so a decoding step reads its KV cache and the cross-attention keys
as they are stored instead of transposing them at every step (bench/RESULTS.md).

Masks are boolean and broadcast to [B, H, Q, K]; True means "may attend".

Each variant of `ModelConfig` is dispatched in one factory here, so the modules that use it
never branch on it: `make_norm` (config.norm), `FeedForward` (config.ffn, through
`ACTIVATIONS`), `attention_positions` (rope and relative, inside self-attention) and
`Embedding.absolute_positions` (sinusoidal and learned, added to the embeddings).
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from t2t.config import ModelConfig

# NEG_INF, finite stand-in for -inf (one value for masks and search): fully masked rows (padding
# queries) then get a uniform softmax instead of NaN, and nothing downstream reads them.
from t2t.search import NEG_INF

dense_init = nn.initializers.xavier_uniform()

# config.ffn -> the activation of the first projection; gated variants multiply it by a second,
# linear projection ('up') of the same width (Shazeer, 2020).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    'relu': nn.relu,
    'gelu': functools.partial(nn.gelu, approximate=False),
    'swiglu': nn.silu,
    'geglu': functools.partial(nn.gelu, approximate=False),
}
GATED = ('swiglu', 'geglu')

ROPE_BASE = 10_000.0        # rotary frequencies base ** (-i / (E/2)), as RoFormer and LLaMA
RELATIVE_BUCKETS = 32       # T5's defaults: 32 buckets, logarithmic beyond 8 (16 one way),
RELATIVE_MAX_DISTANCE = 128  # one bucket for every distance >= 128


def compute_dtype(config: ModelConfig):
  return jnp.bfloat16 if config.dtype == 'bfloat16' else jnp.float32


def make_norm(config: ModelConfig, name: str | None = None) -> nn.Module:
  """The normalisation of config.norm: LayerNorm (scale, bias) or RMSNorm (scale); epsilon 1e-6."""
  dtype = compute_dtype(config)
  if config.norm == 'rmsnorm':
    return nn.RMSNorm(dtype=dtype, name=name)
  return nn.LayerNorm(dtype=dtype, name=name)


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


def rotate(x: jax.Array, positions: jax.Array) -> jax.Array:
  """Rotary position embedding (Su et al., 2021), split-half layout (GPT-NeoX, not interleaved).

  Pair (x[i], x[i + E/2]) of a head is rotated by the angle position * ROPE_BASE ** (-i / (E/2)),
  so a query-key dot product depends only on their distance.

  Args:
    x: [B, L, H, E] queries or keys (E even).
    positions: int [B, L], position of each token within its segment.
  Returns:
    [B, L, H, E] in x's dtype (rotated in float32).
  """
  half = x.shape[-1] // 2
  inv_freq = ROPE_BASE ** (-np.arange(half) / half)  # [E/2]
  angles = positions[..., None].astype(jnp.float32) * inv_freq  # [B, L, E/2]
  sin, cos = jnp.sin(angles)[:, :, None], jnp.cos(angles)[:, :, None]  # [B, L, 1, E/2]
  first, second = x[..., :half].astype(jnp.float32), x[..., half:].astype(jnp.float32)
  return jnp.concatenate([first * cos - second * sin, second * cos + first * sin], -1).astype(x.dtype)


def relative_buckets(relative: jax.Array, bidirectional: bool) -> jax.Array:
  """T5's bucket of each key-minus-query distance: exact up to 8 (16 one-way), then logarithmic.

  Args:
    relative: int [..., Q, K], key position - query position.
    bidirectional: False for causal self-attention (keys never lie ahead).
  Returns:
    int32 [..., Q, K] in [0, RELATIVE_BUCKETS).
  """
  buckets, distance = RELATIVE_BUCKETS, -relative  # distance > 0: the key lies behind the query
  offset = jnp.zeros_like(relative)
  if bidirectional:
    buckets //= 2
    offset = (distance < 0) * buckets  # keys ahead get the upper half
    distance = jnp.abs(distance)
  else:
    distance = jnp.maximum(distance, 0)
  exact = buckets // 2
  log_ratio = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / exact) / np.log(RELATIVE_MAX_DISTANCE / exact)
  far = jnp.minimum(exact + (log_ratio * (buckets - exact)).astype(jnp.int32), buckets - 1)
  return (offset + jnp.where(distance < exact, distance, far)).astype(jnp.int32)


class AbsolutePositions(nn.Module):
  """Self-attention sees positions only through the embeddings (sinusoidal and learned)."""

  def queries_keys(self, q, k, positions):
    return q, k

  def bias(self, q_pos, k_pos):
    return None


class RotaryPositions(AbsolutePositions):
  """config.positional='rope': queries and keys rotated by their position (no parameters)."""

  def queries_keys(self, q, k, positions):
    """q: [B, L, H, E], k: [B, L, G, E], positions: [B, L] -> rotated (q, k)."""
    return rotate(q, positions), rotate(k, positions)


class RelativeBias(AbsolutePositions):
  """config.positional='relative': a learned bias per head and distance bucket (T5), per layer."""
  num_heads: int
  bidirectional: bool

  @nn.compact
  def bias(self, q_pos, k_pos):
    """q_pos: int [B, Q], k_pos: int [B or 1, K] -> float32 [B, H, Q, K] added to attention logits."""
    buckets = relative_buckets(k_pos[:, None, :] - q_pos[:, :, None], self.bidirectional)  # [B, Q, K]
    table = nn.Embed(RELATIVE_BUCKETS, self.num_heads, embedding_init=nn.initializers.normal(0.02),
                     name='relative_bias')
    return jnp.transpose(table(buckets), (0, 3, 1, 2)).astype(jnp.float32)  # [B, H, Q, K]


def attention_positions(config: ModelConfig, bidirectional: bool) -> AbsolutePositions:
  """What self-attention does with positions, by config.positional."""
  if config.positional == 'rope':
    return RotaryPositions()
  if config.positional == 'relative':
    return RelativeBias(num_heads=config.num_heads, bidirectional=bidirectional)
  return AbsolutePositions()


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


def heads_first(x: jax.Array) -> jax.Array:
  """[B, L, G, E] -> [B, G, L, E], the layout keys and values are kept in."""
  return jnp.swapaxes(x, 1, 2)


def attend(q, k, v, mask, bias, dropout: nn.Module, deterministic: bool):
  """Scaled dot-product attention; G < H key/value heads are shared by H / G query heads each.

  Args:
    q: [B, Q, H, E]; k, v: [B, G, K, E] (head-major); mask: bool broadcastable to [B, H, Q, K];
    bias: None or float32 broadcastable to [B, H, Q, K], added to the logits.
  Returns:
    (output [B, Q, H, E], attention weights float32 [B, H, Q, K]).
  """
  heads, groups = q.shape[2], k.shape[1]
  if groups != heads:  # query head h reads key/value head h // (H / G)
    k, v = jnp.repeat(k, heads // groups, axis=1), jnp.repeat(v, heads // groups, axis=1)  # [B, H, K, E]
  scale = q.shape[-1] ** -0.5
  logits = jnp.einsum('bqhe,bhke->bhqk', q * scale, k).astype(jnp.float32)
  if bias is not None:
    logits = logits + bias
  logits = jnp.where(mask, logits, NEG_INF)
  weights = jax.nn.softmax(logits, axis=-1)  # softmax in float32 even under bf16 compute
  dropped = dropout(weights, deterministic=deterministic).astype(v.dtype)
  return jnp.einsum('bhqk,bhke->bqhe', dropped, v), weights


class SelfAttention(nn.Module):
  """Multi-head (or grouped-query) self-attention: one body for training and cached decoding.

  Parameters: `qkv` [D, 3, H, E] when G = H, else `query` [D, H, E] and `kv` [D, 2, G, E];
  `out` [H, E, D]; whatever `attention_positions` adds (rope: nothing; relative: a bias table).
  """
  config: ModelConfig
  causal: bool = False  # decoder self-attention: relative buckets look one way only

  def setup(self):
    c = self.config
    dtype = compute_dtype(c)
    if c.kv_heads == c.num_heads:
      self.qkv = nn.DenseGeneral((3, c.num_heads, c.head_dim), dtype=dtype, kernel_init=dense_init)
    else:
      self.query = nn.DenseGeneral((c.num_heads, c.head_dim), dtype=dtype, kernel_init=dense_init)
      self.kv = nn.DenseGeneral((2, c.kv_heads, c.head_dim), dtype=dtype, kernel_init=dense_init)
    self.out = nn.DenseGeneral(c.d_model, axis=(-2, -1), dtype=dtype, kernel_init=dense_init)
    self.positions = attention_positions(c, bidirectional=not self.causal)
    self.dropout = nn.Dropout(c.attention_dropout)

  def project(self, x, positions):
    """x: [B, L, D], positions: [B, L] -> (q [B, L, H, E], k [B, G, L, E], v [B, G, L, E]), q and k
    already carrying their positions (rope), so cached keys never need them again; k and v
    head-major (module docstring)."""
    if self.config.kv_heads == self.config.num_heads:
      qkv = self.qkv(x)  # [B, L, 3, H, E]
      q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    else:
      kv = self.kv(x)  # [B, L, 2, G, E]
      q, k, v = self.query(x), kv[:, :, 0], kv[:, :, 1]
    q, k = self.positions.queries_keys(q, k, positions)
    return q, heads_first(k), heads_first(v)

  def __call__(self, x, positions, mask, deterministic: bool, cache=None, index=None):
    """Attention of every position of x to the keys it may see.

    Args:
      x: [B, L, D]; positions: int [B, L], each token's position within its segment.
      mask: bool [B, 1, L, K]; K = L, or Tmax with a cache.
      cache: None (teacher-forced), or (k, v) each [B, G, Tmax, E] holding positions < index;
        x (L = 1) is then the token at position `index`, written into the cache.
      index: int32 scalar, with a cache.
    Returns:
      (y [B, L, D], the updated cache or None).
    """
    q, k, v = self.project(x, positions)
    k_pos = positions  # [B, K]
    if cache is not None:
      k = jax.lax.dynamic_update_slice_in_dim(cache[0], k.astype(cache[0].dtype), index, axis=2)  # [B, G, Tmax, E]
      v = jax.lax.dynamic_update_slice_in_dim(cache[1], v.astype(cache[1].dtype), index, axis=2)
      k_pos = jnp.arange(k.shape[2])[None]  # [1, Tmax]: a decoded row is one segment from 0
      cache = (k, v)
    bias = self.positions.bias(positions, k_pos)  # None or [B, H, L, K]
    y, _ = attend(q, k, v, mask, bias, self.dropout, deterministic)
    return self.out(y), cache


class CrossAttention(nn.Module):
  """Decoder-to-encoder attention; keys and values come from one fused projection [D, 2, G, E]."""
  config: ModelConfig

  def setup(self):
    c = self.config
    dtype = compute_dtype(c)
    self.query = nn.DenseGeneral((c.num_heads, c.head_dim), dtype=dtype, kernel_init=dense_init)
    self.kv = nn.DenseGeneral((2, c.kv_heads, c.head_dim), dtype=dtype, kernel_init=dense_init)
    self.out = nn.DenseGeneral(c.d_model, axis=(-2, -1), dtype=dtype, kernel_init=dense_init)
    self.dropout = nn.Dropout(c.attention_dropout)

  def keys_values(self, encoded):
    """encoded: [B, S, D] -> (k, v), each [B, G, S, E]; computed once per sentence when decoding."""
    kv = self.kv(encoded)  # [B, S, 2, G, E]
    return heads_first(kv[:, :, 0]), heads_first(kv[:, :, 1])

  def __call__(self, x, k, v, mask, deterministic: bool):
    """x: [B, T, D], k/v: [B, G, S, E] (keys_values), mask: [B, 1, T, S] -> [B, T, D].

    Beam search: x may hold K rows per sentence, [B * K, 1, D] (row b * K + k is beam k of
    sentence b), with k/v and mask of the B sentences ([B, 1, 1, S]): the K beams are then the
    queries of one attention per sentence, so each step reads a sentence's keys/values once
    instead of once per beam.
    """
    rows = x.shape[0]
    if rows != k.shape[0]:
      x = x.reshape(k.shape[0], -1, x.shape[-1])  # [B, K * T, D]
    y, weights = attend(self.query(x), k, v, mask, None, self.dropout, deterministic)
    # Kept for attention plots; a no-op unless the caller asks for 'intermediates'.
    self.sow('intermediates', 'cross_attention', weights)
    y = self.out(y)  # [B, K * T, D]
    return y.reshape(rows, -1, y.shape[-1])


class FeedForward(nn.Module):
  """Position-wise network D -> F -> D with config.ffn's activation.

  relu/gelu: act(x W0) W1, parameters `Dense_0` [D, F] and `Dense_1` [F, D] (2DF weights).
  swiglu/geglu: (act(x W0) * x Wup) W1, plus `up` [D, F] (3DF weights: d_ff = 2/3 of an
  ungated model's keeps the parameter count, e.g. 1365 for 2048).
  """
  config: ModelConfig

  @nn.compact
  def __call__(self, x, deterministic: bool):
    c = self.config
    dense = functools.partial(nn.Dense, dtype=compute_dtype(c), kernel_init=dense_init)
    h = ACTIVATIONS[c.ffn](dense(c.d_ff)(x))  # [B, T, F]
    if c.ffn in GATED:
      h = h * dense(c.d_ff, name='up')(x)
    h = nn.Dropout(c.activation_dropout)(h, deterministic=deterministic)
    return dense(c.d_model)(h)  # [B, T, D]


class Residual(nn.Module):
  """A sublayer's dropout, residual connection and norm (pre- or post-LN), around any sublayer:

  `block.add(x, sublayer(block.input(x)), deterministic)`, or `block(x, sublayer, deterministic)`.
  """
  config: ModelConfig

  def setup(self):
    self.norm = make_norm(self.config)
    self.dropout = nn.Dropout(self.config.dropout)

  def input(self, x):
    """What the sublayer reads: the normalised stream (pre-LN) or the stream itself (post-LN)."""
    return self.norm(x) if self.config.pre_norm else x

  def add(self, x, out, deterministic: bool):
    """The stream after the sublayer's output `out`."""
    if self.config.pre_norm:
      return x + self.dropout(out, deterministic=deterministic)
    return self.norm(x + self.dropout(out, deterministic=deterministic))

  def __call__(self, x, sublayer, deterministic: bool):
    return self.add(x, sublayer(self.input(x)), deterministic)


class Embedding(nn.Module):
  """Token embedding scaled by sqrt(D), plus absolute positions (if any), plus dropout.

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

  def absolute_positions(self, positions):
    """int [B, L] -> float32 [B, L, D] added to the embeddings, or 0 (rope and relative act in attention)."""
    c = self.config
    if c.positional == 'learned':
      return self.positions(positions)
    if c.positional == 'sinusoidal':
      return sinusoidal_encoding(positions, c.d_model)
    return 0.0

  def __call__(self, tokens, positions, deterministic: bool):
    """tokens, positions: int [B, L] -> [B, L, D] in the compute dtype."""
    c = self.config
    x = self.embed(tokens) * jnp.sqrt(float(c.d_model)) + self.absolute_positions(positions)
    x = self.dropout(x, deterministic=deterministic)
    return x.astype(compute_dtype(c))

  def attend(self, x):
    """x: [B, T, D] -> logits float32 [B, T, V] (the matmul runs in the compute dtype)."""
    return self.embed.attend(x).astype(jnp.float32)
