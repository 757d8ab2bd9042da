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

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.models import context as ctx_lib


def xavier_uniform(key: types.PRNGKey, shape: tuple[int, int]) -> types.Array:
  """torch.nn.init.xavier_uniform_ of a [fan_out, fan_in] table."""
  bound = (6.0 / (shape[0] + shape[1])) ** 0.5
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def init(key: types.PRNGKey, ctx: ctx_lib.ModelContext, cfg: Any
         ) -> types.Params:
  """{'user_emb': [U, D], 'item_emb': [I, D]}."""
  d = cfg.model.embed_dim
  return {
      'user_emb': xavier_uniform(jax.random.fold_in(key, 0),
                                 (ctx.num_users, d)),
      'item_emb': xavier_uniform(jax.random.fold_in(key, 1),
                                 (ctx.num_items, d)),
  }


def embed(params: types.Params, ctx: ctx_lib.ModelContext, cfg: Any
          ) -> tuple[types.Array, types.Array]:
  del ctx, cfg  # The tables are the embeddings.
  return params['user_emb'], params['item_emb']


def bpr_terms(u_all: types.Array, i_all: types.Array, batch: dict
              ) -> types.Array:
  """BPR loss of a batch given final embeddings [U, D] and [I, D]."""
  neg = ctx_lib.negatives_2d(batch['neg'])
  u = u_all[batch['users']]  # [B, D]
  pos_s = jnp.sum(u * i_all[batch['pos']], -1)  # [B]
  neg_s = jnp.einsum('bd,bkd->bk', u, i_all[neg])  # [B, k]
  return ctx_lib.bpr_loss(pos_s, neg_s, batch['mask'])


def ego_reg(params: types.Params, batch: dict) -> types.Array:
  """MMRec's EmbLoss on the batch's rows of the ID tables (module doc)."""
  neg = ctx_lib.negatives_2d(batch['neg'])
  return ctx_lib.emb_loss(
      batch['mask'], params['user_emb'][batch['users']],
      params['item_emb'][batch['pos']], params['item_emb'][neg])


def loss(params: types.Params, batch: dict, ctx: ctx_lib.ModelContext,
         key: types.PRNGKey, cfg: Any) -> tuple[types.Array, dict]:
  del key  # No randomness in the loss.
  u_all, i_all = embed(params, ctx, cfg)
  mf = bpr_terms(u_all, i_all, batch)
  reg = ego_reg(params, batch)
  return mf + cfg.model.reg_weight * reg, {'bpr': mf, 'reg': reg}
