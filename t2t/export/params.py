"""What every exporter shares: reading t2t's parameters so that none is left unmapped.

An exporter reads each parameter through `Params`, which records it as consumed; after the last
one, `check_all_used()` fails (one line, naming them) if the tree holds any parameter the exporter
never read, so a new weight in the model cannot silently go missing from an exported one.

Glossary: D model width, V vocabulary, P rows of an exported position table.
"""

import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from t2t.config import ModelConfig
from t2t.errors import UserError
from t2t.layers import sinusoidal_encoding


class Params:
  """A flat, read-once view of a t2t parameter tree ('encoder_layers_0/ffn/Dense_0/kernel' -> array)."""

  def __init__(self, tree, target: str):
    """tree: the model's params; target: the export format, for messages ('CTranslate2', ...)."""
    self.target = target
    self._arrays = {k: np.asarray(v, np.float32) for k, v in traverse_util.flatten_dict(tree, sep='/').items()}
    self.used: list[str] = []  # t2t parameter names in the order the exporter read them

  def __call__(self, name: str) -> np.ndarray:
    """The float32 array of one parameter, recorded as consumed."""
    if name not in self._arrays:
      raise UserError(f'the checkpoint has no parameter {name}, which the {self.target} export needs: '
                      'export a workdir written by this version of t2t')
    if name not in self.used:
      self.used.append(name)
    return self._arrays[name]

  def dense(self, name: str, in_axes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(weight [out, in], bias [out]) of a flax Dense/DenseGeneral with `in_axes` input axes.

    Flax kernels are [in..., out...]; torch and CTranslate2 linear weights are [out, in].
    """
    kernel = self(f'{name}/kernel')
    n_in = int(np.prod(kernel.shape[:in_axes]))
    weight = np.ascontiguousarray(kernel.reshape(n_in, -1).T)  # [out, in]
    return weight, self(f'{name}/bias').reshape(-1)

  def norm(self, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(scale [D], bias [D]) of a LayerNorm; (scale [D], None) of an RMSNorm (it has no bias)."""
    return self(f'{name}/scale'), (self(f'{name}/bias') if f'{name}/bias' in self._arrays else None)

  def check_all_used(self) -> None:
    """Raises UserError naming every parameter the exporter did not read."""
    left = sorted(set(self._arrays) - set(self.used))
    if left:
      raise UserError(f'the {self.target} export does not map t2t parameter(s) {", ".join(left)}: the '
                      'model has weights this exporter does not know; nothing was written')


def position_table(config: ModelConfig, params: Params, rows: int | None = None) -> np.ndarray:
  """float32 [P, D]: what t2t adds to the scaled embedding at positions 0 .. P - 1 (P = rows or max_len).

  Sinusoidal encodings are defined at every position, so the table is t2t's own function
  evaluated P times. A learned table has max_len rows; rows past it repeat the last learned
  row (t2t itself never reaches them: it cuts sources to max_len - 1 tokens and stops outputs
  at max_len), so positions 0 .. max_len - 1 are exact and longer inputs still run. Rope and
  relative positions add nothing to the embeddings: zeros.
  """
  rows = rows or config.max_len
  if config.positional == 'learned':
    learned = params('embedding/positions/embedding')  # [max_len, D]
    last = np.repeat(learned[-1:], max(0, rows - len(learned)), axis=0)
    return np.concatenate([learned, last])[:rows]
  if config.positional in ('rope', 'relative'):  # positions act inside attention, nothing is added
    return np.zeros((rows, config.d_model), np.float32)
  return np.asarray(sinusoidal_encoding(jnp.arange(rows), config.d_model), np.float32)
