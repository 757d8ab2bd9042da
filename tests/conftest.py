"""Test set-up: 8 virtual CPU devices, set before jax initialises its backend.

Eight devices test correctness of the sharded paths on a 2-core machine; they
say nothing about speed.
"""

import atexit
import os
import shutil
import tempfile

# Added once: under pytest-xdist the workers inherit the controller's
# environment, where this file has already run.
if '--xla_force_host_platform_device_count=8' not in os.environ.get(
    'XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (
      os.environ.get('XLA_FLAGS', '') +
      ' --xla_force_host_platform_device_count=8').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

# One persistent compilation cache per test session, shared through the
# environment with the subprocesses that tests start (launch, multihost):
# many tests build the same programs (a Trainer per test, a launch per
# resume check), and a cached executable is the one XLA would compile again,
# so results are unchanged (the bitwise determinism tests run with it) while
# the suite spends a quarter less time compiling. Every program is cached
# (no minimum compile time), so what is cached does not depend on timing.
# The folder is new and empty per session and removed at exit; a folder the
# caller set is kept.
# Under pytest-xdist (`make test` runs two workers) each worker process has
# its own folder: JAX writes a cache entry in place (no rename), so a second
# process reading the same folder could load a half-written executable.
# (The controller process loads this file first and the workers inherit its
# environment: MMJAX_TEST_CACHE_OWNER says which process made the folder.)
_process = os.environ.get('PYTEST_XDIST_WORKER', 'main')
_owner = os.environ.get('MMJAX_TEST_CACHE_OWNER')
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ or (
    _owner is not None and _owner != _process):
  _cache_dir = tempfile.mkdtemp(prefix=f'mmjax_test_jax_cache_{_process}_')
  atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache_dir
  os.environ['MMJAX_TEST_CACHE_OWNER'] = _process
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  os.environ['JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES'] = '0'

import jax  # noqa: E402  (must come after XLA_FLAGS)

assert jax.device_count() == 8, jax.devices()
