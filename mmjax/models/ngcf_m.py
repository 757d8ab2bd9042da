"""NGCF-M: NGCF plus a VBPR-style content factor (Ducho meets Elliot, 2024).

Paper: NGCF is X. Wang et al., "Neural Graph Collaborative Filtering", SIGIR
2019; NGCF-M is the multimodal variant benchmarked in M. Attimonelli et al.,
"Ducho meets Elliot: Large-scale Benchmarks for Multimodal Recommendation"
(2024), transcribed from sisinflab/Ducho-meets-Elliot external/models/ngcf_m
(NGCFM.py, NGCFMModel.py, NGCFLayer.py).

Equations as implemented (m runs over the modalities in the context's order,
`x_{i,m}` is item i's frozen feature of modality m, `mask_{i,m}` is 0 when the
item lacks it):
  G_u, G_i = the NGCF layers of `mmjax.models.ngcf` on [E_u ; E_i] with the
             MEAN over layers 0..L (`model.aggregation='mean'`):
             G = 1/(L+1) sum_l E^l                         [N, D]
  f_i  = concat_m(mask_{i,m} * x_{i,m})                    [F = sum_m F_m]
  p_i  = (W f_i + b) / max(|W f_i + b|_2, 1e-12)           [D]
  s(u, i) = G_u . G_i + theta_u . p_i
  L = mean_b softplus(-clip(s(u, i) - s(u, j), -80, 1e8))
      + reg_weight / 2 * (|G_u[b]|^2 + |G_i[pos]|^2 + |G_i[neg]|^2
                          + |theta_u[b]|^2 + |p_pos|^2 + |p_neg|^2) / B
  embed: user [G_u ; theta_u], item [G_i ; p_i] (their dot is s(u, i)).
The graph layers (adjacency D~^-1 (A + I), bi-interaction, LeakyReLU 0.2,
message and node dropout, normalised layer outputs fed forward) and their
switches are NGCF's (see mmjax/models/ngcf.py). B counts the real rows; with
k negatives the BPR term is averaged over them per row and the regulariser
sums all B k negative rows.

Parameters: NGCF's (`user_emb`, `item_emb`, `layer_<l>`), plus `theta` [U, D]
(xavier-uniform, Elliot's `Tu`) and the projection `proj_w` [F, D], `proj_b`
[D] (torch's default Linear init). The features are frozen, as in Elliot.

Defaults (Elliot's class defaults / the Ducho-meets-Elliot benchmark grid):
embed_dim 64, num_layers 3, weight_size 64 (must equal embed_dim: the layer
mean), reg_weight 0.01 (grid {1e-5, 1e-2}), lr 5e-4 (grid {1e-4 .. 1e-2}),
batch 1024, node_dropout 0.0 / 0.1, message_dropout 0.5 / 0.1 (class default /
benchmark; our configs use 0.1 / 0.1), dropout_every 'epoch' (Elliot's:
NGCFM.train draws one `sampled_adj` before each epoch's batches).

Items lacking a modality: their block of f_i is zero (the store writes zero
rows and the mask is applied again in case a feature transform moved them),
so p_i comes from their other modalities; an item with no modality at all
has p_i = b / |b|, the same content vector for all such items, and is ranked
by its graph embedding plus that shared constant. Elliot has no mask (its
loaders give zero or missing rows), which is the same for zero rows.

Differences from Elliot's version:
  * Elliot concatenates the features in its `modalities` order (visual,
    then textual); we concatenate in the context's order (sorted names): a
    permutation of W's rows, the same model class. Any number of modalities
    (one fused LVLM vector, two, three) works the same way.
  * Node dropout follows Elliot's NGCF-M schedule by default: one dropped
    adjacency per epoch (`model.dropout_every='epoch'`, drawn by
    `pre_epoch`, which is NGCF's); 'step' redraws it at every step. Message
    dropout is drawn at every step in both, as in Elliot. See
    mmjax/models/ngcf.py.
  * Elliot's sampler draws B distinct users with one positive and one
    negative each; the engine's sampler is the shared BPR one.
  * Where Elliot's NGCF-M and NGCF differ, it is on purpose in Elliot and
    kept here: layer mean instead of concatenation, softplus of the clipped
    difference instead of -log sigmoid (equal except beyond +-80), and the
    content factor with its own regulariser terms.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.models import layers
from mmjax.models import losses
from mmjax.models import ngcf


def init(key: types.PRNGKey, ctx: Any, cfg: Any) -> types.Params:
  """Parameters for `ctx.num_users` users and `ctx.num_items` items."""
  d = cfg.embed_dim
  in_dim = sum(x.shape[1] for x, _ in layers.modalities(ctx))
  k_graph, k_theta, k_proj = (jax.random.fold_in(key, i) for i in range(3))
  proj = layers.linear_init(k_proj, in_dim, d)
  return {
      **ngcf.init(k_graph, ctx, cfg),
      'theta': layers.xavier_uniform(k_theta, (ctx.num_users, d)),
      'proj_w': proj['w'],
      'proj_b': proj['b'],
  }


def pre_epoch(ctx: Any, key: types.PRNGKey, cfg: Any) -> Any:
  """The epoch's node-dropped adjacency (NGCF's `pre_epoch`)."""
  return ngcf.pre_epoch(ctx, key, cfg)


def content(params: types.Params,
            feats: list[tuple[types.Array, types.Array]]) -> types.Array:
  """L2-normalised projected content p [I, D] from (features, mask) pairs."""
  f = jnp.concatenate(
      [x * m[:, None].astype(x.dtype) for x, m in feats], axis=1)  # [I, F]
  return layers.l2_normalize(layers.linear(
      {'w': params['proj_w'], 'b': params['proj_b']}, f))


def embed(params: types.Params, ctx: Any, cfg: Any
          ) -> tuple[types.Array, types.Array]:
  """User [U, 2D] and item [I, 2D] embeddings; scores are their dot."""
  gu, gi = ngcf.propagate(params, ctx, cfg, None)
  p = content(params, layers.modalities(ctx))
  return (jnp.concatenate([gu, params['theta']], axis=1),
          jnp.concatenate([gi, p], axis=1))


def loss(params: types.Params, batch: dict, ctx: Any, key: types.PRNGKey,
         cfg: Any) -> tuple[types.Array, dict[str, types.Array]]:
  """Elliot's NGCF-M loss (module doc)."""
  gu, gi = ngcf.propagate(params, ctx, cfg, key)
  p = content(params, layers.modalities(ctx))  # [I, D]
  users, pos, mask = batch['users'], batch['pos'], batch['mask']
  neg = losses.negatives_2d(batch['neg'])  # [B, k]
  g_u, g_pos, g_neg = gu[users], gi[pos], gi[neg]
  theta = params['theta'][users]  # [B, D]
  p_pos, p_neg = p[pos], p[neg]  # [B, D], [B, k, D]
  s_pos = jnp.sum(g_u * g_pos, -1) + jnp.sum(theta * p_pos, -1)  # [B]
  s_neg = (losses.neg_scores(g_u, g_neg)
           + losses.neg_scores(theta, p_neg))  # [B, k]
  per = jax.nn.softplus(-jnp.clip(s_pos[:, None] - s_neg, -80.0, 1e8))
  bpr = losses.weighted_mean(per.mean(axis=1), mask)
  reg = 0.5 * losses.squared_rows(mask, g_u, g_pos, g_neg, theta, p_pos, p_neg)
  return bpr + cfg.reg_weight * reg, {'bpr': bpr, 'reg': reg}
