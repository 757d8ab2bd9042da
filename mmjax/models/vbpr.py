"""VBPR (He & McAuley, AAAI 2016): BPR-MF plus a projected content factor.

Paper: R. He, J. McAuley, "VBPR: Visual Bayesian Personalized Ranking from
Implicit Feedback", AAAI 2016.

Equations as implemented (m runs over the modalities in the context's order,
`x_{i,m}` is item i's frozen feature of modality m, `mask_{i,m}` is 0 when the
item lacks it):
  f_i = concat_m(mask_{i,m} * x_{i,m})                       [F = sum_m F_m]
  p_i = W f_i + b                                            [D]
  p_i <- p_i / max(|p_i|, 1e-12)          (only if `normalize_projection`)
  user u: [gamma_u ; theta_u] in R^{2D};  item i: [gamma_i ; p_i] in R^{2D}
  x_ui = gamma_u . gamma_i + theta_u . p_i
  convention 'mmrec' (default):
    L = -mean_b log(1e-10 + sigmoid(x_ui - x_uj))
        + reg_weight * (|U_b|_F + |I+_b|_F + |I-_b|_F) / B
    with U_b, I+_b, I-_b the batch's stacked 2D-dim user/item rows and |.|_F
    the Frobenius norm (not squared: MMRec's `EmbLoss`).
  convention 'elliot':
    L = mean_b softplus(-clip(x_ui - x_uj, -80, 1e8))
        + reg_weight / 2 * (|gamma_u|^2 + |gamma_i|^2 + |gamma_j|^2
                            + |theta_u|^2 + |p_i|^2 + |p_j|^2) / B
  embed: user [gamma_u ; theta_u], item [gamma_i ; p_i] (their dot is x_ui).
B counts the batch's real (unpadded) rows; padded rows weigh 0. With k
negatives per positive the BPR term is averaged over them per row, and I-_b
holds all B*k negative rows (`losses.bpr_loss`/`emb_loss`).

Parameters: `user` [U, 2D] (gamma_u and theta_u side by side, as MMRec),
`item` [I, D], `proj_w` [F, D], `proj_b` [D]. The features are frozen in both
references, and here.

Defaults (MMRec configs/model/VBPR.yaml): embed_dim 64, reg_weight from
{2.0, 1.0, 0.1, 0.01, 1e-3, 1e-4, 1e-5}; init xavier-uniform embeddings and
xavier-normal projection with zero bias (MMRec's
`xavier_normal_initialization`).

Items lacking a modality: their block of f_i is zero (the store writes zero
rows and the mask is applied again in case a feature transform moved them),
so p_i comes from their other modalities; an item with no modality at all has
p_i = b (or b/|b|), the same content vector for all such items, and is ranked
by its ID factor gamma_i alone plus that shared constant.

Differences from the references:
  * MMRec (src/models/vbpr.py): `convention='mmrec'` reproduces it: no bias
    terms (beta_i, beta' of the paper), features concatenated text first then
    image; we concatenate in the context's modality order (a permutation of
    W's rows, so the model class is the same). MMRec can apply dropout to the
    embeddings in `forward`, but calls it with 0.0; we have none.
  * Elliot (Ducho-meets-Elliot external/models/vbpr): `convention='elliot'`
    (`model.normalize_projection=True` for the L2-normalised projection):
    softplus loss with the clipped difference, squared-L2 regulariser over the
    six factors. Elliot initialises theta_u from N(0, 1) (its xavier call hits
    gamma_u twice) and the projection with torch's default Linear init; we use
    xavier everywhere for both conventions.
  * The paper's item bias and visual bias term are in neither reference, and
    not here.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.models import layers
from mmjax.models import losses


def init(key: types.PRNGKey, ctx: Any, cfg: Any) -> types.Params:
  """Parameters for `ctx.num_users` users and `ctx.num_items` items."""
  d = cfg.embed_dim
  feats = layers.modalities(ctx)
  in_dim = sum(x.shape[1] for x, _ in feats)
  k_user, k_item, k_proj = (jax.random.fold_in(key, i) for i in range(3))
  return {
      'user': layers.xavier_uniform(k_user, (ctx.num_users, 2 * d)),
      'item': layers.xavier_uniform(k_item, (ctx.num_items, d)),
      'proj_w': layers.xavier_normal(k_proj, (in_dim, d)),
      'proj_b': jnp.zeros((d,), jnp.float32),
  }


def content(
    params: types.Params,
    feats: list[tuple[types.Array, types.Array]],
    normalize_projection: bool,
) -> types.Array:
  """Projected content vectors p [I, D] from (features [I, F_m], mask [I])."""
  f = jnp.concatenate(
      [x * m[:, None].astype(x.dtype) for x, m in feats], axis=1
  )
  p = layers.linear({'w': params['proj_w'], 'b': params['proj_b']},
                    f)  # [I, F] -> [I, D]
  if normalize_projection:
    p = layers.l2_normalize(p)
  return p


def _normalize_projection(cfg: Any) -> bool:
  flag = cfg.normalize_projection
  if flag is None:
    return cfg.convention == 'elliot'
  return bool(flag)


def embed(
    params: types.Params, ctx: Any, cfg: Any
) -> tuple[types.Array, types.Array]:
  """User [U, 2D] and item [I, 2D] embeddings; scores are their dot product."""
  p = content(params, layers.modalities(ctx), _normalize_projection(cfg))
  return params['user'], jnp.concatenate([params['item'], p], axis=1)


def loss(
    params: types.Params, batch: Any, ctx: Any, key: types.PRNGKey, cfg: Any
) -> tuple[types.Array, dict[str, types.Array]]:
  """BPR loss and the regulariser of the chosen convention (module doc)."""
  del key  # VBPR has no randomness in its loss.
  users, pos, mask = batch['users'], batch['pos'], batch['mask']
  neg = losses.negatives_2d(batch['neg'])  # [B, k]
  d = cfg.embed_dim
  p = content(params, layers.modalities(ctx), _normalize_projection(cfg))
  u = params['user'][users]  # [B, 2D]
  i_pos = jnp.concatenate([params['item'][pos], p[pos]], axis=-1)  # [B, 2D]
  i_neg = jnp.concatenate([params['item'][neg], p[neg]], axis=-1)  # [B,k,2D]
  s_pos = jnp.sum(u * i_pos, -1)  # [B]
  s_neg = losses.neg_scores(u, i_neg)  # [B, k]
  if cfg.convention == 'elliot':
    per = jax.nn.softplus(-jnp.clip(s_pos[:, None] - s_neg, -80.0, 1e8))
    bpr_value = losses.weighted_mean(per.mean(axis=1), mask)
    sq = 0.0
    for t in (u[..., :d], u[..., d:], i_pos[..., :d], i_pos[..., d:],
              i_neg[..., :d], i_neg[..., d:]):
      m = mask.reshape(mask.shape + (1,) * (t.ndim - 1))
      sq = sq + jnp.sum(m * t * t)
    reg = 0.5 * sq / jnp.maximum(mask.sum(), 1.0)
  else:
    bpr_value = losses.bpr_loss(s_pos, s_neg, mask)
    reg = losses.emb_loss(mask, u, i_pos, i_neg)
  total = bpr_value + cfg.reg_weight * reg
  return total, {'bpr': bpr_value, 'reg': reg}
