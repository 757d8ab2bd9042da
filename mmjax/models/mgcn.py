"""MGCN (Yu et al., ACM MM 2023): multi-view graph convolution.

Paper: P. Yu, Z. Tan, G. Lu, B.-K. Bao, "Multi-View Graph Convolutional
Network for Multimedia Recommendation", ACM MM 2023.

Equations as implemented (m runs over the M modalities in the context's
order; A the symmetric-normalised user-item graph D^-1/2 A D^-1/2 on
N = U + I nodes, R = A[:U, U:] its user-item block; S_m the weighted top-k
cosine graph of the INITIAL features x_m, self included, normalised
D^-1/2 S D^-1/2 with row sums: `mmjax.graph.knn`, `weighted=True`, built
once in `prepare` and frozen):
  behaviour-guided purifier:
    t_m = x_m W_m + b_m                                   [I, D]
    p_m = e_item * sigmoid(t_m G_m + c_m)                 [I, D]
  item-item view:    h_m = S_m^{L_mm} p_m,  u_m = R h_m,  E_m = [u_m; h_m]
  user-item view:    C^0 = [e_user; e_item], C^{l+1} = A C^l,
                     C = mean_{l=0..L_ui} C^l                [N, D]
  behaviour-aware fuser:
    a_m = tanh(E_m Q + q) v                               [N]
    alpha = softmax_m(a)                                  [N, M]
    common = sum_m alpha_m E_m
    sep_m = sigmoid(C P_m + r_m) * (E_m - common)
    side = (sum_m sep_m + common) / (M + 1)
  scores: all = C + side, u = all[:U], i = all[U:]
  L = -mean_b mean_k log sigmoid(u_b . i_pos - u_b . i_neg,k)
      + reg_weight * (|u_b|^2 + |i_pos|^2 + mean_k |i_neg,k|^2) / (2 B)
      + cl_weight * (InfoNCE(side_i[pos], C_i[pos])
                     + InfoNCE(side_u[users], C_u[users]))
  InfoNCE(a, b) = mean_b [-cos(a_b, b_b) / tau
                          + log sum_b' exp(cos(a_b, b_b') / tau)],
  the sum running over the batch's real rows (duplicates included, as in
  MMRec); B counts the real rows; tau = `model.temperature`.
  embed: (u, i).
The raw features x_m are trainable (MMRec: `from_pretrained(freeze=False)`)
but S_m stays the graph of their initial values.

Defaults (MMRec configs/model/MGCN.yaml): embed_dim 64, num_layers 2
(n_ui_layers), num_mm_layers 1 (n_layers), knn_k 10, reg_weight 1e-4,
cl_weight in {0.001, 0.01, 0.1} (MMRec's `cl_loss`, its only grid), lr 1e-3
with decay 0.96 ** (epoch / 50) (`learning_rate_scheduler: [0.96, 50]`);
temperature 0.2, hard-coded in MMRec's `calculate_loss` (its `self.tau =
0.5` is never used); xavier-uniform ID embeddings; torch's default Linear
init for every linear map (Q has a bias, v has none).

Items lacking a modality (mask False): their feature row stays zero (the
mask is re-applied to the trained features); they have no neighbours and
are nobody's neighbour in S_m, and their purified embedding p_m is zeroed
(which only matters for num_mm_layers = 0: with a layer or more, a node
without neighbours gets 0 anyway), so h_m = 0 for them: the item's view of
modality m is empty, it still enters the attention as a zero vector, and
its users' u_m sums only their other items. MMRec has no mask: a zero
feature row gives NaN cosine similarities.

Differences from the references:
  * MMRec (src/models/mgcn.py) is written for exactly two modalities (image
    and text). For M modalities the fuser's attention runs over M views and
    `side` divides by M + 1 (MMRec: 3 for M = 2, the same); with M = 1,
    alpha = 1, common = E_1, sep_1 = 0 and side = E_1 / 2.
  * MMRec draws one negative per positive; with k negatives the BPR term
    averages over them and the regulariser takes the mean of their squared
    norms (equal for k = 1).
  * MMRec divides the regulariser by the configured batch size
    (`train_batch_size`); we divide by the batch's real rows (equal except
    on a padded last batch). Padded rows are left out of the InfoNCE
    anchors and of its denominators.
  * InfoNCE is computed as -pos/tau + 1/tau + log sum exp(cos/tau - 1/tau)
    (logsumexp below tau = 0.05) instead of MMRec's
    log(exp(pos/tau) / sum exp(.)): the same value, without overflow.
    Where the batch has more rows than a table (users or items), it runs
    over the table's rows, each weighted by its count in the batch: the same
    sums with a [T, T] block instead of [B, B] (`info_nce`).
  * kNN ties go to the lower item id; a non-positive row sum gives weight 0
    here and NaN in MMRec.
  * Elliot (sisinflab/elliot) and Ducho-meets-Elliot (external/models) have
    no MGCN.

The frozen item graphs come from `prepare(ctx, cfg)` (the engine puts them
in `ctx.extras[cfg.name]`); without them they are rebuilt inside the
step (exact, but an I x I similarity, computed blockwise, per step). MGCN
draws no randomness: `key` is unused.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.graph import knn
from mmjax.graph import propagation
from mmjax.graph import sparse
from mmjax.models import context as ctx_lib
from mmjax.models import layers
from mmjax.models import losses

# Below this temperature InfoNCE takes the logsumexp path (exp(-2/tau) would
# underflow float32 near tau = 0.023).
_MIN_SHIFT_TEMPERATURE = 0.05


def prepare(ctx: Any, cfg: Any) -> dict[str, Any]:
  """MGCN's frozen data: one kNN graph S_m per modality (I * k edges each)."""
  return {'item_graphs': [
      knn.knn_graph(x, cfg.knn_k, mask, weighted=True,
                    normalization='sym')
      for x, mask in layers.modalities(ctx)]}


def init(key: types.PRNGKey, ctx: Any, cfg: Any) -> types.Params:
  """MMRec's initialisation; parameter names follow MMRec's modules.

  Returns:
    {'user' [U, D], 'item' [I, D] (user_embedding, item_id_embedding),
     'trs': [{'w' [F_m, D], 'b' [D]}] (image_trs, text_trs),
     'gate': [{'w' [D, D], 'b' [D]}] (gate_v, gate_t),
     'prefer': [{'w' [D, D], 'b' [D]}] (gate_image_prefer, gate_text_prefer),
     'query': {'w' [D, D], 'b' [D], 'v' [D, 1]} (query_common.0 and .2),
     'features': [x_m [I, F_m]] when `model.train_features` (default)}.
  """
  d = cfg.embed_dim
  feats = layers.modalities(ctx)
  num = len(feats)

  def k(i):
    return jax.random.fold_in(key, i)

  user, item = layers.id_tables(key, ctx.num_users, ctx.num_items, d)
  query = layers.linear_init(k(2), d, d)
  params = {
      'user': user,
      'item': item,
      'query': {'w': query['w'], 'b': query['b'],
                'v': layers.linear_init(k(3), d, 1)['w']},
      'trs': [layers.linear_init(k(10 + m), x.shape[1], d)
              for m, (x, _) in enumerate(feats)],
      'gate': [layers.linear_init(k(10 + num + m), d, d)
               for m in range(num)],
      'prefer': [layers.linear_init(k(10 + 2 * num + m), d, d)
                 for m in range(num)],
  }
  if cfg.train_features:
    params['features'] = layers.masked_features(ctx)
  return params


def forward(params: types.Params, ctx: Any, cfg: Any
            ) -> tuple[types.Array, types.Array]:
  """The embeddings of every node (module doc), users first.

  Returns:
    (all_embeddings [N, D], side [N, D], content [N, D]), users first.
  """
  graphs = ctx_lib.prepared(ctx, cfg, prepare)['item_graphs']
  feats = layers.modalities(ctx)
  num_users = ctx.num_users
  # User-item view (LightGCN mean of layers).
  c_u, c_i = propagation.propagate_mean(ctx.graph, params['user'],
                                     params['item'], cfg.num_layers)
  content = jnp.concatenate([c_u, c_i], axis=0)  # [N, D]
  # Item-item views, one per modality.
  hs = []
  for m, (x, mask) in enumerate(feats):
    if 'features' in params:
      x = params['features'][m]
    x = jnp.where(mask[:, None], x, 0.0)
    t = layers.linear(params['trs'][m], x)  # [I, D]
    h = params['item'] * jax.nn.sigmoid(layers.linear(params['gate'][m], t))
    h = jnp.where(mask[:, None], h, 0.0)
    for _ in range(cfg.num_mm_layers):
      h = sparse.propagate(graphs[m], h)
    hs.append(h)
  # u_m = R h_m for every modality in one product: the user rows of
  # A [0; h] are R h (A's item-item block is empty).
  h_all = jnp.concatenate(hs, axis=1)  # [I, M D]
  u_all = sparse.propagate(ctx.graph, jnp.concatenate(
      [jnp.zeros((num_users, h_all.shape[1]), h_all.dtype), h_all],
      axis=0))[:num_users]  # [U, M D]
  d = params['item'].shape[1]
  views = [jnp.concatenate([u_all[:, m * d:(m + 1) * d], h], axis=0)
           for m, h in enumerate(hs)]  # M x [N, D]
  # Behaviour-aware fuser.
  q = params['query']
  att = jnp.concatenate(
      [layers.apply(layers.AttentionScore(d), q, e) for e in views],
      axis=1)  # [N, M]
  alpha = jax.nn.softmax(att, axis=-1)
  common = sum(alpha[:, m:m + 1] * e for m, e in enumerate(views))
  side = common
  for m, e in enumerate(views):
    prefer = jax.nn.sigmoid(layers.linear(params['prefer'][m], content))
    side = side + prefer * (e - common)
  side = side / (len(views) + 1)
  return content + side, side, content


def embed(params: types.Params, ctx: Any, cfg: Any
          ) -> tuple[types.Array, types.Array]:
  all_emb, _, _ = forward(params, ctx, cfg)
  return all_emb[:ctx.num_users], all_emb[ctx.num_users:]


def info_nce(a: types.Array, b: types.Array, rows: types.Array,
             mask: types.Array, temperature: float) -> types.Array:
  """MMRec's InfoNCE between two views of the batch's rows, padded rows out.

  The batch's anchors are a[rows], their positives b[rows], and each
  anchor's candidates are b[rows] over the batch's real rows, duplicates
  included (as MMRec's, on the gathered rows).

  Where the batch has more rows than the table (ML-100K's 938 users under a
  batch of 2048), the same sums are taken over the table instead: a row
  drawn c times is c equal anchors, and c equal candidates in every
  denominator, so each table row enters once with weight c (its count among
  the real rows). Same value and gradient (up to float summation order),
  with a [T, T] block in place of the [B, B] one. (On a data-parallel mesh
  the [B, B] block is split by rows and the [T, T] one, built from the
  replicated tables, is not: with 8 devices at ML-100K's size each device's
  block grows from 2048 x 256 to 938 x 938 entries.)

  Args:
    a: [T, D] first view (anchors) of every row of the table.
    b: [T, D] second view.
    rows: int [B], the batch's rows of the table.
    mask: float32 [B], 1 for real rows.
    temperature: tau.

  Returns:
    float32 [], mean over real anchors of -log softmax_j(cos(a, b_j)/tau)
    at the positive, the softmax over real rows j.
  """
  take, weight = losses.fold_onto_table(rows, mask, a.shape[0])
  if take is not None:
    a, b = a[take], b[take]
  a, b = layers.l2_normalize(a), layers.l2_normalize(b)
  pos = jnp.sum(a * b, axis=-1) / temperature
  logits = layers.pairwise_dots(a, b) / temperature
  if temperature >= _MIN_SHIFT_TEMPERATURE:
    # |cos| <= 1, so exp(logits - 1/tau) lies in [exp(-2/tau), 1]: no
    # overflow, and no underflow to 0 for tau above the threshold. This
    # skips logsumexp's max pass and select over the [B, B] (or [T, T])
    # block, which cost as much as the product itself (MGCN's dominant cost).
    shift = 1.0 / temperature
    total = jnp.exp(logits - shift) @ weight  # columns by their counts
    per = jnp.log(jnp.maximum(total, 1e-30)) + shift - pos
  else:
    # log of each column's count (0 or 1 on the batch path); the where
    # keeps log(0) out.
    count = jnp.where(weight > 0, weight, 1.0)
    logits = jnp.where(weight[None, :] > 0, logits + jnp.log(count)[None, :],
                       -jnp.inf)
    per = jax.nn.logsumexp(logits, axis=1) - pos
  return losses.weighted_mean(jnp.where(weight > 0, per, 0.0), weight)


def loss(params, batch, ctx, key, cfg):
  del key  # MGCN draws no randomness.
  users, pos, mask = batch['users'], batch['pos'], batch['mask']
  neg = batch['neg']
  neg = neg[:, None] if neg.ndim == 1 else neg  # [B, k]
  all_emb, side, content = forward(params, ctx, cfg)
  nu = ctx.num_users
  u = all_emb[:nu][users]  # [B, D]
  i_pos = all_emb[nu:][pos]  # [B, D]
  i_neg = all_emb[nu:][neg]  # [B, k, D]
  s_pos = jnp.sum(u * i_pos, -1)
  s_neg = losses.neg_scores(u, i_neg)
  mf = losses.bpr_logsigmoid(s_pos, s_neg, mask)
  sq = (jnp.sum(u * u, -1) + jnp.sum(i_pos * i_pos, -1)
        + jnp.mean(jnp.sum(i_neg * i_neg, -1), axis=1))  # [B]
  reg = 0.5 * jnp.sum(sq * mask) / jnp.maximum(mask.sum(), 1.0)
  tau = float(cfg.temperature)
  cl = (info_nce(side[nu:], content[nu:], pos, mask, tau)
        + info_nce(side[:nu], content[:nu], users, mask, tau))
  total = mf + cfg.reg_weight * reg + cfg.cl_weight * cl
  return total, {'bpr': mf, 'reg': reg, 'cl': cl}
