"""LATTICE (Zhang et al., ACM MM 2021): learnt item-item latent structure.

Paper: J. Zhang, Y. Zhu, Q. Liu, S. Wu, S. Wang, L. Wang, "Mining Latent
Structures for Multimedia Recommendation", ACM MM 2021.

Equations as implemented (m runs over the modalities in the context's order;
knn_w(z) is the weighted top-k cosine matrix of rows z, self included, and
N(.) the D^-1/2 . D^-1/2 normalisation with row sums; `mmjax.graph.knn`):
  original: S_m = N(knn_w(x_m^(0)))   from the initial features, frozen
  learnt:   t_m = x_m W_m + b_m,  alpha = softmax(modal_weight)
            S~  = N(sum_m alpha_m knn_w(t_m))      (see graph_every)
  item graph: S = (1 - lambda) S~ + lambda sum_m alpha_m S_m
  h = S^{L_mm} e_item
  user-item (cf_model lightgcn):
    convention 'mmrec':  A~ = D^-1 (A + I)  (self-loops, row-normalised),
                         E^{l+1} = A~ E^l, E = mean_{l=0..L} E^l
    convention 'elliot': A~ = D^-1 (A + I) D^-1,
                         E^{l+1} = l2norm(A~ E^l), E = mean_{l=0..L} E^l
    D the degrees of A + I (binary A, the TRAIN graph's structure)
  u = E_users,  i = E_items + l2norm(h)
  L = -mean log sigmoid(u.i_pos - u.i_neg)
      + reg_weight * (|u_b|^2 + |i_pos|^2 + |i_neg|^2) / (2 B)
  embed: (u, i), with the learnt graph built from the current parameters.
Gradients reach W_m, b_m, modal_weight and the features through the values
of the learnt top-k graph (the neighbour choice itself is not differentiable).

When the item graph S is built (`model.graph_every`):
  'epoch' (default, MMRec): at the first step of each epoch, from the
    parameters at the epoch's start, with gradient through it in that step;
    the epoch's later steps reuse it detached (`epoch_cache`, the loop's
    per-epoch cache; MMRec's `build_item_graph`, set by
    `pre_epoch_processing` and cleared by the first `calculate_loss`).
    One O(I^2 D) similarity per epoch instead of per step (ML-100K, 22
    steps of 2048: an epoch 2.8x faster on one thread).
  'step': rebuilt, with gradient, at every step.
Evaluation (`embed`) builds it from the current parameters in both modes, as
MMRec's `full_sort_predict` does.

Defaults (MMRec configs/model/LATTICE.yaml): embed_dim 64 (feat_embed_dim
the same), knn_k 10, lambda_coeff 0.9, num_mm_layers 1, num_layers 2
(len(weight_size)), reg_weight in {0, 1e-5, 1e-4, 1e-3}, lr in {1e-4, 5e-4,
1e-3, 5e-3} with decay (0.96, 50); raw features trainable
(`from_pretrained(freeze=False)`); modal_weight starts at 1/M (softmax
uniform); torch's default Linear init for W_m.

Items lacking a modality (mask False): no neighbours and nobody's neighbour
in that modality's original and learnt graphs; their feature rows stay zero.
An item lacking all modalities has h = 0 and i = E_items.

Differences from the references:
  * MMRec (src/models/lattice.py): graph_every='epoch' does as MMRec;
    'step' is ours. The similarity is computed blockwise, so it never holds
    I x I; its gradient reads only the I * k chosen pairs, and the graph
    carries its transpose pattern, so neither propagation sorts. MMRec uses
    dense I x I matrices throughout (its memory limit); ours are top-k
    sparse. Its 'ngcf' and 'mf' cf_models are not provided. MMRec divides
    the regulariser by the configured batch size; we divide by the batch's
    real rows (equal except on a padded last batch). A non-positive row sum
    gives weight 0 here, NaN in MMRec.
  * Elliot (Ducho-meets-Elliot external/models/lattice): convention
    'elliot' uses its user-item graph D^-1 (A + I) D^-1 and its per-layer
    L2 normalisation; its item graphs set the diagonal to 1 before
    normalising, which equals the self-similarity kept here (cos = 1) for
    every item with a feature.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mmjax import models
from mmjax import types
from mmjax.graph import knn
from mmjax.graph import sparse
from mmjax.models import context as ctx_lib
from mmjax.models import layers
from mmjax.models import losses


def init(key: types.PRNGKey, ctx: Any, cfg: Any) -> types.Params:
  d = cfg.embed_dim
  feats = layers.modalities(ctx)
  user, item = layers.id_tables(key, ctx.num_users, ctx.num_items, d)
  params = {
      'user': user,
      'item': item,
      'proj': [layers.linear_init(jax.random.fold_in(key, 2 + m), x.shape[1], d)
               for m, (x, _) in enumerate(feats)],
      'modal_weight': jnp.full((len(feats),), 1.0 / len(feats), jnp.float32),
  }
  if cfg.train_features:
    params['features'] = layers.masked_features(ctx)
  return params


def prepare(ctx: Any, cfg: Any) -> dict[str, Any]:
  """The frozen original graphs S_m: (indices [I, k], weights [I, k]) each."""
  out = []
  for x, mask in layers.modalities(ctx):
    idx, val = knn.cosine_topk(x, cfg.knn_k, mask)
    out.append((idx, knn.normalize(idx, val, weighted=True)))
  return {'original': out}


def item_graph(params: types.Params, ctx: Any, cfg: Any) -> sparse.Graph:
  """S = (1 - lambda) S~ + lambda sum_m alpha_m S_m, I * 2 M k edges."""
  lam = float(cfg.lambda_coeff)
  alpha = jax.nn.softmax(params['modal_weight'])
  feats = layers.modalities(ctx)
  learnt_idx, learnt_val = [], []
  for m, (proj, (x, mask)) in enumerate(zip(params['proj'], feats)):
    if 'features' in params:
      x = params['features'][m]
    t = layers.linear(proj, jnp.where(mask[:, None], x, 0.0))  # [I, D]
    idx, val = knn.cosine_topk(t, cfg.knn_k, mask)
    learnt_idx.append(idx)
    # Empty slots (-inf) stay -inf; multiplying -inf itself by alpha would
    # give a NaN gradient for alpha (-inf * 0), hence the inner where.
    ok = jnp.isfinite(val)
    learnt_val.append(
        jnp.where(ok, alpha[m] * jnp.where(ok, val, 0.0), -jnp.inf))
  idx = jnp.concatenate(learnt_idx, axis=1)
  learnt = knn.normalize(idx, jnp.concatenate(learnt_val, axis=1),
                         weighted=True)
  original = ctx_lib.prepared(ctx, cfg, prepare)['original']
  indices = [idx] + [o_idx for o_idx, _ in original]
  weights = [(1.0 - lam) * learnt] + [
      lam * alpha[m] * o_w for m, (_, o_w) in enumerate(original)
  ]
  return knn.to_graph(jnp.concatenate(indices, axis=1),
                      jnp.concatenate(weights, axis=1))


def _ui_propagate(ctx, cfg, x):
  """E^{L} layers' mean on A~ (see the module doc for both conventions)."""
  g = ctx.graph
  present = (g.weights != 0).astype(jnp.float32)
  deg = jax.ops.segment_sum(present, g.receivers, num_segments=g.num_nodes,
                            indices_are_sorted=True) + 1.0  # + self-loop
  inv = 1.0 / deg
  elliot = cfg.convention == 'elliot'
  if elliot:
    graph = g.with_weights(present * inv[g.receivers] * inv[g.senders])
    self_w = inv * inv
  else:
    graph = g.with_weights(present * inv[g.receivers])
    self_w = inv
  total = x
  for _ in range(cfg.num_layers):
    x = sparse.propagate(graph, x) + self_w[:, None] * x
    if elliot:
      x = layers.l2_normalize(x)
    total = total + x
  return total / (cfg.num_layers + 1)


def _forward(params, ctx, cfg, s):
  """(u, i) of every user and item, on item graph `s`."""
  h = params['item']
  for _ in range(cfg.num_mm_layers):
    h = sparse.propagate(s, h)
  e = _ui_propagate(ctx, cfg,
                    jnp.concatenate([params['user'], params['item']], 0))
  return e[:ctx.num_users], e[ctx.num_users:] + layers.l2_normalize(h)


def embed(params: types.Params, ctx: Any, cfg: Any):
  return _forward(params, ctx, cfg, item_graph(params, ctx, cfg))


GRAPH_EVERY = ('epoch', 'step')


def epoch_cache(params: types.Params, ctx: Any, cfg: Any
                ) -> sparse.Graph | None:
  """The epoch's item graph S (graph_every='epoch'), else None.

  The loop calls it at the epoch's first step, inside the loss, and keeps
  the result, detached, for the epoch's other steps (mmjax/models).

  Raises:
    ValueError: an unknown `graph_every`.
  """
  every = cfg.graph_every
  if every not in GRAPH_EVERY:
    raise ValueError(f'model.graph_every={every!r}: expected one of '
                     f'{GRAPH_EVERY}.')
  if every == 'step':
    return None
  return item_graph(params, ctx, cfg)


def loss(params, batch, ctx, key, cfg):
  del key  # LATTICE's loss has no randomness.
  users, pos, mask = batch['users'], batch['pos'], batch['mask']
  neg = losses.negatives_2d(batch['neg'])  # [B, k]
  # The epoch's graph from the loop (graph_every='epoch'), else one built
  # now, with gradient ('step', or a context from outside the loop).
  s = models.epoch_cached(ctx, cfg)
  if s is None:
    s = item_graph(params, ctx, cfg)
  u_all, i_all = _forward(params, ctx, cfg, s)
  u, i_pos, i_neg = u_all[users], i_all[pos], i_all[neg]
  s_pos = jnp.sum(u * i_pos, -1)
  s_neg = losses.neg_scores(u, i_neg)
  bpr = losses.bpr_logsigmoid(s_pos, s_neg, mask)
  sq = (jnp.sum(mask[:, None] * u * u) + jnp.sum(mask[:, None] * i_pos * i_pos)
        + jnp.sum(mask[:, None, None] * i_neg * i_neg))
  reg = 0.5 * sq / jnp.maximum(mask.sum(), 1.0)
  return bpr + cfg.reg_weight * reg, {'bpr': bpr, 'reg': reg}
