"""Test setup: two host CPU devices, so pmap runs real data parallelism on any machine."""

import os

# Must happen before JAX initialises its backends.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
