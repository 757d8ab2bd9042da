"""Differentiable CSR products on the compiled kernel, split over devices.

`csr_matmul(pattern, w, x)` is `A @ x` for the CSR matrix A with a fixed
pattern and runtime values `w`, with a `custom_vjp`:
  dx = A^T g, the same kernel on the transposed CSR whose slot k reads
       w[t_perm[k]] (no transposed copy of the values is made);
  dw[e] = <g[row(e)], x[cols[e]]>, computed only when the weights need a
       gradient (`symbolic_zeros` tells the forward pass which inputs are
       perturbed); on one device in the same sweep over A^T as dx, so g is
       read once.

When a mesh with a 'data' axis (`mmjax.parallel.mesh.AXIS`) of size P > 1 is
active (`jax.set_mesh`) and not yet manual (`row_split_devices`), each device computes a block of ceil(N / P) rows (or
ceil(E / P) edges) and the blocks are all-gathered, so the propagation is
split across devices instead of repeated on each. Graph and x are replicated
inputs there, as parameters are in the training step. The mesh is read at
trace time: trace the step under `with jax.set_mesh(mesh):`; a step jitted
with sharded arguments but no mesh context computes the whole product on
every device (correct, P times the work).

`vmap` runs the kernel once per batch element (`vmap_method='sequential'`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
from jax import lax
import jax.numpy as jnp

from mmjax.parallel import mesh as mesh_lib


class Pattern(NamedTuple):
  """The CSR pattern and its transpose, int32.

  Attributes:
    indptr: [N + 1] row pointer.
    cols: [E] column (sender) of each slot.
    t_indptr: [N + 1] row pointer of A^T.
    t_cols: [E] column of each slot of A^T (a receiver of A).
    t_perm: [E] the edge of A that slot k of A^T holds.
  """

  indptr: jax.Array
  cols: jax.Array
  t_indptr: jax.Array
  t_cols: jax.Array
  t_perm: jax.Array


def transpose_pattern(
    indptr: jax.Array, senders: jax.Array, receivers: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Jittable transposed CSR (t_indptr, t_cols, t_perm) for graphs built on
  device without one (a stable argsort of the senders)."""
  n = indptr.shape[0] - 1
  t_perm = jnp.argsort(senders, stable=True).astype(jnp.int32)
  t_cols = receivers[t_perm].astype(jnp.int32)
  t_indptr = jnp.searchsorted(
      senders[t_perm], jnp.arange(n + 1, dtype=senders.dtype), side='left'
  ).astype(jnp.int32)
  return t_indptr, t_cols, t_perm


def row_split_devices() -> int:
  """P, the devices the kernel's rows are split over when traced now: the
  active mesh's 'data' axis size, or 1 (no mesh, one device, or inside a
  shard_map that already made the axis manual)."""
  mesh = jax.sharding.get_abstract_mesh()
  axis = mesh_lib.AXIS
  if mesh.empty or axis not in mesh.axis_names or axis in mesh.manual_axes:
    return 1
  return int(mesh.shape[axis])


def _spmm_call(indptr, cols, w, perm, x, row0, rows: int) -> jax.Array:
  return jax.ffi.ffi_call(
      'mmjax_spmm',
      jax.ShapeDtypeStruct((rows, x.shape[1]), jnp.float32),
      vmap_method='sequential',
  )(indptr, cols, w, perm, x, row0)


def _edge_dot_call(indptr, cols, g, x, edge0, count: int) -> jax.Array:
  return jax.ffi.ffi_call(
      'mmjax_edge_dot',
      jax.ShapeDtypeStruct((count,), jnp.float32),
      vmap_method='sequential',
  )(indptr, cols, g, x, edge0)


def _split(fn, total: int, args):
  """Runs fn(start, count, *args) on one device or row-split over 'data'."""
  parts = row_split_devices()
  if parts == 1:
    return fn(jnp.zeros((), jnp.int32), total, *args)
  block = -(-total // parts)

  def local(*local_args):
    start = (lax.axis_index(mesh_lib.AXIS) * block).astype(jnp.int32)
    out = fn(start, block, *local_args)
    return lax.all_gather(out, mesh_lib.AXIS, tiled=True)

  spec = jax.sharding.PartitionSpec()
  out = jax.shard_map(
      local, in_specs=spec, out_specs=spec, check_vma=False
  )(*args)
  return out[:total]


def spmm(indptr, cols, w, perm, x) -> jax.Array:
  """y = A x, [N, D] float32; perm [E] or [0] (identity). No gradient."""
  n = indptr.shape[0] - 1
  return _split(
      lambda start, rows, *a: _spmm_call(*a, start, rows), n,
      (indptr, cols, w, perm, x),
  )


def edge_dot(indptr, cols, g, x) -> jax.Array:
  """out[e] = <g[row(e)], x[cols[e]]>, [E] float32."""
  num_edges = cols.shape[0]
  return _split(
      lambda start, count, *a: _edge_dot_call(*a, start, count), num_edges,
      (indptr, cols, g, x),
  )


@jax.custom_vjp
def csr_matmul(pattern: Pattern, w: jax.Array, x: jax.Array) -> jax.Array:
  """A @ x with A = CSR(pattern, w); w [E], x [N, D] float32 -> [N, D]."""
  identity = jnp.zeros((0,), jnp.int32)
  return spmm(pattern.indptr, pattern.cols, w, identity, x)


def _spmm_t_dw(pattern: Pattern, w, g, x):
  """(A^T g, dw) in one sweep over A^T, on one device."""
  n, d = x.shape
  return jax.ffi.ffi_call(
      'mmjax_spmm_t_dw',
      (jax.ShapeDtypeStruct((n, d), jnp.float32),
       jax.ShapeDtypeStruct(w.shape, jnp.float32)),
      vmap_method='sequential',
  )(pattern.t_indptr, pattern.t_cols, pattern.t_perm, w, g, x)


def _fwd(pattern, w, x):
  # With symbolic_zeros, each input arrives as CustomVJPPrimal(value,
  # perturbed); whether w is perturbed is static, kept as the residuals'
  # structure (a trailing marker) since residuals must be arrays.
  pattern = jax.tree.map(lambda p: p.value, pattern,
                         is_leaf=lambda p: hasattr(p, 'perturbed'))
  need_dw = w.perturbed
  w, x = w.value, x.value
  res = (pattern, w, x) + ((jnp.zeros((0,), jnp.float32),) if need_dw else ())
  return csr_matmul(pattern, w, x), res


def _bwd(res, g):
  pattern, w, x = res[:3]
  need_dw = len(res) == 4
  if isinstance(g, jax.custom_derivatives.SymbolicZero):
    return None, None, None
  g = g.astype(jnp.float32)
  if not need_dw:
    return None, None, spmm(pattern.t_indptr, pattern.t_cols, w,
                            pattern.t_perm, g)
  if row_split_devices() == 1:
    dx, dw = _spmm_t_dw(pattern, w, g, x)
    return None, dw, dx
  # Split over devices: dx by rows of A^T, dw by blocks of edges.
  dx = spmm(pattern.t_indptr, pattern.t_cols, w, pattern.t_perm, g)
  dw = edge_dot(pattern.indptr, pattern.cols, g, x)
  return None, dw, dx


csr_matmul.defvjp(_fwd, _bwd, symbolic_zeros=True)
