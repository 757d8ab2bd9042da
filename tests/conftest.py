"""Test set-up: 8 virtual CPU devices, set before jax initialises its backend.

Eight devices test correctness of the sharded paths on a 2-core machine; they
say nothing about speed.
"""

import atexit
import os
import re
import shutil
import tempfile

# Exactly one device-count flag (a caller's own is replaced): under
# pytest-xdist the workers inherit the controller's environment, where this
# file has already run.
_other_flags = re.sub(r'--xla_force_host_platform_device_count=\d+', '',
                      os.environ.get('XLA_FLAGS', ''))
os.environ['XLA_FLAGS'] = (
    _other_flags + ' --xla_force_host_platform_device_count=8').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

# One persistent compilation cache per test process, shared through the
# environment with the subprocesses that its tests start (launch, sweep):
# many tests build the same programs (a Trainer per test, a launch per
# resume check), and a cached executable is the one XLA would compile again,
# so results are unchanged (the bitwise determinism tests run with it) while
# the suite spends a quarter less time compiling. Every program is cached
# (no minimum compile time), so what is cached does not depend on timing.
# The folder is new and empty and removed at exit; under a folder the caller
# set, each process takes a subfolder, which is kept.
# Each pytest-xdist worker (`make test` runs two) has its own folder: JAX
# writes a cache entry in place (no rename), so another process reading the
# same folder could load a half-written executable. The controller loads this
# file first and the workers inherit its environment, so the caller's folder
# (or '') is kept aside in MMJAX_TEST_CACHE_ROOT by whichever runs first.
_root = os.environ.setdefault('MMJAX_TEST_CACHE_ROOT',
                              os.environ.get('JAX_COMPILATION_CACHE_DIR', ''))
_process = os.environ.get('PYTEST_XDIST_WORKER', 'main')
if _root:
  _cache_dir = os.path.join(_root, _process)
  os.makedirs(_cache_dir, exist_ok=True)
else:
  _cache_dir = tempfile.mkdtemp(prefix=f'mmjax_test_jax_cache_{_process}_')
  atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
os.environ['JAX_COMPILATION_CACHE_DIR'] = _cache_dir
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import jax  # noqa: E402  (must come after XLA_FLAGS)

assert jax.device_count() == 8, jax.devices()
