"""LGMRec (Guo et al., AAAI 2024): local graph and global hypergraph embeddings.

Paper: Z. Guo, J. Li, G. Li, C. Wang, S. Shi, B. Ruan, "LGMRec: Local and
Global Graph Learning for Multimodal Recommendation", AAAI 2024.

Equations as implemented (MMRec's `LGMRec`, src/models/lgmrec.py; m runs over
the M modalities in the context's order; A_hat = D^-1/2 A D^-1/2 is the
symmetric-normalised TRAIN graph on N = U + I nodes, R the raw [U, I] 0/1
interaction matrix, d_u the user's training degree; n(.) is the row-wise
L2 normalisation x / max(|x|, 1e-12); gs(z) = softmax((z + g) / tau) with g
i.i.d. Gumbel(0, 1) noise per entry (Gumbel-softmax, soft); drop(.) is
dropout with keep probability `keep_rate`, scaled by 1/keep_rate):
  Collaborative graph embedding (CGE), `cf_model` 'lightgcn':
    E^0 = [e_user ; e_item],  E^{l+1} = A_hat E^l,  C = mean_{l=0..L_ui} E^l
    ('mf': C = E^0)                                           [N, D]
  Modality graph embedding (MGE), per modality:
    f_m = x_m T_m            (frozen features x_m [I, F_m], T_m [F_m, D])
    g_m = A_hat^{L_mm} [diag(1/d_u) R f_m ; f_m]               [N, D]
  Hyperedges (K = `hyper_num` per modality, learnt through V_m [F_m, K]):
    H^i_m = gs(x_m V_m)                                        [I, K]
    H^u_m = gs(R x_m V_m)    (the user's summed item logits)   [U, K]
  Global hypergraph embedding (GHE), L_h = `num_hyper_layers` rounds, from
  the collaborative item rows C_I (training: H's go through drop(.)):
    z_0 = C_I;  lat = H^i_m^T z_l [K, D];  z_{l+1} = H^i_m lat;
    y_m = H^u_m lat (last round);   G_m = [y_m ; z_{L_h}]         [N, D]
  Final embeddings:
    E = C + sum_m n(g_m) + alpha * n(sum_m G_m)
    u = E_users,  i = E_items
  Loss on a batch of (u, i, j) with k negatives, B real rows:
    L_bpr = -mean log sigmoid(u.i - u.j)        (mean over j, then rows)
    ssl(a, b, Z) = sum_rows -log( exp(n(a).n(b) / tau) /
                                  sum_z exp(n(a).n(z) / tau) )
    L_hcl = sum_{m < m'} ssl(y_m[u], y_m'[u], y_m')
                         + ssl(z_m[i], z_m'[i], z_m')     (z = z_{L_h})
    L_reg = (|u_b|_F + |i_b|_F + |j_b|_F) / B   (final embeddings of the
            batch; Frobenius norms, not squared: MMRec's `reg_loss`)
    L = L_bpr + cl_weight * L_hcl + reg_weight * L_reg
  embed: E, computed without dropout (module `eval_gumbel` below for the
  noise).

Defaults (MMRec configs/model/LGMRec.yaml, the 'baby' point): embed_dim 64
(feat_embed_dim is the same: the sums above need it), cf_model lightgcn,
num_layers (n_ui_layers) 2, num_mm_layers 2, num_hyper_layers 1, hyper_num 4,
keep_rate 0.5, alpha 0.3, cl_weight 1e-4, reg_weight 1e-6, tau 0.2 (fixed in
MMRec), Adam lr 1e-3. The yaml's other published points: sports (1, 4, 0.4,
0.6) and clothing (2, 64, 0.2, 0.2) for (num_hyper_layers, hyper_num,
keep_rate, alpha): `configs/lgmrec.py:get_sweep`. Features are
frozen (`nn.Embedding.from_pretrained(freeze=True)`); ID embeddings, T_m and
V_m are xavier-uniform.

Items lacking a modality (mask False): their feature row is zero, so f_m and
the hyperedge logits are zero for them. f_m stays as MMRec computes it (a
zero row counts in the user's mean and the item gets its neighbours' content
through propagation). The item is put in no hyperedge of that modality (its
row of H^i_m is zeroed after the Gumbel-softmax: MMRec would give it a random
membership from the noise alone), so it neither feeds nor receives that
modality's global embedding. In L_hcl a positive item lacking m or m' is left
out of the item term of that pair, and items lacking m' are left out of its
denominator (their z_m' rows are zero). With every item present all of this
is exactly MMRec's computation.

Differences from the references:
  * MMRec fixes two modalities (v, t) and crashes with one (its forward then
    returns undefined hyper embeddings). Any M >= 1 works here: sums over
    modalities as above and L_hcl over every pair m < m' in the context's
    order, which for MMRec's names (image < text) is MMRec's single pair with
    the same orientation (anchor image, denominator over text); with the
    configs' names (textual < visual) the anchor is the text view. With one
    modality L_hcl = 0.
  * Randomness: the Gumbel noise and the dropout masks come from the step's
    key (JAX's PRNG), so runs match MMRec in distribution, not bit for bit.
    MMRec also draws fresh Gumbel noise at every evaluation, for every
    batch of users (`full_sort_predict` calls `forward`, and dropout is off
    there as here); `embed` has no key, so with
    `eval_gumbel` True (default) it uses one fixed draw (key 0) and is
    deterministic, and with False it uses the noise-free softmax(z / tau).
    `gumbel` False removes the noise in training too (step parity against
    MMRec with its `F.gumbel_softmax` replaced by the noise-free softmax).
  * Normalisation: A_hat uses rsqrt(max(deg, 1)) and 1/d_u instead of
    MMRec's (deg + 1e-7)^-1/2 and 1/(d_u + 1e-7) (a 1e-7 relative change for
    every node with an edge). L_hcl uses log-sum-exp instead of MMRec's
    exp-then-log (equal mathematically; no overflow).
  * Padded rows (mask 0) weigh nothing in every term; MMRec's last batch is
    simply shorter.
  * Elliot and Ducho-meets-Elliot have no LGMRec.

Cost: with two or more modalities a step is dominated by L_hcl's dense
[B, U] and [B, I] similarity matrices (as in MMRec), [U, U] or [I, I] where
the batch has more rows than the table (`_ssl`); the graph work is about a
dozen sparse products of [N, D].

The non-trainable edge weights of R and diag(1/d_u) R (on the context
graph's own edge list) come from `prepare(ctx, cfg)`; without it they are
recomputed in the step (cheap: one pass over the edges).
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.graph import propagation
from mmjax.graph import sparse
from mmjax.models import context as ctx_lib
from mmjax.models import layers
from mmjax.models import losses


def prepare(ctx: Any, cfg: Any) -> dict[str, types.Array]:
  """Edge weights of R ('sum') and diag(1/d_u) R ('mean') on ctx.graph.

  The context graph holds both directions of every training interaction,
  once each; the edges received by users (item -> user) carry R. Weights of
  the other edges are zero, so `propagate` of [0 ; x_items] gives [R x ; 0].

  Returns:
    {'sum': float32 [E], 'mean': float32 [E]}.
  """
  del cfg  # The weights depend on the graph alone.
  g = ctx.graph
  receivers = jnp.asarray(g.receivers)
  indptr = jnp.asarray(g.indptr)
  degree = (indptr[1:] - indptr[:-1]).astype(jnp.float32)  # [N] edge counts
  to_user = (receivers < ctx.num_users).astype(jnp.float32)
  return {'sum': to_user,
          'mean': to_user / jnp.maximum(degree[receivers], 1.0)}


def init(key: types.PRNGKey, ctx: Any, cfg: Any) -> types.Params:
  """ID embeddings, and per modality T_m [F_m, D] and V_m [F_m, K]."""
  d, k = cfg.embed_dim, cfg.hyper_num
  user, item = layers.id_tables(key, ctx.num_users, ctx.num_items, d)
  params = {
      'user': user,
      'item': item,
      'trs': [],
      'hyper': [],
  }
  for m, (x, _) in enumerate(layers.modalities(ctx)):
    params['trs'].append(layers.xavier_uniform(
        jax.random.fold_in(key, 2 + 2 * m), (x.shape[1], d)))
    params['hyper'].append(layers.xavier_uniform(
        jax.random.fold_in(key, 3 + 2 * m), (x.shape[1], k)))
  return params


def _to_users(graph: sparse.Graph, num_users: int,
              item_x: types.Array) -> types.Array:
  """[U, C] = W item_x for the user rows of a weighted copy of the graph."""
  zeros = jnp.zeros((num_users, item_x.shape[1]), item_x.dtype)
  return sparse.propagate(graph, jnp.concatenate([zeros, item_x]))[:num_users]


def _soft_assign(logits: types.Array, key: types.PRNGKey | None,
                 tau: float) -> types.Array:
  """Gumbel-softmax over the last axis (noise-free softmax when key is None).
  """
  if key is not None:
    logits = logits + jax.random.gumbel(key, logits.shape, logits.dtype)
  return jax.nn.softmax(logits / tau, axis=-1)


def forward(params: types.Params, ctx: Any, cfg: Any,
            noise_key: types.PRNGKey | None,
            dropout_key: types.PRNGKey | None):
  """The module doc's equations.

  Args:
    params: from `init`.
    ctx: the model context.
    cfg: the model section (options: mmjax/models/options.py).
    noise_key: Gumbel noise key, or None for the noise-free softmax.
    dropout_key: dropout key on the hyperedge assignments, or None for none.

  Returns:
    (users [U, D], items [I, D], per modality (y_m [U, D], z_m [I, D])).
  """
  mc = cfg
  num_users = ctx.num_users
  weights = ctx_lib.prepared(ctx, cfg, prepare)
  r_sum = ctx.graph.with_weights(weights['sum'])
  r_mean = ctx.graph.with_weights(weights['mean'])
  if mc.cf_model == 'lightgcn':
    cu, ci = propagation.propagate_mean(ctx.graph, params['user'],
                                     params['item'], mc.num_layers)
  elif mc.cf_model == 'mf':
    cu, ci = params['user'], params['item']
  else:
    raise ValueError(f"model.cf_model {mc.cf_model!r}: use 'lightgcn' or "
                     "'mf'.")
  tau = float(mc.tau)
  local = jnp.concatenate([cu, ci])  # [N, D]
  ghe = jnp.zeros_like(local)
  hyper_views = []
  for m, (x, mask) in enumerate(layers.modalities(ctx)):
    # MGE: projected content, user rows the mean of their items', smoothed.
    f = layers.linear({'w': params['trs'][m]}, x)  # [I, D]
    g = jnp.concatenate([_to_users(r_mean, num_users, f), f])
    for _ in range(mc.num_mm_layers):
      g = sparse.propagate(ctx.graph, g)
    local = local + layers.l2_normalize(g)
    # Hyperedge assignments from the frozen features.
    logits_i = layers.linear({'w': params['hyper'][m]}, x)  # [I, K]
    logits_u = _to_users(r_sum, num_users, logits_i)  # [U, K]
    keys = [None] * 4
    if noise_key is not None:
      keys[0:2] = [jax.random.fold_in(noise_key, 2 * m + j) for j in (0, 1)]
    if dropout_key is not None:
      keys[2:4] = [jax.random.fold_in(dropout_key, 2 * m + j)
                   for j in (0, 1)]
    h_i = _soft_assign(logits_i, keys[0], tau)
    h_u = _soft_assign(logits_u, keys[1], tau)
    if dropout_key is not None:
      # The config keeps MMRec's keep rate; dropout takes a drop rate.
      h_i = layers.dropout(keys[2], h_i, 1.0 - float(mc.keep_rate))
      h_u = layers.dropout(keys[3], h_u, 1.0 - float(mc.keep_rate))
    # An item without the modality belongs to none of its hyperedges.
    h_i = jnp.where(mask[:, None], h_i, 0.0)
    # GHE: item -> hyperedge -> item/user message passing.
    z, y = ci, None
    for _ in range(mc.num_hyper_layers):
      lat = h_i.T @ z  # [K, D]
      z = h_i @ lat
      y = h_u @ lat
    if y is None:
      raise ValueError('model.num_hyper_layers must be >= 1.')
    ghe = ghe + jnp.concatenate([y, z])
    hyper_views.append((y, z))
  out = local + mc.alpha * layers.l2_normalize(ghe)
  return out[:num_users], out[num_users:], hyper_views


def embed(params: types.Params, ctx: Any, cfg: Any
          ) -> tuple[types.Array, types.Array]:
  noise = None
  if cfg.gumbel and cfg.eval_gumbel:
    # One fixed draw (a training step's with key 0): repeatable evaluation.
    noise = jax.random.fold_in(jax.random.key(0), 0)
  users, items, _ = forward(params, ctx, cfg, noise, None)
  return users, items


def _ssl(a: types.Array, b: types.Array, rows: types.Array,
         weight: types.Array, tau: float,
         valid: types.Array | None = None) -> types.Array:
  """MMRec's `ssl_triple_loss`: InfoNCE summed over the weighted rows.

  The anchors are a[rows], their positives b[rows], and every row of b is a
  candidate. Where the batch has more rows than the table (ML-100K's 938
  users under a batch of 2048), each table row is taken once with the sum
  of its rows' weights: the same sum, a [T, T] block instead of [B, T].

  Args:
    a: [T, D] the anchors' view of every row of the table.
    b: [T, D] the other view (the candidates).
    rows: int [B], the batch's rows of the table.
    weight: [B], 0 for rows left out.
    tau: temperature.
    valid: bool [T] or None; False candidates are left out of the sum.
  """
  candidates = layers.l2_normalize(b)
  take, weight = losses.fold_onto_table(rows, weight, a.shape[0])
  if take is None:
    anchor, positive = layers.l2_normalize(a), candidates
  else:
    anchor = layers.l2_normalize(a[take])
    positive = layers.l2_normalize(b[take])
  pos = jnp.sum(anchor * positive, -1) / tau
  all_ = layers.pairwise_dots(anchor, candidates) / tau
  if valid is not None:
    # A large finite value, not -inf: no NaN even in a row weighted 0.
    all_ = jnp.where(valid[None, :], all_, -1e9)
  per = jax.nn.logsumexp(all_, axis=-1) - pos
  return jnp.sum(weight * per)


def loss(params: types.Params, batch: dict, ctx: Any, key: types.PRNGKey,
         cfg: Any) -> tuple[types.Array, dict]:
  mc = cfg
  users, pos, mask = batch['users'], batch['pos'], batch['mask']
  neg = losses.negatives_2d(batch['neg'])  # [B, k]
  noise_key = (jax.random.fold_in(key, 0) if mc.gumbel
               else None)
  u_all, i_all, views = forward(params, ctx, cfg, noise_key,
                                jax.random.fold_in(key, 1))
  u, i_pos, i_neg = u_all[users], i_all[pos], i_all[neg]  # [B,D] [B,k,D]
  bpr = losses.bpr_logsigmoid(jnp.sum(u * i_pos, -1),
                              losses.neg_scores(u, i_neg), mask)
  tau = float(mc.tau)
  masks = [m for _, m in layers.modalities(ctx)]
  hcl = jnp.zeros((), jnp.float32)
  for a, b in itertools.combinations(range(len(views)), 2):
    (ya, za), (yb, zb) = views[a], views[b]
    hcl = hcl + _ssl(ya, yb, users, mask, tau)
    item_w = mask * masks[a][pos] * masks[b][pos]
    hcl = hcl + _ssl(za, zb, pos, item_w, tau, valid=masks[b])
  reg = losses.emb_loss(mask, u, i_pos, i_neg)
  total = bpr + mc.cl_weight * hcl + mc.reg_weight * reg
  return total, {'bpr': bpr, 'hcl': hcl, 'reg': reg}
