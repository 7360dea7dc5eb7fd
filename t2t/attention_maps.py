"""Cross-attention maps: which source subwords each target subword looked at.

`cross_attention()` runs one teacher-forced pass over (source, BOS + translation) with
`mutable=['intermediates']` and collects the weights every decoder layer's CrossAttention
sows; `select()` averages or picks layers and heads; `plot()` draws the matrices with
matplotlib (Agg backend, no display needed).

Glossary: L decoder layers, H heads, T target length (translation + EOS),
S source length (source + EOS).
"""

import numpy as np

from t2t.config import ModelConfig
from t2t.data.batch import BOS_ID, EOS_ID
from t2t.errors import UserError
from t2t.model import Transformer


def cross_attention(config: ModelConfig, params, src_ids: list[int], tgt_ids: list[int]) -> np.ndarray:
  """Cross-attention weights of one sentence pair, teacher-forced.

  Args:
    config, params: the model.
    src_ids: source ids without EOS (EOS is appended, as in training).
    tgt_ids: target ids without BOS/EOS, e.g. the model's translation.
  Returns:
    float32 [L, H, T, S] with T = len(tgt_ids) + 1 and S = len(src_ids) + 1; every row
    (fixed l, h, t) sums to 1.
  """
  src = np.array([list(src_ids) + [EOS_ID]], np.int32)  # [1, S]
  tgt_in = np.array([[BOS_ID] + list(tgt_ids)], np.int32)  # [1, T]
  s, t = src.shape[1], tgt_in.shape[1]
  pos_s, pos_t = np.arange(s)[None], np.arange(t)[None]
  _, state = Transformer(config).apply(
      {'params': params}, src, pos_s, np.ones_like(src), tgt_in, pos_t, np.ones_like(tgt_in),
      mutable=['intermediates'])
  layers = sown_cross_attention(state['intermediates'], config.num_decoder_layers)  # L x [1, H, T, S]
  return np.stack([np.asarray(w[0], np.float32) for w in layers])  # [L, H, T, S]


def sown_cross_attention(intermediates, num_layers: int) -> list:
  """The weights every decoder layer's CrossAttention sowed: L x [B, H, T, S] (t2t/alignment.py too)."""
  return [intermediates[f'decoder_layers_{i}']['cross_attention']['cross_attention'][0]
          for i in range(num_layers)]


def select(weights: np.ndarray, layer: str = 'mean', head: str = 'mean') -> dict[tuple[str, str], np.ndarray]:
  """Picks the matrices to draw.

  Args:
    weights: [L, H, T, S] from cross_attention().
    layer, head: 'mean' (average), 'all' (one matrix each) or an index (str or int).
  Raises:
    UserError: an index out of range or an unknown word.
  Returns:
    {(layer label, head label): [T, S]}, in drawing order (rows: layers, columns: heads).
  """
  def choices(value, count, what):
    value = str(value)
    if value == 'mean':
      return [('mean', None)]
    if value == 'all':
      return [(str(i), i) for i in range(count)]
    try:
      index = int(value)
    except ValueError:
      index = count  # reported below
    if not 0 <= index < count:
      raise UserError(f"--attention_{what} {value}: the model has {count} decoder {what}s; "
                      f"use 0..{count - 1}, 'mean' or 'all'")
    return [(str(index), index)]

  out = {}
  for layer_label, l in choices(layer, weights.shape[0], 'layer'):
    per_layer = weights.mean(0) if l is None else weights[l]  # [H, T, S]
    for head_label, h in choices(head, weights.shape[1], 'head'):
      out[(layer_label, head_label)] = per_layer.mean(0) if h is None else per_layer[h]  # [T, S]
  return out


def plot(matrices: dict[tuple[str, str], np.ndarray], src_pieces: list[str], tgt_pieces: list[str],
         path: str, title: str = '') -> None:
  """Draws [T, S] matrices (target pieces as rows, source pieces as columns) into a PNG.

  Args:
    matrices: from select(); several are laid out as a grid, layers down, heads across.
    src_pieces: S labels (source pieces and '</s>').
    tgt_pieces: T labels (translation pieces and '</s>').
    path: the .png to write.
    title: figure title, e.g. the source sentence.
  """
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  layer_labels = list(dict.fromkeys(l for l, _ in matrices))
  head_labels = list(dict.fromkeys(h for _, h in matrices))
  rows, cols = len(layer_labels), len(head_labels)
  s, t = len(src_pieces), len(tgt_pieces)
  cell = 0.32  # inches per matrix cell, so labels stay legible
  width = max(4.0, 1.5 + cell * s) * cols + 1.0
  height = max(3.0, 1.2 + cell * t) * rows + 0.8
  figure, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False)
  # One colour scale for every panel, up to the largest weight shown, so panels compare.
  top = max(float(m.max()) for m in matrices.values())
  for (layer, head), matrix in matrices.items():
    ax = axes[layer_labels.index(layer), head_labels.index(head)]
    image = ax.imshow(matrix, cmap='viridis', vmin=0.0, vmax=top, aspect='auto')
    ax.set_xticks(range(s), src_pieces, rotation=90, fontsize=8)
    ax.set_yticks(range(t), tgt_pieces, fontsize=8)
    ax.set_xlabel('source')
    ax.set_ylabel('target')
    ax.set_title(_subtitle(layer, head), fontsize=9)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='attention weight')
  if title:
    figure.suptitle(title, fontsize=10)
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  plt.close(figure)


def _subtitle(layer: str, head: str) -> str:
  layers = 'mean of layers' if layer == 'mean' else f'layer {layer}'
  heads = 'mean of heads' if head == 'mean' else f'head {head}'
  return f'{layers}, {heads}'


def plot_translation(translator, params, sentence: str, path: str, options, layer: str = 'mean',
                     head: str = 'mean') -> tuple[str, np.ndarray]:
  """Translates one sentence, then draws its cross-attention map into `path` (PNG).

  Args:
    translator: a t2t.inference.Translator with a tokenizer.
    params: the same parameters, unreplicated (as load_model returns them).
    sentence: source text.
    path: the .png to write.
    options: SearchOptions for the translation.
    layer, head: see select().
  Returns:
    (the translation, the first drawn matrix [T, S]; the mean over layers and heads by default).
  """
  config, tokenizer = translator.model.config, translator.tokenizer
  src = tokenizer.encode(sentence)[:config.max_sentence_tokens]
  tgt = translator.translate_ids([src], options)[0][0].tokens[:config.max_sentence_tokens]
  weights = cross_attention(config, params, src, tgt)  # [L, H, T, S]
  matrices = select(weights, layer, head)
  eos = tokenizer.piece(EOS_ID)
  translation = tokenizer.decode(tgt)
  plot(matrices, [tokenizer.piece(i) for i in src] + [eos], [tokenizer.piece(i) for i in tgt] + [eos],
       path, title=f'{sentence}\n→ {translation}')
  return translation, next(iter(matrices.values()))
