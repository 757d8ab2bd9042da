"""LightGCN (He et al., SIGIR 2020): linear propagation on the user-item graph.

Paper: X. He, K. Deng, X. Wang, Y. Li, Y. Zhang, M. Wang, "LightGCN:
Simplifying and Powering Graph Convolution Network for Recommendation",
SIGIR 2020.

Equations as implemented (MMRec's `LightGCN`, src/models/lightgcn.py):
  A_hat = D^-1/2 A D^-1/2, A the symmetric bipartite TRAIN graph on N = U + I
  E^(0) = [E_u; E_i],  E^(l+1) = A_hat E^(l),  l = 0..L-1
  E = 1/(L+1) sum_{l=0..L} E^(l)      (layer 0 included, uniform weights)
  s(u, i) = E[u] . E[U + i]
  L = mean_{(u,i,j)} -log(1e-10 + sigmoid(s(u, i) - s(u, j)))
      + reg_weight * (||E_u[b]||_F + ||E_i[pos_b]||_F + ||E_i[neg_b]||_F) / B
The regulariser is on the batch's EGO (layer-0) rows, with Frobenius norms
that are not squared, over the B real rows (MMRec's `EmbLoss`).

Defaults (MMRec configs/model/LightGCN.yaml): embed_dim 64, num_layers in
{1, 2, 3, 4}, reg_weight in {1e-2 .. 1e-6}, Adam lr 1e-3.

Differences from MMRec: degrees use rsqrt(max(deg, 1)) instead of
(deg + 1e-7)^-1/2 (identical for every node with an edge; an isolated node
has an empty row either way). Propagation goes through
`mmjax.graph.sparse.propagate` (a compiled CSR kernel where available). The
paper's own code also regularises the ego rows, but with squared norms / 2.
Elliot's LightGCN: same propagation; its regulariser is squared L2 of the ego
rows times reg/2 (not reproduced).
"""

from __future__ import annotations

from typing import Any

from mmjax import types
from mmjax.graph import propagation
from mmjax.models import context as ctx_lib
from mmjax.models import layers
from mmjax.models import losses


def init(key: types.PRNGKey, ctx: ctx_lib.ModelContext, cfg: Any
         ) -> types.Params:
  """{'user_emb': [U, D], 'item_emb': [I, D]}, BPR-MF's tables."""
  return layers.mf_tables(key, ctx.num_users, ctx.num_items,
                          cfg.embed_dim)


def embed(params: types.Params, ctx: ctx_lib.ModelContext, cfg: Any
          ) -> tuple[types.Array, types.Array]:
  return propagation.propagate_mean(ctx.graph, params['user_emb'],
                                    params['item_emb'], cfg.num_layers)


def loss(params: types.Params, batch: dict, ctx: ctx_lib.ModelContext,
         key: types.PRNGKey, cfg: Any) -> tuple[types.Array, dict]:
  del key  # No randomness in the loss.
  u_all, i_all = embed(params, ctx, cfg)
  return losses.bpr_ego_reg(u_all, i_all, params['user_emb'],
                            params['item_emb'], batch, cfg.reg_weight)
