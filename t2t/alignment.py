"""Word alignments from cross-attention (Pharaoh `i-j`), and their alignment error rate (AER).

Method: one teacher-forced pass over (source + EOS, BOS + target), as t2t/attention_maps.py
does, batched and jitted. The cross-attention of one decoder layer (`default_layer`: the last;
measured on the 2-layer demo model, AER 5.5 with layer 1 against 41.0 with layer 0, the
penultimate that Garg et al. 2019 chose for a 6-layer model: `--layer` picks another),
averaged over its heads, EOS row and column dropped, gives a [target pieces, source pieces]
matrix. Subwords merge into words (a SentencePiece piece
starting with '▁' starts a word): a source word's weight is the sum over its pieces, a target
word's row the mean of its pieces' rows. Each target word is linked to the source word with the
highest weight, so every target word has exactly one link.

Pharaoh format: space-separated `i-j`, i the 0-based source word, j the 0-based target word,
words being the whitespace-separated words of the text (SentencePiece's word boundaries).

  python -m t2t.alignment --workdir runs/demo      # AER against the built-in test split's gold

Glossary: B sentence pairs, S source length (+ EOS, padded), T target length (BOS + target, padded),
H heads, L decoder layers.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from t2t import attention_maps
from t2t.config import ModelConfig
from t2t.data.batch import BOS_ID, EOS_ID
from t2t.data.batching import bucket_length
from t2t.model import Transformer

WORD_START = '\u2581'  # SentencePiece's '▁'


def default_layer(config: ModelConfig) -> int:
  """The decoder layer whose cross-attention aligns: the last (module docstring)."""
  return config.num_decoder_layers - 1


@functools.cache
def _attention_fn(config: ModelConfig, layer: int):
  """jit(params, src, src_seg, tgt_in, tgt_seg) -> [B, T, S] head-averaged cross-attention of `layer`."""
  model = Transformer(config)

  def fn(params, src, src_seg, tgt_in, tgt_seg):
    positions = lambda x: jnp.broadcast_to(jnp.arange(x.shape[1])[None], x.shape)
    _, state = model.apply({'params': params}, src, positions(src), src_seg, tgt_in, positions(tgt_in),
                           tgt_seg, mutable=['intermediates'])
    weights = attention_maps.sown_cross_attention(state['intermediates'], config.num_decoder_layers)
    return weights[layer].mean(axis=1)  # [B, H, T, S] -> [B, T, S]
  return jax.jit(fn)


def piece_attention(config: ModelConfig, params, pairs: list[tuple[list[int], list[int]]],
                    layer: int | None = None, batch_size: int = 32) -> list[np.ndarray]:
  """Head-averaged cross-attention of `layer` for each (source ids, target ids) pair (no EOS/BOS).

  Returns:
    One float32 [len(target), len(source)] matrix per pair: target pieces x source pieces.
  """
  layer = default_layer(config) if layer is None else layer
  fn = _attention_fn(config, layer)
  out: list[np.ndarray] = []
  for start in range(0, len(pairs), batch_size):
    chunk = pairs[start:start + batch_size]
    s = bucket_length(max(len(src) for src, _ in chunk) + 1)
    t = bucket_length(max(len(tgt) for _, tgt in chunk) + 1)
    src = np.zeros([batch_size, s], np.int32)  # [B, S]; filler rows stay empty but for one token
    tgt = np.zeros([batch_size, t], np.int32)  # [B, T]
    src[:, 0], tgt[:, 0] = EOS_ID, BOS_ID
    for row, (src_ids, tgt_ids) in enumerate(chunk):
      src[row, :len(src_ids) + 1] = list(src_ids) + [EOS_ID]
      tgt[row, :len(tgt_ids) + 1] = [BOS_ID] + list(tgt_ids)
    weights = np.asarray(fn(params, src, (src > 0).astype(np.int32), tgt, (tgt > 0).astype(np.int32)))
    # Row j of tgt_in is BOS + pieces < j: the attention that predicts target piece j.
    out.extend(weights[row, :len(tgt_ids), :len(src_ids)] for row, (src_ids, tgt_ids) in enumerate(chunk))
  return out


def word_ids(pieces: list[str]) -> list[int]:
  """The word index of each piece, words being what `text.split()` gives on the detokenized pieces
  ('▁' read as a space): a piece belongs to the word of its first non-space character; a piece of
  spaces only, to the next word (or the last, at the end). Pieces without any word: all -1."""
  ids, word, in_word = [], -1, False
  for piece in pieces:
    first = None
    for ch in piece.replace(WORD_START, ' '):
      if ch.isspace():
        in_word = False
      elif not in_word:
        word, in_word = word + 1, True
      if first is None and not ch.isspace():
        first = word
    ids.append(word + 1 if first is None else first)
  return [min(i, word) for i in ids]


def words_alignment(matrix: np.ndarray, src_words: list[int], tgt_words: list[int]) -> list[tuple[int, int]]:
  """[T pieces, S pieces] attention -> sorted (source word, target word) links, one per target word."""
  if matrix.size == 0:
    return []
  n_src, n_tgt = max(src_words) + 1, max(tgt_words) + 1
  by_src = np.zeros([matrix.shape[0], n_src], np.float64)  # [T pieces, source words]
  np.add.at(by_src.T, np.asarray(src_words), matrix.T)
  by_word = np.zeros([n_tgt, n_src])  # [target words, source words]
  np.add.at(by_word, np.asarray(tgt_words), by_src)
  return [(int(i), j) for j, i in enumerate(by_word.argmax(axis=1))]


def align(config: ModelConfig, params, tokenizer, pairs: list[tuple[list[int], list[int]]],
          layer: int | None = None) -> list[list[tuple[int, int]]]:
  """Word alignments (source word, target word) of each (source ids, target ids) pair."""
  out = []
  for (src, tgt), matrix in zip(pairs, piece_attention(config, params, pairs, layer)):
    src_words = word_ids([tokenizer.piece(i) for i in src])
    tgt_words = word_ids([tokenizer.piece(i) for i in tgt])
    has_words = src_words and tgt_words and min(src_words) >= 0 and min(tgt_words) >= 0
    out.append(words_alignment(matrix, src_words, tgt_words) if has_words else [])
  return out


def pharaoh(links) -> str:
  """[(0, 0), (2, 1)] -> '0-0 2-1' (sorted by target word, then source word)."""
  return ' '.join(f'{i}-{j}' for i, j in sorted(links, key=lambda link: (link[1], link[0])))


def parse_pharaoh(line: str) -> set[tuple[int, int]]:
  """'0-0 2-1' -> {(0, 0), (2, 1)}."""
  return {(int(i), int(j)) for i, j in (link.split('-') for link in line.split())}


def aer(predicted, sure, possible=None) -> float:
  """Alignment error rate (Och & Ney 2003) over a corpus: 1 - (|A&S| + |A&P|) / (|A| + |S|).

  predicted, sure, possible: one set of (i, j) links per sentence; possible defaults to sure
  (P includes S).
  """
  possible = sure if possible is None else possible
  hits_s = hits_p = size_a = size_s = 0
  for a, s, p in zip(predicted, sure, possible, strict=True):
    a, s, p = set(a), set(s), set(p) | set(s)
    hits_s += len(a & s)
    hits_p += len(a & p)
    size_a += len(a)
    size_s += len(s)
  return 1.0 - (hits_s + hits_p) / max(size_a + size_s, 1)


# ------------------------------------------------------------------------- python -m t2t.alignment


def _define(values) -> None:
  from absl import flags  # pylint: disable=import-outside-toplevel  (only the tool parses flags)
  flags.DEFINE_string('workdir', None, 'A workdir trained on the built-in corpus (config.data.source=builtin).',
                      flag_values=values)
  flags.DEFINE_string('split', 'test', 'Built-in split whose gold alignments to score against.', flag_values=values)
  flags.DEFINE_integer('layer', -1, 'Decoder layer to align with (-1: the last).', flag_values=values)


def _main(values, args) -> None:
  from t2t import demo_corpus  # pylint: disable=import-outside-toplevel
  from t2t import workdir as wd  # pylint: disable=import-outside-toplevel
  from t2t.errors import UserError  # pylint: disable=import-outside-toplevel
  if args or not values.workdir:
    raise UserError('usage: python -m t2t.alignment --workdir W [--split test] [--layer N]')
  source = wd.require_train_config(values.workdir).get('data', {}).get('source')
  if source != 'builtin':
    raise UserError(f'{values.workdir} was trained on data.source={source!r}: gold alignments exist for the '
                    'built-in corpus only (data.source=builtin)')
  config, params, tokenizer = wd.load_model(values.workdir)
  layer = default_layer(config) if values.layer < 0 else values.layer
  if layer >= config.num_decoder_layers:
    raise UserError(f'--layer {layer}: the model has {config.num_decoder_layers} decoder layers')
  pairs = demo_corpus.load_builtin(values.split)
  gold = demo_corpus.gold_alignments(values.split)
  ids = [(tokenizer.encode(en), tokenizer.encode(de)) for en, de in pairs]
  predicted = align(config, params, tokenizer, ids, layer)
  sure, possible = [s for s, _ in gold], [p for _, p in gold]
  print(f'AER {100 * aer(predicted, sure, possible):.1f} on {len(pairs)} built-in {values.split} pairs '
        f'(reference translations, decoder layer {layer} of {config.num_decoder_layers}, mean of heads; '
        f'{sum(map(len, sure))} sure and {sum(map(len, possible))} possible gold links, '
        f'{sum(map(len, predicted))} predicted)')


def run(argv=None) -> None:
  from t2t import cli  # pylint: disable=import-outside-toplevel
  cli.run_tool('python -m t2t.alignment', 'AER of cross-attention word alignments on the built-in corpus',
               _define, _main, argv)


if __name__ == '__main__':
  run()
