"""Top K per row with seeded ties on the compiled kernel (`csrc/topk.cc`).

`top_k(scores, k, perm, rank, shift)` returns the k best items of each row
ordered by (score descending, position ascending), where item i's position
in row r is (rank[i] - shift[r]) mod N, with -0.0 read as 0.0 (equal
scores tie): exactly the list that `mmjax.eval.ranking._top_k_exact`
computes from `where(scores == 0, 0.0, scores)` with a permuted gather of
every score and `lax.top_k`, bitwise (scores compare in IEEE total order, as
XLA:CPU's top_k compares them, so NaN ranks as it does there). The kernel
reads each score once and cuts each row's candidates back to the best k as
it goes, with no candidate list that ties could overflow, so no fallback is
needed.

`in_use()` says whether the kernel serves here: it follows the propagation
kernel's settings (`mmjax.graph.kernel.configure`, MMJAX_KERNEL), read at
trace time. Where it does not (another backend, mode 'reference', no
compiler), `top_k` computes the same lists with XLA (`reference`: a permuted
gather of every score, then `lax.top_k`); `mmjax.eval.ranking` has a faster
XLA path of its own for that case.

Rows split over devices: under a mesh whose 'data' axis has P > 1 devices
(passed as `mesh`, or active through `jax.set_mesh`), each device selects
its own block of rows (`shard_map` with rows sharded over 'data'), so the
score matrix is never gathered onto one device.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mmjax.graph import kernel
from mmjax.graph.kernel import ops
from mmjax.parallel import mesh as mesh_lib

P = jax.sharding.PartitionSpec


def in_use() -> bool:
  """Whether `top_k` can run here (CPU backend, kernel loaded and allowed).

  Raises:
    RuntimeError: mode 'kernel' and the kernel cannot serve, with why.
  """
  return kernel.available()


def reference(scores: jax.Array, k: int, perm: jax.Array, shift: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
  """`top_k` in XLA: each row's items put in their position order, then
  `lax.top_k` (which prefers lower indices among equal values).

  Costs a gather of every score: about 3x a plain `top_k` on CPU (measured
  at [256, 10000], K = 50).

  Args:
    scores: float32 [R, N].
    k: the cut-off.
    perm: int32 [N], a permutation of the items.
    shift: int32 [R], each row's offset into `perm`.

  Returns:
    (values float32 [R, k], items int32 [R, k]).
  """
  n = scores.shape[1]
  col = perm[(jnp.arange(n)[None] + shift[:, None]) % n]  # [R, N]
  top, pos = jax.lax.top_k(jnp.take_along_axis(scores, col, axis=1), k)
  return top, jnp.take_along_axis(col, pos, axis=1)


def _call(scores, perm, rank, shift, k: int):
  rows = scores.shape[0]
  return jax.ffi.ffi_call(
      'mmjax_top_k',
      (jax.ShapeDtypeStruct((rows, k), jnp.float32),
       jax.ShapeDtypeStruct((rows, k), jnp.int32)),
      vmap_method='sequential',
  )(scores, perm, rank, shift)


def _split_devices(mesh: jax.sharding.Mesh | None) -> int:
  """Devices the rows are split over: `mesh`'s 'data' axis, else the active
  mesh's (`ops.row_split_devices`)."""
  if mesh is None:
    return ops.row_split_devices()
  if mesh_lib.AXIS not in mesh.axis_names:
    return 1
  return int(mesh.shape[mesh_lib.AXIS])


def top_k(scores: jax.Array, k: int, perm: jax.Array, rank: jax.Array,
          shift: jax.Array, *, mesh: jax.sharding.Mesh | None = None
          ) -> tuple[jax.Array, jax.Array]:
  """The k best items per row with seeded ties (see the module docstring).

  Args:
    scores: float32 [R, N]; -0.0 counts (and comes back) as 0.0, so callers
      need no pass of their own to make equal zeros tie.
    k: the cut-off, 0 <= k <= N.
    perm: int32 [N], a permutation of the items.
    rank: int32 [N], its inverse (rank[perm[j]] = j).
    shift: int32 [R], each row's offset into `perm` (taken mod N).
    mesh: the mesh whose 'data' axis the rows are sharded over, or None (the
      active mesh, if any).

  Returns:
    (values float32 [R, k], items int32 [R, k]).

  Raises:
    RuntimeError: kernel mode 'kernel' and the kernel cannot serve.
  """
  scores = jnp.asarray(scores, jnp.float32)
  perm = jnp.asarray(perm, jnp.int32)
  rank = jnp.asarray(rank, jnp.int32)
  shift = jnp.asarray(shift, jnp.int32)
  rows, n = scores.shape
  if not 0 <= k <= n:
    raise ValueError(f'top_k: k={k} outside [0, {n}].')
  if not in_use():  # Loads the kernel when it can.
    return reference(jnp.where(scores == 0, 0.0, scores), k, perm, shift)
  parts = _split_devices(mesh)
  if parts == 1:
    return _call(scores, perm, rank, shift, k)
  # Equal row blocks per device; padding rows are selected and dropped.
  pad = -rows % parts
  if pad:
    scores = jnp.pad(scores, ((0, pad), (0, 0)))
    shift = jnp.pad(shift, (0, pad))
  rows_spec = P(mesh_lib.AXIS)
  values, items = jax.shard_map(
      lambda s, p, r, h: _call(s, p, r, h, k), mesh=mesh,
      in_specs=(rows_spec, P(), P(), rows_spec),
      out_specs=(rows_spec, rows_spec), check_vma=False,
  )(scores, perm, rank, shift)
  return values[:rows], items[:rows]
