"""Joining several processes into one JAX job (multi-host TPU slices, several GPU machines).

Every process runs the same `train.py` command. Where the launcher tells JAX who is who
(TPU pod slices, SLURM, Open MPI), `jax.distributed.initialize()` finds out by itself;
elsewhere pass the coordinator (process 0's host:port), the process count and this
process's id as flags (`--coordinator_address --num_processes --process_id`) or as the
environment variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID.
With none of these a run is one process and nothing is initialized.
"""

import logging
import os
from typing import Any

import jax

from t2t.errors import UserError

ENV = {'coordinator_address': 'JAX_COORDINATOR_ADDRESS', 'num_processes': 'JAX_NUM_PROCESSES',
       'process_id': 'JAX_PROCESS_ID'}


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Calls jax.distributed.initialize when this process is one of several; must run before any JAX op."""
  given: dict[str, Any] = {'coordinator_address': coordinator_address, 'num_processes': num_processes,
           'process_id': process_id}
  for name, variable in ENV.items():
    if given[name] is None and os.environ.get(variable):
      given[name] = os.environ[variable]
  if all(value is None for value in given.values()):
    _initialize_if_detected()
    return
  missing = [name for name, value in given.items() if value is None]
  if missing:
    raise UserError(f'--{", --".join(missing)} missing: a multi-process run needs --coordinator_address, '
                    f'--num_processes and --process_id (or {", ".join(ENV.values())})')
  try:
    count, index = int(given['num_processes']), int(given['process_id'])
  except ValueError:
    raise UserError(f'--num_processes={given["num_processes"]} and --process_id={given["process_id"]} '
                    'must be integers') from None
  if not 0 <= index < count:
    raise UserError(f'--process_id={index} must be in [0, {count}) for --num_processes={count}')
  if ':' not in given['coordinator_address']:
    raise UserError(f'--coordinator_address={given["coordinator_address"]} must be host:port '
                    '(process 0\'s address and a free port)')
  if count == 1:
    return
  jax.distributed.initialize(given['coordinator_address'], count, index)


def _initialize_if_detected() -> None:
  """jax.distributed.initialize() where JAX recognises the cluster (TPU VM, SLURM, Open MPI).

  Without a recognised cluster jax 0.10 raises ValueError('coordinator_address should be
  defined.') at once, before starting anything: that means a single-process run.
  """
  try:
    jax.distributed.initialize()
  except ValueError as e:
    logging.info('single process (%s)', e)
