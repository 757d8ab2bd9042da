"""Sparse graphs as pytrees, and `propagate`, the one door to sparse products.

A `Graph` holds a weighted directed edge list sorted by receiver, so that
`segment_sum(..., indices_are_sorted=True)` is always valid and the receiver
array doubles as CSR row structure (`indptr`). Graphs are built and normalised
once on the host with numpy; on device only the edge weights change (edge
dropout, pruning and learnt weights mask or rescale `weights`, keeping E
static).

`propagate(g, x)[r] = sum_{e: receivers[e] == r} weights[e] * x[senders[e]]`,
i.e. `A @ x` with `A[r, s] = weight`. On CPU a compiled CSR kernel serves it
(`mmjax.graph.kernel`); elsewhere, in propagation mode 'reference'
(`kernel.configure`, or MMJAX_KERNEL=0), for non-float32 inputs or when the
kernel cannot be built, the `segment_sum` reference does (on GPU that is
XLA's scatter, for now). `propagation_path` names the path a trace takes, and
`recording_paths` collects the paths a run took (`mmjax.run` writes them to
runinfo.json).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from mmjax import types
from mmjax.graph import kernel
from mmjax.graph.kernel import ops


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Graph:
  """A weighted graph, edges sorted by receiver.

  Attributes:
    senders: int32 [E], column index (source node) of each edge.
    receivers: int32 [E], row index (target node), non-decreasing.
    weights: float32 [E].
    indptr: int32 [N + 1], CSR row pointer over `receivers`.
    num_nodes: N, static.
    t_indptr: int32 [N + 1], row pointer of the transpose (over senders), or
      None; `from_edges` fills the three `t_` fields so the gradient A^T g
      needs no sort on device.
    t_cols: int32 [E], receivers in (sender, receiver) order, or None.
    t_perm: int32 [E], the edge at each slot of the transpose, or None.
  """

  senders: jax.Array
  receivers: jax.Array
  weights: jax.Array
  indptr: jax.Array
  num_nodes: int = jax.tree.static()
  t_indptr: jax.Array | None = None
  t_cols: jax.Array | None = None
  t_perm: jax.Array | None = None

  @property
  def num_edges(self) -> int:
    return self.senders.shape[0]

  def with_weights(self, weights: jax.Array) -> Graph:
    """The same sparsity pattern with new edge weights [E]."""
    assert weights.shape == self.weights.shape, weights.shape
    return dataclasses.replace(self, weights=weights)


def from_edges(
    senders: np.ndarray,
    receivers: np.ndarray,
    weights: np.ndarray | None,
    num_nodes: int,
) -> Graph:
  """Builds a Graph on the host, sorting edges by (receiver, sender).

  Args:
    senders: int [E].
    receivers: int [E].
    weights: float [E] or None for all ones.
    num_nodes: N; every index must lie in [0, N).
  """
  senders = np.asarray(senders, dtype=np.int64)
  receivers = np.asarray(receivers, dtype=np.int64)
  if weights is None:
    weights = np.ones(len(senders), np.float32)
  weights = np.asarray(weights, dtype=np.float32)
  if not len(senders) == len(receivers) == len(weights):
    raise ValueError(
        f'senders {len(senders)}, receivers {len(receivers)} and weights '
        f'{len(weights)} differ in length.'
    )
  if len(senders) and (
      min(senders.min(), receivers.min()) < 0
      or max(senders.max(), receivers.max()) >= num_nodes
  ):
    raise ValueError(f'edge endpoint outside [0, {num_nodes}).')
  if len(senders) >= 2**31:
    raise ValueError(f'{len(senders)} edges; int32 indices hold < 2**31.')
  order = np.lexsort((senders, receivers))
  receivers = receivers[order]
  senders = senders[order]
  indptr = np.zeros(num_nodes + 1, np.int64)
  np.cumsum(np.bincount(receivers, minlength=num_nodes), out=indptr[1:])
  # The transpose: edges in (sender, receiver) order, as slots of A^T's CSR.
  t_perm = np.lexsort((receivers, senders))
  t_indptr = np.zeros(num_nodes + 1, np.int64)
  np.cumsum(np.bincount(senders, minlength=num_nodes), out=t_indptr[1:])
  return Graph(
      senders=np.asarray(senders, np.int32),
      receivers=np.asarray(receivers, np.int32),
      weights=weights[order],
      indptr=np.asarray(indptr, np.int32),
      num_nodes=int(num_nodes),
      t_indptr=np.asarray(t_indptr, np.int32),
      t_cols=np.asarray(receivers[t_perm], np.int32),
      t_perm=np.asarray(t_perm, np.int32),
  )


def bipartite(
    users: np.ndarray, items: np.ndarray, num_users: int, num_items: int
) -> Graph:
  """The symmetric user-item graph on N = U + I nodes (items offset by U).

  Duplicate (user, item) pairs are merged, so every edge has weight 1.
  """
  pairs = np.unique(
      np.asarray(users, np.int64) * num_items + np.asarray(items, np.int64)
  )
  u, i = pairs // num_items, pairs % num_items + num_users
  return from_edges(
      np.concatenate([u, i]), np.concatenate([i, u]), None,
      num_users + num_items,
  )


def degrees(g: Graph) -> np.ndarray:
  """Host-side weighted in-degree per node, float32 [N]."""
  return np.bincount(
      np.asarray(g.receivers), weights=np.asarray(g.weights),
      minlength=g.num_nodes,
  ).astype(np.float32)


def sym_normalize(g: Graph) -> Graph:
  """D^-1/2 A D^-1/2 with rsqrt(max(deg, 1)) so isolated nodes stay finite.

  Degrees are row sums; for the symmetric graphs we normalise this way the row
  and column sums agree.
  """
  deg = np.maximum(degrees(g), 1.0)
  inv = 1.0 / np.sqrt(deg)
  w = np.asarray(g.weights) * inv[np.asarray(g.receivers)] * inv[
      np.asarray(g.senders)
  ]
  return dataclasses.replace(g, weights=w.astype(np.float32))


def row_normalize(g: Graph) -> Graph:
  """D^-1 A: each receiver averages its in-neighbours (row sums of 1)."""
  deg = np.maximum(degrees(g), 1e-12)
  w = np.asarray(g.weights) / deg[np.asarray(g.receivers)]
  return dataclasses.replace(g, weights=w.astype(np.float32))


def to_dense(g: Graph) -> np.ndarray:
  """float32 [N, N] dense adjacency, for tests on small graphs."""
  a = np.zeros((g.num_nodes, g.num_nodes), np.float32)
  np.add.at(a, (np.asarray(g.receivers), np.asarray(g.senders)),
            np.asarray(g.weights))
  return a


def keep_edges(g: Graph, keep: types.Array, size: int) -> Graph:
  """The graph of g's edges where `keep`, with `size` edges (jittable).

  Kept edges stay in g's order (and in its transpose's), so propagating over
  the result adds the same terms in the same order as propagating over g
  with the other edges' weights zeroed (for finite inputs: 0 * inf is NaN
  on g), without the work on the dropped edges (FREEDOM keeps 20% of its
  user-item edges each epoch). Where fewer than `size` edges are kept, the
  rest are weight-0 self-loops on the last node, which stay last in both
  orders.

  Args:
    g: graph with at least one edge; its transpose pattern, where it has
      one, is carried over.
    keep: bool [E].
    size: the static number of edges of the result. Kept edges past the
      first `size` in g's order are dropped (in both orders): callers size
      it to their kept count.

  Returns:
    A Graph with `size` edges.
  """
  num_edges, last = g.num_edges, g.num_nodes - 1
  if num_edges == 0:
    raise ValueError('keep_edges: the graph has no edges to keep.')
  keep = jnp.asarray(keep, bool)
  # At most `size` kept, the same ones in both orders, so every new edge id
  # (and the transpose's permutation) stays below `size`. Capping drops only
  # edges after the last kept one, so `rank` is also each kept edge's new id.
  rank = jnp.cumsum(keep)
  keep = keep & (rank <= size)
  all_senders, all_receivers = (jnp.asarray(a) for a in (g.senders,
                                                        g.receivers))
  all_weights = jnp.asarray(g.weights)
  nodes = jnp.arange(g.num_nodes + 1, dtype=jnp.int32)

  def pick(order_keep):
    (slots,) = jnp.nonzero(order_keep, size=size, fill_value=num_edges)
    pad = slots == num_edges
    return jnp.minimum(slots, num_edges - 1), pad

  edge, pad = pick(keep)
  senders = jnp.where(pad, last, all_senders[edge]).astype(jnp.int32)
  receivers = jnp.where(pad, last, all_receivers[edge]).astype(jnp.int32)
  weights = jnp.where(pad, 0.0, all_weights[edge]).astype(all_weights.dtype)
  indptr = jnp.searchsorted(receivers, nodes, side='left').astype(jnp.int32)
  if g.t_perm is None:
    return Graph(senders, receivers, weights, indptr, g.num_nodes)
  # The transpose: g's transpose order filtered the same way, its edge ids
  # renumbered to the kept ones'; the pads are the last ids in both orders.
  new_id = (rank - 1).astype(jnp.int32)  # [E], meaningful where kept
  t_perm = jnp.asarray(g.t_perm)
  slot, t_pad = pick(keep[t_perm])
  t_edge = t_perm[slot]
  ids = jnp.arange(size, dtype=jnp.int32)
  t_perm_kept = jnp.where(t_pad, ids, new_id[t_edge])
  t_cols = jnp.where(t_pad, last, all_receivers[t_edge]).astype(jnp.int32)
  t_senders = jnp.where(t_pad, last, all_senders[t_edge])
  t_indptr = jnp.searchsorted(t_senders, nodes, side='left').astype(jnp.int32)
  return Graph(senders, receivers, weights, indptr, g.num_nodes,
               t_indptr=t_indptr, t_cols=t_cols, t_perm=t_perm_kept)


def propagate_reference(g: Graph, x: types.Array) -> types.Array:
  """`A @ x` by gather + sorted segment_sum; the reference for any kernel.

  Args:
    g: graph with N nodes and E edges.
    x: [N, D].

  Returns:
    [N, D].
  """
  assert x.shape[0] == g.num_nodes, (x.shape, g.num_nodes)
  messages = x[g.senders] * g.weights[:, None].astype(x.dtype)  # [E, D]
  return jax.ops.segment_sum(
      messages, g.receivers, num_segments=g.num_nodes, indices_are_sorted=True
  )


def _pattern(g: Graph) -> ops.Pattern:
  if g.t_perm is None:
    # Built on device (e.g. a kNN graph inside jit): sort there, O(E log E).
    t_indptr, t_cols, t_perm = ops.transpose_pattern(
        jnp.asarray(g.indptr), jnp.asarray(g.senders),
        jnp.asarray(g.receivers),
    )
  else:
    t_indptr, t_cols, t_perm = g.t_indptr, g.t_cols, g.t_perm
  return ops.Pattern(
      indptr=jnp.asarray(g.indptr, jnp.int32),
      cols=jnp.asarray(g.senders, jnp.int32),
      t_indptr=jnp.asarray(t_indptr, jnp.int32),
      t_cols=jnp.asarray(t_cols, jnp.int32),
      t_perm=jnp.asarray(t_perm, jnp.int32),
  )


# The paths `propagate` takes, as `propagation_path` names them.
REFERENCE = 'segment_sum'
KERNEL = 'kernel'
ROW_SPLIT = 'kernel_row_split'  # Recorded with P: 'kernel_row_split(data=8)'.

_recorders_lock = threading.Lock()
_recorders: list[set[str]] = []


def propagation_path(g: Graph, x: types.Array) -> str:
  """The path `propagate(g, x)` takes when traced here and now.

  Decided by the kernel settings (`mmjax.graph.kernel.settings`), the
  backend, the dtypes and the active mesh.

  Returns:
    REFERENCE, KERNEL, or f'{ROW_SPLIT}(data=P)' where the kernel's rows are
    split over the P devices of the mesh's 'data' axis.

  Raises:
    RuntimeError: propagation mode 'kernel' and the kernel cannot serve
      (float32 [N, D] inputs; others take the reference in every mode).
  """
  if not (jnp.ndim(x) == 2 and jnp.result_type(x) == jnp.float32
          and jnp.result_type(g.weights) == jnp.float32):
    return REFERENCE  # The kernel is float32 [N, D] only, in every mode.
  if not kernel.available():
    return REFERENCE
  parts = ops.row_split_devices()
  return KERNEL if parts == 1 else f'{ROW_SPLIT}(data={parts})'


@contextlib.contextmanager
def recording_paths(paths: set[str] | None = None) -> Iterator[set[str]]:
  """Collects the path of every `propagate` traced inside the block.

  Tracing is when the path is chosen, so a function compiled before the
  block and called inside it adds nothing (its path was recorded, or not,
  where it was traced).

  Args:
    paths: the set to add to (a new one when None).

  Yields:
    The set of paths (`propagation_path` names), filled as traces happen.
  """
  paths = set() if paths is None else paths
  with _recorders_lock:
    _recorders.append(paths)
  try:
    yield paths
  finally:
    with _recorders_lock:
      _recorders.remove(paths)


def run_record(paths: set[str]) -> dict[str, Any]:
  """What runinfo.json records about propagation.

  Args:
    paths: the paths a run took (`recording_paths`).

  Returns:
    paths: sorted; empty when the model never propagates.
    kernel: `kernel.status(load=False)`: the mode, where the settings came
      from, whether the kernel is loaded, and why not.
  """
  return {'paths': sorted(paths), 'kernel': kernel.status(load=False)}


def propagate(g: Graph, x: types.Array) -> types.Array:
  """`A @ x` for x [N, D]; the single entry point for sparse propagation.

  Differentiable in x and in `g.weights`. Uses the compiled kernel for float32
  on CPU when it is available and the settings allow it (see
  `mmjax.graph.kernel`), split by rows over the active mesh's 'data' axis;
  otherwise `propagate_reference` (`propagation_path` says which).

  Args:
    g: graph with N nodes.
    x: [N, D].

  Returns:
    [N, D], x's dtype.
  """
  x = jnp.asarray(x)
  path = propagation_path(g, x)
  with _recorders_lock:
    for paths in _recorders:
      paths.add(path)
  if path == REFERENCE:
    return propagate_reference(g, x)
  assert x.shape[0] == g.num_nodes, (x.shape, g.num_nodes)
  return ops.csr_matmul(_pattern(g), jnp.asarray(g.weights), x)
