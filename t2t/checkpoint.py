"""Orbax checkpoints of the training state, plus what rebuilds a model from a workdir.

Workdir layout:
  config.json          the full training config (ml_collections, as JSON)
  model_config.json    t2t.config.ModelConfig: rebuilds the network
  spm.model            the SentencePiece tokenizer
  checkpoints/<step>/  orbax: `state` {step, params, opt_state} and `data` (iterator position)
  metrics.jsonl, tb/   training curves

A checkpoint is written under a temporary name and renamed when complete (orbax commits
atomically), so a crash mid-save leaves the previous checkpoints intact.
"""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from t2t.config import ModelConfig
from t2t.errors import UserError

MODEL_CONFIG = 'model_config.json'
TRAIN_CONFIG = 'config.json'


class Checkpointer:
  """Saves and restores {state, data position} under <workdir>/checkpoints, keeping the last K."""

  def __init__(self, workdir: str, keep: int = 3):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state, data_state: dict) -> None:
    """state: an unreplicated pytree {step, params, opt_state}; data_state: JSON-able dict."""
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=True)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def restore(self, target_state, step: int | None = None):
    """Restores into the structure of `target_state`. Returns (state, data_state)."""
    step = self.latest_step() if step is None else step
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target_state)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore()))
    return restored.state, restored.data

  def restore_params(self, step: int | None = None):
    """Only the parameters of one checkpoint (no optimizer state needed), as numpy arrays."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise UserError(f'{self.directory}: no checkpoint found; train first with '
                      f'`python train.py --workdir {os.path.dirname(self.directory)}`')
    restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    return jax.tree_util.tree_map(np.asarray, restored.state['params'])

  def average_params(self, last: int):
    """Element-wise mean of the last `last` checkpoints' parameters (Vaswani et al. 2017).

    Returns:
      (params, the steps averaged).
    """
    steps = self.all_steps()[-last:]
    if not steps:
      self.restore_params()  # raises the "no checkpoint" error
    total = None
    for step in steps:
      params = jax.tree_util.tree_map(lambda x: x.astype(np.float64), self.restore_params(step))
      total = params if total is None else jax.tree_util.tree_map(np.add, total, params)
    return jax.tree_util.tree_map(lambda x: (x / len(steps)).astype(np.float32), total), steps

  def close(self) -> None:
    self.manager.close()


def write_model_config(workdir: str, model_config: ModelConfig) -> None:
  _write_atomic(os.path.join(workdir, MODEL_CONFIG), model_config.to_json())


def read_model_config(workdir: str) -> ModelConfig:
  path = os.path.join(workdir, MODEL_CONFIG)
  if not os.path.exists(path):
    raise UserError(f'{path} not found: --workdir must be a folder written by train.py')
  with open(path) as f:
    return ModelConfig.from_json(f.read())


def write_train_config(workdir: str, config) -> None:
  _write_atomic(os.path.join(workdir, TRAIN_CONFIG), config.to_json_best_effort(indent=2, sort_keys=True))


def read_train_config(workdir: str) -> dict | None:
  path = os.path.join(workdir, TRAIN_CONFIG)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _write_atomic(path: str, text: str) -> None:
  if jax.process_index() != 0:
    return
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)
