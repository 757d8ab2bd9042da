"""Item-item kNN graphs from features, computed blockwise on device.

LATTICE (Zhang et al., ACM MM 2021) and FREEDOM (Zhou & Shen, ACM MM 2023)
connect every item to the `k` items whose features are most cosine-similar.
MMRec builds the dense `[I, I]` similarity first (`utils.build_sim`), which is
why those models fail on large catalogues; here item blocks of a static size
`B` are scored against all items (`[B, I]` at a time) and reduced to their
top-k at once, so memory grows with `I * k` (plus one `B * I` block), never
`I * I`.

What MMRec does, and what we match:
  * Similarity: cosine, `x_i . x_j / (|x_i| |x_j|)`.
  * Self: included. An item is its own nearest neighbour (similarity 1), so
    it takes one of the `k` slots, exactly as `torch.topk(sim, k)` in MMRec.
    `exclude_self=True` gives the other convention.
  * FREEDOM (`freedom.py: get_knn_adj_mat`): unweighted edges (ones), then
    `D^-1/2 A D^-1/2` with D the row sums (k for every row, so each weight is
    1/k). `weighted=False, normalization='sym'`.
  * LATTICE (`utils.build_knn_neighbourhood` + `compute_normalized_laplacian`):
    edges keep their cosine value, then `D^-1/2 A D^-1/2` with D the row sums
    of the weighted top-k matrix (the matrix is not symmetric; MMRec uses the
    row sum for both sides, and so do we). `weighted=True,
    normalization='sym'`.

Items without a usable feature (a False entry in `mask`, or a zero row: the
feature store writes zeros for failed items) are never anyone's neighbour and
have no neighbours of their own: their slots hold similarity `-inf`, which
becomes an edge of weight 0 in the graph. MMRec divides by a zero norm and
fills the whole similarity matrix row and column with NaN instead. A row with
fewer than `k` valid candidates pads its remaining slots the same way.
Zero-degree rows (and, for `weighted=True`, rows whose weights do not sum to a
positive value) get weight 0 rather than inf/NaN, as MMRec's
`d_inv_sqrt[isinf] = 0`.

Ties are broken towards the lower item id (`lax.top_k`); torch's order on ties
is unspecified.
"""

from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from mmjax import types
from mmjax.graph import sparse

_NORMALIZATIONS = ('sym', 'row', 'none')
# Columns per group in the two-stage top-k of `cosine_topk`.
_GROUP = 32
# The similarity of an invalid or padding column (see `_search`).
_FAR = -1e30


@functools.partial(
    jax.jit, static_argnames=('k', 'exclude_self', 'block_size')
)
def cosine_topk(
    x: types.Array,
    k: int,
    mask: types.Array | None = None,
    *,
    exclude_self: bool = False,
    block_size: int = 512,
) -> tuple[types.Array, types.Array]:
  """The k most cosine-similar items of every item, blockwise.

  Differentiable in `x` through the returned values (the neighbour choice is
  not): the derivative of `values[i, s]` involves only the rows of `i` and of
  its neighbour, so the backward pass costs `I * k * F` instead of a second
  pass over the `I x I` similarities.

  Args:
    x: float [I, F] item features.
    k: neighbours per item, static, 1 <= k <= I.
    mask: bool [I], False for items without this feature; None means every
      item with a non-zero row.
    exclude_self: whether an item may not be its own neighbour.
    block_size: rows scored at once, static; memory is `block_size * I`.

  Returns:
    indices: int32 [I, k], neighbour ids, most similar first.
    values: float32 [I, k], their cosine similarity; `-inf` for an empty slot
      (the row's item is masked, or fewer than k valid candidates).
  """
  num_items = x.shape[0]
  if not 1 <= k <= num_items:
    raise ValueError(f'k={k} must lie in [1, {num_items}].')
  x = jnp.asarray(x, jnp.float32)
  valid = jnp.sum(x * x, axis=1) > 0  # [I]
  if mask is not None:
    valid = valid & jnp.asarray(mask, bool)
  return _topk(x, valid, k, exclude_self, min(block_size, num_items))


def _unit_rows(x: types.Array, valid: types.Array) -> types.Array:
  """Rows of x [I, F] scaled to unit norm; invalid rows zero."""
  sq_norm = jnp.sum(x * x, axis=1)
  # Zero rows are divided by 1, not 0, so they stay zero instead of NaN.
  xn = x * lax.rsqrt(jnp.where(valid, sq_norm, 1.0))[:, None]
  return jnp.where(valid[:, None], xn, 0.0)


def _row_blocks(a: types.Array, block_size: int) -> types.Array:
  """[I, ...] -> [num_blocks, block_size, ...], zero-padded."""
  num_blocks = -(-a.shape[0] // block_size)
  pad = num_blocks * block_size - a.shape[0]
  a = jnp.pad(a, ((0, pad),) + ((0, 0),) * (a.ndim - 1))
  return a.reshape((num_blocks, block_size) + a.shape[1:])


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4))
def _topk(x, valid, k, exclude_self, block_size):
  return _search(_unit_rows(x, valid), valid, k, exclude_self, block_size)


@_topk.defjvp
def _topk_jvp(k, exclude_self, block_size, primals, tangents):
  """d cos(i, j) = dxn_i . xn_j + xn_i . dxn_j, over the chosen pairs only.

  Differentiating through the search instead would scatter the tangent into
  the whole `[B, I]` similarity block and multiply it back (two more
  `I x I x F` matmuls per call); this rule gathers `I * k` row pairs.
  """
  x, valid = primals
  xn, dxn = jax.jvp(lambda x: _unit_rows(x, valid), (x,), (tangents[0],))
  indices, values = _search(xn, valid, k, exclude_self, block_size)

  # [I, k, F] gathers: the gradient's memory is I * k * F, not I * I.
  dvalues = (jnp.einsum('if,ikf->ik', dxn, xn[indices])
             + jnp.einsum('if,ikf->ik', xn, dxn[indices]))
  dvalues = jnp.where(jnp.isfinite(values), dvalues, 0.0)
  dindices = np.zeros(indices.shape, jax.dtypes.float0)
  return (indices, values), (dindices, dvalues)


def _search(xn, valid, k, exclude_self, block_size):
  """Exact blockwise top-k of the unit rows xn [I, F] (see `cosine_topk`)."""
  num_items = xn.shape[0]
  # An extra feature column carries a column bias, 0 for valid items and
  # _FAR below every cosine for invalid and padding columns, and the rows
  # carry a 1 there: the matmul itself then ranks invalid columns last, with
  # no masking pass over the [B, I] block (a full extra read and write of
  # it). _FAR + cos rounds to _FAR exactly, so invalid columns tie and go to
  # the lower id, as -inf did.
  rows = _row_blocks(jnp.pad(xn, ((0, 0), (0, 1)), constant_values=1.0),
                     block_size)
  row_ids = _row_blocks(jnp.arange(num_items), block_size)
  # Columns are padded to whole groups; padding columns are invalid.
  group = min(_GROUP, num_items)
  num_groups = -(-num_items // group)
  col_pad = num_groups * group - num_items
  bias = jnp.where(jnp.pad(valid, (0, col_pad)), 0.0, _FAR)
  cols = jnp.concatenate(
      [jnp.pad(xn, ((0, col_pad), (0, 0))), bias[:, None]], axis=1
  )  # [I', F + 1]
  num_cand = min(k, num_groups)

  def one_block(args):
    block, ids = args  # [B, F + 1], [B]
    sim = block @ cols.T  # [B, I']
    if exclude_self:
      sim = sim.at[jnp.arange(block_size), ids].set(_FAR, mode='drop')
    sim = sim.reshape(block_size, num_groups, group)
    # Exact two-stage top-k: an item in the row's top k lies in a group whose
    # maximum is among the k largest group maxima (each group ranked before
    # its group holds an element ranked before it), so the k best groups'
    # k * group candidates contain the answer. Groups are sorted by id so
    # that ties still go to the lower item id.
    _, best = lax.top_k(sim.max(axis=2), num_cand)  # [B, k]
    best = jnp.sort(best, axis=1)
    cand = jnp.take_along_axis(sim, best[:, :, None], axis=1)  # [B, k, g]
    cand_ids = best[:, :, None] * group + jnp.arange(group)
    values, pos = lax.top_k(cand.reshape(block_size, -1), k)
    return values, jnp.take_along_axis(
        cand_ids.reshape(block_size, -1), pos, axis=1
    )

  values, indices = lax.map(one_block, (rows, row_ids))
  values = values.reshape(-1, k)[:num_items]
  indices = indices.reshape(-1, k)[:num_items].astype(jnp.int32)
  values = jnp.where(valid[:, None] & (values > _FAR / 2), values, -jnp.inf)
  return indices, values


def normalize(
    indices: types.Array,
    values: types.Array,
    *,
    weighted: bool,
    normalization: str = 'sym',
) -> types.Array:
  """Edge weights [I, k] of a top-k graph, normalised as MMRec does.

  Args:
    indices: int [I, k] neighbour ids (from `cosine_topk`).
    values: float [I, k] similarities, `-inf` for empty slots.
    weighted: keep the similarity as the edge value (LATTICE) or use ones
      (FREEDOM).
    normalization: 'sym' (`D^-1/2 A D^-1/2`, D = row sums), 'row' (`D^-1 A`)
      or 'none'.

  Returns:
    float32 [I, k] weights; empty slots and zero-degree rows give 0.
  """
  if normalization not in _NORMALIZATIONS:
    raise ValueError(
        f'normalization={normalization!r}, expected one of {_NORMALIZATIONS}.'
    )
  present = jnp.isfinite(values)
  if weighted:
    a = jnp.where(present, values, 0.0)
  else:
    a = present.astype(jnp.float32)
  if normalization == 'none':
    return a
  deg = a.sum(axis=1)  # [I], row sums
  positive = deg > 0
  safe = jnp.where(positive, deg, 1.0)
  if normalization == 'row':
    inv = jnp.where(positive, 1.0 / safe, 0.0)
    return a * inv[:, None]
  inv_sqrt = jnp.where(positive, lax.rsqrt(safe), 0.0)
  return a * inv_sqrt[:, None] * inv_sqrt[indices]


def _stable_argsort(keys: types.Array, bound: int) -> types.Array:
  """Stable int32 argsort along the last axis of int keys in [0, bound)."""
  n = keys.shape[-1]
  if bound * n > 2**32:
    return jnp.argsort(keys, axis=-1, stable=True).astype(jnp.int32)
  # key * n + position is unique and keeps the stable order, so one unstable
  # sort of a single uint32 operand does it: XLA's CPU sort compares one
  # primitive operand natively, 5-10x faster than the (key, iota) pair sort
  # of `argsort` with its compiled comparator.
  pos = lax.broadcasted_iota(jnp.uint32, keys.shape, keys.ndim - 1)
  packed = keys.astype(jnp.uint32) * jnp.uint32(n) + pos
  packed = lax.sort(packed, dimension=keys.ndim - 1, is_stable=False)
  return (packed % jnp.uint32(n)).astype(jnp.int32)


def to_graph(indices: types.Array, weights: types.Array) -> sparse.Graph:
  """The Graph with edges `indices[i, s] -> i` of weight `weights[i, s]`.

  Jittable: row `i` of the top-k matrix becomes receiver `i`, so edges are
  already sorted by receiver; within a row they are sorted by sender, the
  layout `sparse.from_edges` produces. `propagate(g, h)[i] = sum_s
  weights[i, s] * h[indices[i, s]]`, MMRec's `torch.sparse.mm(adj, h)`.
  The transpose pattern (`t_indptr`, `t_cols`, `t_perm`, what
  `sparse.from_edges` fills on the host) is built here too, so `propagate`
  and its gradient do not sort the edges again on every call.

  Args:
    indices: int [I, k], ids in [0, I).
    weights: float [I, k] (several top-k matrices over the same items may be
      concatenated along axis 1; duplicate edges then add up, as a sum of
      sparse matrices does).

  Returns:
    Graph with I nodes and I * k edges.
  """
  num_items, k = indices.shape
  num_edges = num_items * k
  indices = jnp.asarray(indices, jnp.int32)
  order = _stable_argsort(indices, num_items)
  senders = jnp.take_along_axis(indices, order, axis=1).reshape(-1)
  weights = jnp.take_along_axis(weights, order, axis=1).reshape(-1)
  receivers = jnp.repeat(
      jnp.arange(num_items, dtype=jnp.int32), k,
      total_repeat_length=num_edges,
  )
  # The transpose, as `kernel.ops.transpose_pattern` builds it: edges in
  # stable sender order, and the row pointer over the sorted senders.
  t_perm = _stable_argsort(senders, num_items)
  t_indptr = jnp.searchsorted(
      senders[t_perm], jnp.arange(num_items + 1, dtype=jnp.int32),
      side='left',
  ).astype(jnp.int32)
  return sparse.Graph(
      senders=senders,
      receivers=receivers,
      weights=weights.astype(jnp.float32),
      indptr=jnp.arange(0, num_edges + 1, k, dtype=jnp.int32),
      num_nodes=num_items,
      t_indptr=t_indptr,
      t_cols=receivers[t_perm],
      t_perm=t_perm,
  )


def knn_graph(
    x: types.Array,
    k: int,
    mask: types.Array | None = None,
    *,
    weighted: bool = False,
    normalization: str = 'sym',
    exclude_self: bool = False,
    block_size: int = 512,
) -> sparse.Graph:
  """The normalised item-item kNN graph of features x [I, F].

  `weighted=False, normalization='sym'` is FREEDOM's graph;
  `weighted=True, normalization='sym'` is LATTICE's. See the module docstring
  for masked and zero items. Jittable with `k`, `weighted`, `normalization`,
  `exclude_self` and `block_size` static.

  Returns:
    Graph with I nodes and I * k edges (empty slots have weight 0).
  """
  indices, values = cosine_topk(
      x, k, mask, exclude_self=exclude_self, block_size=block_size
  )
  weights = normalize(
      indices, values, weighted=weighted, normalization=normalization
  )
  return to_graph(indices, weights)
