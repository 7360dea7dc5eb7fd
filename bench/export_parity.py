"""Exported models against t2t on a whole test split: Hugging Face greedy outputs and log-probs,
CTranslate2 with its documented defaults.

  python bench/export_parity.py --workdir DIR [--split test]   # built-in corpus split

Exports DIR/hf and DIR/ct2 (replacing them), then reports
  - HF greedy translations identical to t2t's greedy (token for token, t2t's length limit),
  - the largest |log-prob difference| per target token, HF vs t2t, teacher-forced on t2t's outputs,
  - CTranslate2 `translate_batch(tokens)` and `beam_size=4` (nothing else) on every sentence plus a
    500-token input: how many raised.
The last line is: export hf_greedy_identical=<n>/<N> hf_max_logprob_diff=<d> ct2_default_errors=<e>
"""

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from t2t.data import synthetic  # noqa: E402
from t2t.data.batch import BOS_ID, EOS_ID  # noqa: E402
from t2t.export import ctranslate2 as ct2_export  # noqa: E402
from t2t.export import hf  # noqa: E402
from t2t.inference import SearchOptions, Translator  # noqa: E402
from t2t.model import Transformer  # noqa: E402
from t2t.workdir import load_model  # noqa: E402


def t2t_log_probs(config, params, pairs, width: int):
  """Per-token log-probs of each (src, tgt) pair: one [T + 1] array each, in batches of one shape."""
  apply = jax.jit(lambda p, *a: jax.nn.log_softmax(Transformer(config).apply({'params': p}, *a), -1))
  out = []
  for start in range(0, len(pairs), 50):
    chunk = pairs[start:start + 50]
    src, tgt_in, seg_s, seg_t = (np.zeros((50, width), np.int32) for _ in range(4))
    for row, (s, t) in enumerate(chunk):
      src[row, :len(s) + 1], tgt_in[row, :len(t) + 1] = s + [EOS_ID], [BOS_ID] + t
      seg_s[row, :len(s) + 1], seg_t[row, :len(t) + 1] = 1, 1
    pos = np.broadcast_to(np.arange(width), (50, width))
    log_probs = np.asarray(apply(params, src, pos, seg_s, tgt_in, pos, seg_t))  # [50, W, V]
    for row, (_, t) in enumerate(chunk):
      out.append(log_probs[row, np.arange(len(t) + 1), t + [EOS_ID]])
  return out


def hf_log_probs(model, pairs):
  import torch
  out = []
  with torch.no_grad():
    for s, t in pairs:
      logits = model(input_ids=torch.tensor([s + [EOS_ID]]), decoder_input_ids=torch.tensor([[BOS_ID] + t])).logits
      log_probs = torch.log_softmax(logits.double(), -1)[0].numpy()
      out.append(log_probs[np.arange(len(t) + 1), t + [EOS_ID]])
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--split', default='test', help='built-in corpus split')
  args = parser.parse_args()
  config, params, tokenizer = load_model(args.workdir)
  sentences = [en for en, _ in synthetic.load_builtin(args.split)]
  sources = [s[:config.max_len - 1] for s in tokenizer.encode_batch(sentences)]

  hf_dir, ct2_dir = os.path.join(args.workdir, 'hf'), os.path.join(args.workdir, 'ct2')
  hf.export(args.workdir, hf_dir, force=True)
  ct2_export.export(args.workdir, ct2_dir, force=True)
  import transformers
  model = transformers.AutoModelForSeq2SeqLM.from_pretrained(hf_dir, local_files_only=True).eval()

  options = SearchOptions('greedy', 1, 0.0, 1.5, 10)
  ours = [h[0].tokens for h in Translator(config, params, tokenizer, batch_size=64).translate_ids(sources, options)]
  start = time.perf_counter()
  theirs = hf.hf_translate_ids(model, sources, options.max_len_a, options.max_len_b, config.max_len)
  hf_seconds = time.perf_counter() - start
  identical = sum(o == t for o, t in zip(ours, theirs))
  print(f'HF greedy: {identical}/{len(sources)} identical to t2t greedy ({hf_seconds:.1f} s)')

  pairs = [(s, o[:config.max_len - 1]) for s, o in zip(sources, ours)]
  diffs = [np.abs(a - b).max() for a, b in zip(t2t_log_probs(config, params, pairs, config.max_len),
                                                hf_log_probs(model, pairs))]
  print(f'HF log-probs: max |diff| {max(diffs):.2e} over {sum(len(t) + 1 for _, t in pairs)} tokens '
        f'(median per sentence {np.median(diffs):.2e})')

  import ctranslate2
  translator = ctranslate2.Translator(ct2_dir)
  batch = [tokenizer.pieces(s) for s in sentences]
  batch.append([tokenizer.piece(i) for i in np.random.default_rng(0).integers(4, tokenizer.vocab_size, 500)])
  errors = 0
  for options_ in ({}, {'beam_size': 4}):
    try:
      translator.translate_batch(batch, **options_)
    except RuntimeError as e:  # what CTranslate2 raises on a position past the table
      errors += 1
      print(f'CTranslate2 translate_batch(**{options_}): {e}')
  print(f'CTranslate2 defaults: {len(batch)} inputs (the split + one of 500 tokens), {errors} calls raised')
  print(f'export hf_greedy_identical={identical}/{len(sources)} hf_max_logprob_diff={max(diffs):.1e} '
        f'ct2_default_errors={errors}')


if __name__ == '__main__':
  main()
