"""GRCN (Wei et al., ACM MM 2020): graph-refined convolution.

Paper: Y. Wei, X. Wang, L. Nie, X. He, T.-S. Chua, "Graph-Refined
Convolutional Network for Multimedia Recommendation with Implicit Feedback",
ACM MM 2020. Transcribed from MMRec (src/models/grcn.py, configs/model/
GRCN.yaml); every difference is listed below.

Equations as implemented (m runs over the modalities in the context's order,
M of them; the graph is the training user-item graph on N = U + I nodes,
items offset by U, each interaction held as two directed edges s -> r; the
edge weights below replace the graph's normalised ones, only its pattern is
used):
  Graph refining, per modality m:
    f_i^m = normalize(leaky_relu(x_i^m W_m + b_m))           [I, C]
    p_u^m = normalize(P_m[u])                                 [U, C]
    routing (model.routing='paper', num_routings times):
      a_ui = softmax over u's items i of <p_u^m, f_i^m>
      p_u^m <- normalize(p_u^m + sum_i a_ui f_i^m)
    (model.routing='mmrec', the default: no update; see the MMRec notes.)
    h^m = [p^m ; f^m]                                         [N, C]
    alpha^m_e = softmax over the edges e' with receiver r of
                <h^m_r, h^m_s(e')>            for e = s -> r  [E]
    c^m = h^m + A(alpha^m) h^m,   A(w)[r, s] = w_e           [N, C]
  Edge weights (model.weight_mode):
    'confid': w_e = max_m alpha^m_e * Conf[s, m]  (Conf [N, M] learnt,
              the SENDER's confidence),
    'max':    w_e = max_m alpha^m_e,
    'mean':   w_e = mean_m alpha^m_e;
    then w_e <- relu(w_e) when model.pruning.
  ID graph convolution (model.num_layers = L, 2 in MMRec):
    x^0 = normalize(E_id),  x^{l+1} = A(w) x^l,  z = sum_{l=0..L} x^l  [N, D]
  Representation: r = [z ; c^1 ; ... ; c^M]      [N, D + M C]
                  (model.fusion='id': r = z)
  Scores s(u, i) = <r_u, r_{U+i}>.
  Loss, batch (u, i, j) with k negatives:
    L = mean_b -log sigmoid(s(u,i) - s(u,j))   (mean over the k negatives)
        + reg_weight * ( mean_b [ |E_u|^2 + (|E_i|^2 + mean_k |E_j|^2) / 2 ] / D
                         + sum_m mean_b |P_m[u]|^2 / C
                         + mean(P_v^2) )
    where E = E_id (raw, not normalised) and P_v is the preference table of
    `model.full_preference_reg` (MMRec's visual modality), regularised over
    ALL users as MMRec does; None, or a modality the context lacks (MMRec
    without `v_feat`), leaves this term out.
  embed: (r[:U], r[U:]) with every edge kept.

Defaults (MMRec GRCN.yaml and the constants in grcn.py): embed_dim 64
(embedding_size), content_dim 64 (latent_embedding), num_layers 2 (EGCN's
two fixed layers), num_routings 3 (n_layers), weight_mode 'confid', pruning
True, fusion 'concat', has_act False, has_norm True, edge dropout 0;
reg_weight in {0.1, 0.01, 1e-3, 1e-4, 1e-5}, learning rate in {1, 0.1,
0.01, 1e-3, 1e-4}. Features are frozen (MMRec keeps `v_feat`/`t_feat` as
plain tensors); initialisation as MMRec: xavier-normal E_id [N, D], P_m
[U, C], Conf [N, M] and W_m (torch Linear weight, stored here [F_m, C]),
torch's default uniform bias b_m.

Edge dropout (model.dropout, 0 in MMRec): each interaction is kept with
probability 1 - dropout, both directions together (PyG's `dropout_adj` on
MMRec's one-directional edge list, which is then mirrored), drawn from the
`key` argument; a dropped edge carries no attention and no weight, E stays
static.

Items lacking a modality (mask False): f_i^m is 0, and every edge touching
such an item is left out of modality m: it takes no share of any softmax
(alpha^m_e = 0) and does not enter the max/mean of the edge weight, which
runs over the modalities the item has (an item with none has weight-0
edges: z_i = x^0_i and its content rows are 0). So c_i^m = 0 for it,
and its users' refined preferences ignore it. MMRec has no mask: a zero
feature row would pass its bias b_m through the MLP as if it were content.

Differences from MMRec (src/models/grcn.py):
  * Routing. MMRec's GATConv (PyG, flow source_to_target) aggregates at
    `edge_index[1]`; during routing it is called on the one-directional
    (user -> item) edge list, so users receive nothing and
    `preference + x_hat[:U]` is `preference`: routing is a no-op there, and
    so it is here with routing='mmrec'. routing='paper' updates users from
    their items as the paper's routing (and Elliot) intends.
  * Any number of modalities. MMRec handles image and text only, and
    text-only fails there (a typo, `conetent_rep`); its `mean` fusion uses
    undefined tensors. The extra all-user regulariser is MMRec's for its
    visual preference only: `full_preference_reg` names that modality.
  * The configured layer count `n_layers` is MMRec's number of routings;
    its ID convolution always has 2 layers (num_layers here).
  * MMRec computes `reg_confid_loss` and never adds it; neither do we.
  * MMRec ranks with `self.result`, the representation of the last
    training batch's forward pass, i.e. from the parameters before the
    epoch's last optimiser step; `embed` recomputes it from the current
    parameters.
  * BPR as -log_sigmoid (MMRec: log(sigmoid), which underflows to -inf for
    margins below about -88; equal otherwise).
  * Several negatives per positive: the BPR term and the negatives' share
    of the regulariser are averaged over them (MMRec has one).
Differences from Elliot (sisinflab/elliot external/models/grcn, whose
GRCN Ducho-meets-Elliot runs): ID embeddings xavier-uniform as two tables;
each ID layer output is L2-normalised before the sum; 10 routings that do
update users; weight_mode 'max' by default; the content regulariser is not
scaled by l_w; no all-user term. Switches here: routing='paper',
weight_mode='max', num_routings; the rest is not reproduced.

The frozen data (the reverse-edge index of the graph, for edge dropout)
comes from `prepare(ctx, cfg)`; without it in `ctx.extras` it is recomputed
in the step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.graph import edges
from mmjax.graph import sparse
from mmjax.models import context as ctx_lib
from mmjax.models import layers
from mmjax.models import losses

WEIGHT_MODES = ('confid', 'max', 'mean')
ROUTINGS = ('mmrec', 'paper')
FUSIONS = ('concat', 'id')


def _check(cfg: Any) -> None:
  m = cfg
  for field, allowed in (('weight_mode', WEIGHT_MODES),
                         ('routing', ROUTINGS), ('fusion', FUSIONS)):
    value = m[field]
    if value not in allowed:
      raise ValueError(f'model.{field}={value!r}; expected one of {allowed}.')


def prepare(ctx: Any, cfg: Any) -> dict[str, Any]:
  """GRCN's frozen data: the reverse of each edge of the user-item graph."""
  del cfg
  return {'reverse': edges.reverse_edges_sorted(ctx.graph)}


def init(key: types.PRNGKey, ctx: Any, cfg: Any) -> types.Params:
  _check(cfg)
  d, c = cfg.embed_dim, cfg.content_dim
  n = ctx.num_users + ctx.num_items
  feats = layers.modalities(ctx)
  params = {
      'id_embedding': layers.xavier_normal(jax.random.fold_in(key, 0),
                                           (n, d)),
      'conf': layers.xavier_normal(jax.random.fold_in(key, 1),
                                   (n, len(feats))),
      'preference': [],
      'mlp': [],
  }
  for m, (x, _) in enumerate(feats):
    k = jax.random.fold_in(key, 2 + m)
    f = x.shape[1]
    params['preference'].append(
        layers.xavier_normal(jax.random.fold_in(k, 0), (ctx.num_users, c)))
    # A `layers.Linear(C)`: xavier-normal w, torch's default b.
    params['mlp'].append({
        'w': layers.xavier_normal(jax.random.fold_in(k, 1), (f, c)),
        'b': layers.torch_uniform(f)(jax.random.fold_in(k, 2), (c,)),
    })
  return params


def segment_softmax(logits: types.Array, ok: types.Array, g: sparse.Graph
                    ) -> types.Array:
  """PyG's `softmax(src, index)` over each receiver's edges, masked.

  Args:
    logits: float32 [E].
    ok: bool [E]; edges left out get 0 and take no share.
    g: the graph (receiver-sorted).

  Returns:
    float32 [E], summing to 1 over each receiver's ok edges.
  """
  n = g.num_nodes
  r = g.receivers
  masked = jnp.where(ok, logits, -jnp.inf)
  top = jax.ops.segment_max(masked, r, num_segments=n,
                            indices_are_sorted=True)  # [N]
  top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
  # exp of the shifted logit only where ok, so no inf enters the gradient.
  ex = jnp.where(ok, jnp.exp(jnp.where(ok, logits - top[r], 0.0)), 0.0)
  denom = jax.ops.segment_sum(ex, r, num_segments=n, indices_are_sorted=True)
  return ex / (denom[r] + 1e-16)


def _content(params, ctx, cfg, graph, keep):
  """Per modality: content rep c^m [N, C] and attention alpha^m [E]."""
  u = ctx.num_users
  s, r = graph.senders, graph.receivers
  # The item end of each edge (users are < U on one side of every edge).
  item_of_edge = jnp.maximum(s, r) - u  # [E]
  reps, alphas, oks = [], [], []
  for m, (x, mask) in enumerate(layers.modalities(ctx)):
    mlp = params['mlp'][m]
    f = layers.linear(mlp, x)  # [I, C]
    f = layers.l2_normalize(jax.nn.leaky_relu(f))
    f = jnp.where(mask[:, None], f, 0.0)  # [I, C]
    p = layers.l2_normalize(params['preference'][m])  # [U, C]
    ok = keep & mask[item_of_edge]  # [E]
    if cfg.routing == 'paper':
      to_user = ok & (r < u)
      for _ in range(cfg.num_routings):
        h = jnp.concatenate([p, f])
        a = segment_softmax(jnp.sum(h[r] * h[s], -1), to_user, graph)
        p = layers.l2_normalize(
            p + sparse.propagate(graph.with_weights(a), h)[:u])
    h = jnp.concatenate([p, f])  # [N, C]
    a = segment_softmax(jnp.sum(h[r] * h[s], -1), ok, graph)  # [E]
    reps.append(h + sparse.propagate(graph.with_weights(a), h))
    alphas.append(a)
    oks.append(ok)
  return reps, jnp.stack(alphas, 1), jnp.stack(oks, 1)  # [E, M] twice


def _edge_weights(params, cfg, graph, alphas, oks):
  """w [E] from the per-modality attention (module doc, weight_mode)."""
  mode = cfg.weight_mode
  if mode == 'mean':
    count = oks.sum(1)
    w = jnp.where(count > 0, (alphas * oks).sum(1) / jnp.maximum(count, 1),
                  0.0)
  else:
    if mode == 'confid':
      alphas = alphas * params['conf'][graph.senders]  # [E, M]
    w = jnp.max(jnp.where(oks, alphas, -jnp.inf), axis=1)
    w = jnp.where(oks.any(1), w, 0.0)
  if cfg.pruning:
    w = jax.nn.relu(w)
  return w


def _forward(params, ctx, cfg, keep):
  graph = ctx.graph
  reps, alphas, oks = _content(params, ctx, cfg, graph, keep)
  w = _edge_weights(params, cfg, graph, alphas, oks)
  g_w = graph.with_weights(w.astype(jnp.float32))
  x = layers.l2_normalize(params['id_embedding'])  # [N, D]
  z, h = x, x
  for _ in range(cfg.num_layers):
    h = sparse.propagate(g_w, h)
    z = z + h
  if cfg.fusion == 'id':
    return z
  return jnp.concatenate([z] + reps, axis=1)  # [N, D + M C]


def _keep_all(ctx):
  return jnp.ones((ctx.graph.num_edges,), bool)


def embed(params: types.Params, ctx: Any, cfg: Any):
  rep = _forward(params, ctx, cfg, _keep_all(ctx))
  return rep[:ctx.num_users], rep[ctx.num_users:]


def loss(params, batch, ctx, key, cfg):
  _check(cfg)
  users, pos, mask = batch['users'], batch['pos'], batch['mask']
  neg = losses.negatives_2d(batch['neg'])  # [B, k]
  rate = float(cfg.dropout)
  if rate > 0.0:
    g = ctx.graph.with_weights(jnp.ones((ctx.graph.num_edges,), jnp.float32))
    reverse = ctx_lib.prepared(ctx, cfg, prepare)['reverse']
    dropped = edges.edge_dropout(key, g, rate, reverse)
    keep = dropped.weights != 0
  else:
    keep = _keep_all(ctx)
  rep = _forward(params, ctx, cfg, keep)
  u_n = ctx.num_users
  ru = rep[users]  # [B, D']
  s_pos = jnp.sum(ru * rep[u_n + pos], -1)  # [B]
  s_neg = losses.neg_scores(ru, rep[u_n + neg])  # [B, k]
  bpr = losses.bpr_logsigmoid(s_pos, s_neg, mask)

  e = params['id_embedding']
  d = e.shape[1]
  sq = losses.row_sq_norms
  id_rows = sq(e[users]) + 0.5 * (
      sq(e[u_n + pos]) + sq(e[u_n + neg]).mean(1))  # [B]
  reg = losses.weighted_mean(id_rows / d, mask)
  for p in params['preference']:
    reg = reg + losses.weighted_mean(sq(p[users]) / p.shape[1], mask)
  full = cfg.full_preference_reg
  names = list(ctx.features)
  if full is not None and full in names:
    reg = reg + jnp.mean(params['preference'][names.index(full)] ** 2)
  total = bpr + cfg.reg_weight * reg
  return total, {'bpr': bpr, 'reg': reg}
