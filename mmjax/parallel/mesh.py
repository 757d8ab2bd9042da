"""The device mesh: one ('data',) axis, Auto axis types; multi-host start-up.

Axis types are set to Auto explicitly: JAX's default from 0.10 (Explicit,
still so in 0.12) breaks `table[idx]` gathers and `segment_sum` on sharded
indices. Params, optimizer
state, graphs and features are replicated (`P()`); BPR batches and evaluation
user blocks are sharded over 'data' (`P('data')`).
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

# The mesh axis that batches, evaluation user blocks and the propagation
# kernel's rows are split over: the one spelling, imported by the modules
# that name it (this module imports nothing of mmjax, so none cycles).
AXIS = 'data'


# `mesh.coordinator='auto'`: let JAX find the cluster itself.
AUTO = 'auto'


def maybe_initialize_distributed(mesh_cfg: Any) -> bool:
  """Calls `jax.distributed.initialize` when `mesh.coordinator` is set.

  Config fields (placeholders in every training config): mesh.coordinator
  ('host:port', or 'auto'), mesh.num_processes, mesh.process_id. With
  'auto', `initialize()` gets no arguments and JAX detects the cluster
  (TPU VM slices, SLURM, Open MPI, Kubernetes), so the same command runs on
  every worker; num_processes and process_id are then ignored. Must run
  before any other JAX call touches the backend.

  Returns:
    Whether it initialised.
  """
  if mesh_cfg is None or not mesh_cfg.get('coordinator'):
    return False
  # CPU processes exchange collectives through gloo (the default has none);
  # the option does nothing on GPU and TPU backends.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if mesh_cfg.coordinator == AUTO:
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(
        coordinator_address=mesh_cfg.coordinator,
        num_processes=int(mesh_cfg.num_processes),
        process_id=int(mesh_cfg.process_id))
  if _cache_breaks_cpu_collectives():
    # JAX 0.12.1 (0.11 not tried): a program that a multi-process CPU run
    # reads back from the persistent compilation cache waits forever at its
    # first cross-process collective (a two-process run hung in evaluation
    # after hitting the entry it had written itself); 0.10.2 is fine. Every
    # program is compiled instead. Nothing has compiled yet here, so JAX has
    # not yet decided whether to use the cache.
    jax.config.update('jax_enable_compilation_cache', False)
  return True


def _cache_breaks_cpu_collectives() -> bool:
  return (jax.__version_info__ >= (0, 11) and jax.process_count() > 1
          and jax.default_backend() == 'cpu')


def make_mesh(num_devices: int = -1) -> jax.sharding.Mesh:
  """A 1-D ('data',) mesh over the first `num_devices` devices (-1: all).

  Raises:
    ValueError: more devices asked for than exist.
  """
  total = jax.device_count()
  n = total if num_devices in (-1, None) else int(num_devices)
  if not 1 <= n <= total:
    raise ValueError(f'mesh.data={num_devices}: {total} devices available.')
  return jax.make_mesh((n,), (AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:n])


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharded over 'data' along the leading axis."""
  return NamedSharding(mesh, P(AXIS))
