"""Model-level graph operations built on `sparse.propagate`.

`mmjax.graph.sparse` holds the one door to sparse propagation (one hop,
A_hat x); the multi-layer schemes the models share live here, so that no
model imports another for them.
"""

from __future__ import annotations

import jax.numpy as jnp

from mmjax import types
from mmjax.graph import sparse


def propagate_mean(graph: sparse.Graph, user: types.Array, item: types.Array,
                   num_layers: int) -> tuple[types.Array, types.Array]:
  """LightGCN's mean of layers 0..L of E^(l+1) = A_hat E^(l) on [user; item].

  Args:
    graph: normalised graph on N = U + I nodes (items offset by U).
    user: [U, D].
    item: [I, D].
    num_layers: L.

  Returns:
    (users [U, D], items [I, D]).
  """
  x = jnp.concatenate([user, item], 0)  # [N, D]
  total = x
  for _ in range(num_layers):
    x = sparse.propagate(graph, x)
    total = total + x
  total = total / (num_layers + 1)
  return total[:user.shape[0]], total[user.shape[0]:]
