"""Model FLOPs of a training step and the device's peak: step time, achieved FLOP/s and MFU.

One count for the trainer's log and the benchmarks (bench/train_speed.py, bench/profile_step.py).
MFU (model FLOPs utilization) = model FLOPs per step / step time / the peak of all devices.
The peak is `config.peak_flops` per device, or, at 0, looked up by device kind below: dense
bfloat16 matmul peaks from the vendors' data sheets (a float32 model therefore reports a low
MFU against them, on purpose: it is the headroom bfloat16 would open). On a CPU, or a device not
listed, the peak is unknown and only step time and achieved FLOP/s are reported.
"""

import dataclasses

from t2t.config import ModelConfig

# Device kind substring -> dense bfloat16 peak FLOP/s of one device.
PEAK_FLOPS = (
    ('H100', 989e12),      # H100 SXM
    ('H200', 989e12),
    ('A100', 312e12),
    ('TPU v4', 275e12),
    ('TPU v5 lite', 197e12),  # v5e
    ('TPU v5e', 197e12),
)


def train_flops_per_step(m: ModelConfig, rows: int, length: int) -> float:
  """Training FLOPs of one step of `rows` packed rows of `length` tokens per side: 3 x the forward
  matmuls (forward + backward), attention over the full row length.

  Per token, forward, with K = the key/value width (kv_heads x head_dim; = D unless grouped-query)
  and F' = F, or 2F for the gated feed-forwards (swiglu/geglu have two input matrices):
  one attention's projections 2 x (2D^2 + 2DK) (Q and output D x D, key and value D x K);
  FFN 2DF' + 2FD; scores and values 4LD per attention; logits 2DV on the target side.
  Encoder layers have one attention, decoder layers two (self, cross). Positional variants add
  no matmuls (rope: elementwise; relative: a bias lookup).
  """
  d, f, v = m.d_model, m.d_ff, m.vocab_size
  kv = m.kv_heads * m.head_dim
  attention = 4 * d * d + 4 * d * kv
  ffn = 2 * d * f * (2 if m.ffn in ('swiglu', 'geglu') else 1) + 2 * f * d
  encoder = m.num_encoder_layers * (attention + ffn + 4 * length * d)
  decoder = m.num_decoder_layers * (2 * attention + ffn + 8 * length * d)
  return 3.0 * rows * length * (encoder + decoder + 2 * d * v)


def device_peak_flops(device_kind: str, configured: float = 0.0) -> float | None:
  """One device's peak FLOP/s: `configured` when > 0, else by device kind; None when unknown."""
  if configured > 0:
    return float(configured)
  for name, peak in PEAK_FLOPS:
    if name.lower() in device_kind.lower():
      return peak
  return None


@dataclasses.dataclass(frozen=True)
class Speed:
  """flops_per_step: model FLOPs of one step; peak: FLOP/s of all devices together, or None."""
  flops_per_step: float
  peak: float | None

  @classmethod
  def for_training(cls, config, model_config: ModelConfig, device_kind: str, devices: int) -> 'Speed':
    """A step is config.batch_size rows of config.max_len tokens over `devices` devices."""
    peak = device_peak_flops(device_kind, config.peak_flops)
    return cls(train_flops_per_step(model_config, config.batch_size, config.max_len),
               None if peak is None else peak * devices)

  def summary(self, steps: int, seconds: float) -> dict:
    """{'step_time': s, 'flops_per_sec': achieved model FLOP/s, 'mfu': (when the peak is known)}."""
    step_time = seconds / max(steps, 1)
    achieved = self.flops_per_step / max(step_time, 1e-9)
    out = {'step_time': step_time, 'flops_per_sec': achieved}
    if self.peak:
      out['mfu'] = achieved / self.peak
    return out

  def describe(self, device_kind: str) -> str:
    peak = (f'peak {self.peak / 1e12:.4g} TFLOP/s on all devices' if self.peak else
            f'peak of {device_kind!r} unknown: set config.peak_flops (per device) for MFU')
    return f'model FLOPs per step {self.flops_per_step / 1e9:.4g} G; {peak}'
