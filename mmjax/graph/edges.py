"""Edge pruning and edge dropout with static shapes.

A `Graph` keeps its E edges on device; pruning and dropout only rewrite the
weights (a dropped edge gets weight 0), so every jitted function sees the same
shapes and compiles once. A zero-weight edge sends nothing through
`sparse.propagate`. Where the kept count is itself static (FREEDOM's pruning
keeps int(M (1 - dropout)) pairs), `degree_sensitive_prune(compact=True)`
returns only the kept edges instead: the same static shape every call, at
the kept edges' cost. Structure means "edges with a non-zero weight": an edge
already at 0 (dropped before, or padding) is never counted as present.

Undirected graphs (the symmetric user-item graph of `sparse.bipartite`) hold
each edge twice, `u -> i` and `i -> u`; `reverse_edges` pairs them on the host
so that both directions are kept or dropped together, as MMRec samples the
interaction matrix and then mirrors it.

Degree-sensitive pruning (FREEDOM, Zhou & Shen, ACM MM 2023; MMRec
`freedom.py: pre_epoch_processing`): from the M undirected edges, sample
`int(M * (1 - drop_ratio))` without replacement with probability proportional
to `1 / sqrt(d_u d_i)` (degrees of the full graph), then give each kept edge
`1 / sqrt(d'_u d'_i)` with the degrees d' of the kept graph. Sampling without
replacement (`torch.multinomial(p, n)`) is done exactly by the Gumbel-top-k
trick: the n largest `log p_e + Gumbel_e` are a draw from the same
distribution as n successive draws without replacement.
"""

from __future__ import annotations

import functools

import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from mmjax import types
from mmjax.graph import sparse

RENORMALIZE = ('none', 'scale', 'sym', 'row')


def reverse_edges(g: sparse.Graph) -> np.ndarray:
  """Host-side index of each edge's reverse: int32 [E], `rev[rev[e]] == e`.

  Args:
    g: a symmetric graph without self-loops and without duplicate edges.

  Raises:
    ValueError: when an edge has no reverse, is a self-loop or is repeated.
  """
  s = np.asarray(g.senders, np.int64)
  r = np.asarray(g.receivers, np.int64)
  n = np.int64(g.num_nodes)
  if np.any(s == r):
    e = int(np.flatnonzero(s == r)[0])
    raise ValueError(f'edge {e} is a self-loop on node {s[e]}; expected none.')
  code = r * n + s
  order = np.argsort(code, kind='stable')
  if np.any(np.diff(code[order]) == 0):
    e = int(order[np.flatnonzero(np.diff(code[order]) == 0)[0]])
    raise ValueError(f'edge {s[e]} -> {r[e]} appears more than once.')
  pos = np.searchsorted(code[order], s * n + r)
  pos = np.minimum(pos, len(code) - 1)
  rev = order[pos]
  missing = code[rev] != s * n + r
  if np.any(missing):
    e = int(np.flatnonzero(missing)[0])
    raise ValueError(
        f'edge {s[e]} -> {r[e]} has no reverse; expected a symmetric graph.'
    )
  return rev.astype(np.int32)


def _present(g: sparse.Graph) -> types.Array:
  return (g.weights != 0).astype(jnp.float32)


def _degrees(g: sparse.Graph, w: types.Array) -> types.Array:
  return jax.ops.segment_sum(
      w, g.receivers, num_segments=g.num_nodes, indices_are_sorted=True
  )


def _inv_sqrt(deg: types.Array) -> types.Array:
  return jnp.where(deg > 0, lax.rsqrt(jnp.where(deg > 0, deg, 1.0)), 0.0)


def sym_weights(g: sparse.Graph, keep: types.Array) -> types.Array:
  """`keep_e / sqrt(d_r d_s)` with d the kept (binary) in-degrees; 0 if absent.

  Args:
    g: graph (its weights are only used for structure when `keep` says so).
    keep: float or bool [E], 1 for a present edge.

  Returns:
    float32 [E].
  """
  keep = jnp.asarray(keep, jnp.float32)
  inv = _inv_sqrt(_degrees(g, keep))
  return keep * inv[g.receivers] * inv[g.senders]


def _canonical(reverse: types.Array) -> types.Array:
  """The id shared by an edge and its reverse: min(e, reverse[e])."""
  return jnp.minimum(jnp.arange(reverse.shape[0]), reverse)


@functools.partial(jax.jit, static_argnames=('drop_ratio', 'compact'))
def degree_sensitive_prune(
    key: types.PRNGKey,
    g: sparse.Graph,
    reverse: types.Array,
    drop_ratio: float,
    compact: bool = False,
) -> sparse.Graph:
  """FREEDOM's degree-sensitive edge pruning, with static shapes.

  Args:
    key: PRNG key.
    g: symmetric graph (e.g. `sparse.bipartite`, normalised or not); its
      non-zero weights define the edges.
    reverse: int32 [E] from `reverse_edges(g)`.
    drop_ratio: share of the M = E / 2 undirected edges to remove, static
      (MMRec's `dropout`, 0.8 or 0.9 in its FREEDOM grid). 0 returns the
      symmetric normalisation of `g`'s structure.
    compact: return only the kept edges (`sparse.keep_edges`, 2 per kept
      undirected edge): the same sums in the same order for finite inputs,
      at the kept edges' cost. Ignored where `drop_ratio` <= 0 (every edge
      is kept).

  Returns:
    The same edge list with weights `1 / sqrt(d'_r d'_s)` on the
    `int(M * (1 - drop_ratio))` kept undirected edges (both directions) and 0
    elsewhere; d' are the degrees of the kept graph. With `compact`, those
    kept edges only.
  """
  num_pairs = g.num_edges // 2
  present = _present(g)
  if drop_ratio <= 0.0:
    return g.with_weights(sym_weights(g, present))
  # MMRec's own expression, so the kept count matches it exactly (including
  # float truncation, e.g. int(1000 * (1 - 0.8)) == 199).
  num_keep = int(num_pairs * (1.0 - drop_ratio))
  canon = _canonical(reverse)
  inv = _inv_sqrt(_degrees(g, present))
  # Every present edge is sampled with probability proportional to
  # 1/sqrt(d_u d_i); a zero-weight edge can never be chosen.
  log_p = jnp.where(
      present > 0, jnp.log(inv[g.receivers] * inv[g.senders]), -jnp.inf
  )
  gumbel = jax.random.gumbel(key, (g.num_edges,), jnp.float32)[canon]
  score = log_p + gumbel
  # Rank one copy of each undirected edge (the canonical one).
  is_canon = canon == jnp.arange(g.num_edges)
  ranked = jnp.where(is_canon, score, -jnp.inf)
  _, chosen = lax.top_k(ranked, num_keep)  # canonical edge ids
  keep_canon = jnp.zeros(g.num_edges, bool).at[chosen].set(True)
  keep = keep_canon[canon] & (present > 0)
  pruned = g.with_weights(sym_weights(g, keep))
  if compact:
    return sparse.keep_edges(pruned, keep, 2 * num_keep)
  return pruned


@functools.partial(jax.jit, static_argnames=('rate', 'renormalize'))
def edge_dropout(
    key: types.PRNGKey,
    g: sparse.Graph,
    rate: float,
    reverse: types.Array | None = None,
    *,
    renormalize: str = 'none',
) -> sparse.Graph:
  """Drops each edge with probability `rate`, keeping E static.

  Args:
    key: PRNG key.
    g: graph.
    rate: drop probability in [0, 1), static.
    reverse: int32 [E] from `reverse_edges(g)` to drop both directions of an
      undirected edge together; None drops directed edges independently
      (message dropout).
    renormalize: what kept edges weigh, static:
      'none': their old weight (dropped ones 0);
      'scale': old weight / (1 - rate), the inverted dropout of NGCF's
        `sparse_dropout`, so the expected weight is unchanged;
      'sym': `1 / sqrt(d'_r d'_s)` from the kept structure (SGL-style edge
        dropout, FREEDOM's renormalisation);
      'row': `1 / d'_r`.

  Returns:
    Graph with the same edges and new weights.
  """
  if renormalize not in RENORMALIZE:
    raise ValueError(
        f'renormalize={renormalize!r}, expected one of {RENORMALIZE}.'
    )
  if not 0.0 <= rate < 1.0:
    raise ValueError(f'rate={rate} must lie in [0, 1).')
  u = jax.random.uniform(key, (g.num_edges,))
  if reverse is not None:
    u = u[_canonical(reverse)]
  keep = (u >= rate) & (g.weights != 0)
  if renormalize == 'none':
    w = jnp.where(keep, g.weights, 0.0)
  elif renormalize == 'scale':
    w = jnp.where(keep, g.weights / (1.0 - rate), 0.0)
  elif renormalize == 'sym':
    w = sym_weights(g, keep)
  else:
    deg = _degrees(g, keep.astype(jnp.float32))
    inv = jnp.where(deg > 0, 1.0 / jnp.where(deg > 0, deg, 1.0), 0.0)
    w = keep * inv[g.receivers]
  return g.with_weights(w.astype(jnp.float32))


def reverse_edges_sorted(g: sparse.Graph) -> types.Array:
  """Jittable `reverse_edges` for a graph built by `sparse.from_edges`.

  Relies on its layout (edges sorted by receiver, then sender): the reverse
  of `s -> r` is found by binary search for sender `r` in receiver `s`'s row.
  Use it inside `jit`, where the host version cannot run; the graph must be
  symmetric (an edge without a reverse gets an arbitrary index).

  Returns:
    int32 [E].
  """
  senders = jnp.asarray(g.senders)
  receivers = jnp.asarray(g.receivers)
  indptr = jnp.asarray(g.indptr)
  lo = indptr[senders]
  hi = indptr[senders + 1]
  steps = max(int(g.num_edges).bit_length(), 1)

  def body(_, bounds):
    lo, hi = bounds
    mid = (lo + hi) // 2
    right = senders[jnp.minimum(mid, g.num_edges - 1)] < receivers
    go = lo < hi
    return (jnp.where(go & right, mid + 1, lo),
            jnp.where(go & ~right, mid, hi))

  lo, _ = lax.fori_loop(0, steps, body, (lo, hi))
  return jnp.minimum(lo, g.num_edges - 1).astype(jnp.int32)
