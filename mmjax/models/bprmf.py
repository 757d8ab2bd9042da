"""BPR-MF (Rendle et al., UAI 2009): matrix factorisation trained with BPR.

Paper: S. Rendle, C. Freudenthaler, Z. Gantner, L. Schmidt-Thieme, "BPR:
Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.

Equations as implemented (MMRec's `BPR`, src/models/bpr.py):
  s(u, i) = e_u . e_i,    E_u [U, D], E_i [I, D], Xavier-uniform init
  L = mean_{(u,i,j)} -log(1e-10 + sigmoid(s(u, i) - s(u, j)))
      + reg_weight * (||E_u[b]||_F + ||E_i[pos_b]||_F + ||E_i[neg_b]||_F) / B
The norms are Frobenius norms of the batch's stacked rows, NOT squared, over
the B real (unpadded) rows: MMRec's `EmbLoss`. With k negatives per positive
each (u, i, j) triple is one BPR term and the negatives' norm is over all B*k
rows.

Defaults (MMRec configs/model/BPR.yaml): embed_dim 64, reg_weight searched in
{1e-2 .. 1e-5}, Adam lr 1e-3.

Differences from the references:
  * MMRec: none in the loss; padded rows of the last batch are masked here
    (MMRec's last batch is simply smaller).
  * Elliot's BPRMF adds item biases and a squared-L2 regulariser with separate
    weights per factor; not modelled here.
"""

from __future__ import annotations

from typing import Any

from mmjax import types
from mmjax.models import context as ctx_lib
from mmjax.models import layers
from mmjax.models import losses


def init(key: types.PRNGKey, ctx: ctx_lib.ModelContext, cfg: Any
         ) -> types.Params:
  """{'user_emb': [U, D], 'item_emb': [I, D]}."""
  return layers.mf_tables(key, ctx.num_users, ctx.num_items,
                          cfg.embed_dim)


def embed(params: types.Params, ctx: ctx_lib.ModelContext, cfg: Any
          ) -> tuple[types.Array, types.Array]:
  del ctx, cfg  # The tables are the embeddings.
  return params['user_emb'], params['item_emb']


def loss(params: types.Params, batch: dict, ctx: ctx_lib.ModelContext,
         key: types.PRNGKey, cfg: Any) -> tuple[types.Array, dict]:
  del key  # No randomness in the loss.
  u_all, i_all = embed(params, ctx, cfg)
  return losses.bpr_ego_reg(u_all, i_all, params['user_emb'],
                            params['item_emb'], batch, cfg.reg_weight)
