"""Test set-up: 8 virtual CPU devices, set before jax initialises its backend.

Eight devices test correctness of the sharded paths on a 2-core machine; they
say nothing about speed.
"""

import os

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'
).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # noqa: E402  (must come after XLA_FLAGS)

assert jax.device_count() == 8, jax.devices()

SHARED_DATA = os.path.abspath(
    os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')
)
