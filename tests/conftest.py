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


# `make test` hands whole files to 2 workers as they free up (pytest-xdist --dist loadfile, in
# collection order: --no-loadscope-reorder). The longest files go first, so no long file starts
# last and leaves one worker busy alone at the end. Measured per-file times, longest first
# (one process, 2026-11-22); files not named keep their order after these.
LONGEST_FIRST = ('test_gpu_suite.py', 'test_export.py', 'test_resume.py', 'test_decoding.py',
                 'test_translate.py', 'test_train.py', 'test_sweep.py', 'test_recipe.py')


def pytest_collection_modifyitems(items):
  def rank(item):
    name = os.path.basename(str(item.fspath))
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
  items.sort(key=rank)  # stable: the tests of a file keep their order
