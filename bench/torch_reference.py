"""A PyTorch Transformer of the same shape as a t2t ModelConfig, trained on the same packed batch.

torch.nn.Transformer with batch_first, pre- or post-LN as configured, shared source/target/output
embedding scaled by sqrt(D), the same sinusoidal encoding, AdamW with the same schedule values,
gradient clipping and label-smoothed cross-entropy ignoring padding. On CUDA when torch sees a GPU;
bfloat16=True runs forward and loss under torch.autocast(bfloat16), parameters float32, as t2t.
"""

import math
import statistics
import time

import numpy as np
import torch
from torch import nn


def sinusoidal(positions: np.ndarray, d: int) -> np.ndarray:
  half = d // 2
  inv = np.exp(-np.log(10_000.0) * np.arange(half) / max(half - 1, 1))
  angles = positions[..., None] * inv
  return np.concatenate([np.sin(angles), np.cos(angles)], -1).astype(np.float32)


class Reference(nn.Module):
  def __init__(self, m):
    super().__init__()
    self.d = m.d_model
    self.heads = m.num_heads
    self.embed = nn.Embedding(m.vocab_size, m.d_model)
    nn.init.normal_(self.embed.weight, std=m.d_model ** -0.5)
    self.transformer = nn.Transformer(
        m.d_model, m.num_heads, m.num_encoder_layers, m.num_decoder_layers, m.d_ff, m.dropout,
        batch_first=True, norm_first=m.pre_norm)

  def forward(self, src, src_pos, src_seg, tgt, tgt_pos, tgt_seg):
    scale = math.sqrt(self.d)
    x = self.embed(src) * scale + src_pos
    y = self.embed(tgt) * scale + tgt_pos
    length = src.shape[1]
    # Block-diagonal masks from segment ids (True = blocked), repeated per head as torch expects.
    enc = ~((src_seg[:, :, None] == src_seg[:, None, :]) & (src_seg[:, None, :] > 0))
    causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=src.device), 1)
    dec = ~((tgt_seg[:, :, None] == tgt_seg[:, None, :]) & (tgt_seg[:, None, :] > 0)) | causal
    cross = ~((tgt_seg[:, :, None] == src_seg[:, None, :]) & (src_seg[:, None, :] > 0))
    # Padding queries would see no key at all; let them see themselves so softmax stays finite.
    eye = torch.eye(length, dtype=torch.bool, device=src.device)
    enc, dec = enc & ~eye, dec & ~eye
    cross = cross & ~(cross.all(-1, keepdim=True) & eye)
    rep = lambda m: m.repeat_interleave(self.heads, 0)
    h = self.transformer(x, y, src_mask=rep(enc), tgt_mask=rep(dec), memory_mask=rep(cross))
    return h @ self.embed.weight.T  # tied output projection


def time_steps(model_config, config, batch, steps: int, warmup: int, bfloat16: bool = False):
  """(median step seconds, first loss) of full training steps on `batch`."""
  torch.manual_seed(0)
  device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  model = Reference(model_config).to(device)
  optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(config.adam_b1, config.adam_b2),
                                eps=config.adam_eps, weight_decay=config.weight_decay)
  loss_fn = nn.CrossEntropyLoss(ignore_index=0, label_smoothing=config.label_smoothing, reduction='sum')
  d = model_config.d_model
  t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=device)
  src, src_seg, tgt, tgt_seg, labels = t(batch.src), t(batch.src_seg), t(batch.tgt_in), t(batch.tgt_seg), t(batch.tgt_out)
  src_pos = torch.as_tensor(sinusoidal(np.asarray(batch.src_pos), d), device=device)
  tgt_pos = torch.as_tensor(sinusoidal(np.asarray(batch.tgt_pos), d), device=device)
  tokens = int((labels > 0).sum())
  times, first = [], None
  model.train()
  for i in range(warmup + steps):
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
      logits = model(src, src_pos, src_seg, tgt, tgt_pos, tgt_seg)
      loss = loss_fn(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1)) / tokens
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
    optimizer.step()
    if device.type == 'cuda':
      torch.cuda.synchronize()  # time the step, not its launch
    if first is None:
      first = float(loss.detach())
    if i >= warmup:
      times.append(time.perf_counter() - start)
  return statistics.median(times), first
