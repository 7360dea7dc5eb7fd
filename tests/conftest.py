"""Test setup: two host CPU devices, so pmap runs real data parallelism on any machine, and one
persistent XLA compilation cache per test run and worker, shared by every program the tests start.

Most command-line tests start train.py / evaluate.py / translate.py on configs/tiny.py shapes; with
the cache, only the first program compiles each step and the rest load it (a cached executable
computes exactly what a fresh compile does). Programs that need their own cache set it themselves.
"""

import os
import tempfile

# Must happen before JAX initialises its backends.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
_run = f"{os.environ.get('PYTEST_XDIST_TESTRUNUID', os.getpid())}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(tempfile.gettempdir(), f't2t-tests-xla-cache-{_run}'))
