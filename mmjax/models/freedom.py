"""FREEDOM (Zhou & Shen, ACM MM 2023): a frozen item graph and a denoised
user-item graph.

Paper: X. Zhou, Z. Shen, "A Tale of Two Graphs: Freezing and Denoising Graph
Structures for Multimodal Recommendation", ACM MM 2023.

Equations as implemented (m runs over the modalities in the context's order):
  S_m = kNN graph of the initial features x_m: top-k cosine neighbours
        (self included), unit edges, D^-1/2 A D^-1/2 with row sums
        (`mmjax.graph.knn`, `weighted=False`); built once, frozen.
  S   = sum_m w_m S_m, with w = `model.mm_weights` (see conventions).
  h   = S^{L_mm} e_item                                  [I, D]
  A'  = degree-sensitive pruning of the user-item graph (training only):
        keep int(M (1 - dropout)) of the M interactions, sampled without
        replacement with probability ~ 1/sqrt(d_u d_i), renormalised
        1/sqrt(d'_u d'_i) (`mmjax.graph.edges.degree_sensitive_prune`).
  E^0 = [e_user ; e_item],  E^{l+1} = A' E^l,  E = mean_{l=0..L_ui} E^l
  u   = E_users,  i = E_items + h
  L   = BPR(u_b, i_pos, i_neg)
        + reg_weight * sum_m BPR_m(u_b, P_m x_m[pos], P_m x_m[neg])
  BPR = -mean log sigmoid(s_pos - s_neg), P_m x = x W_m + b_m.
  embed: (u, i) with the full normalised graph A instead of A'.
The projections P_m and the raw features x_m only enter the loss (the
auxiliary BPR terms); scores use the ID embeddings and the frozen item graph.

Defaults (MMRec configs/model/FREEDOM.yaml): embed_dim 64 (feat_embed_dim is
the same), knn_k 10, n_mm_layers 1, n_ui_layers 2, mm_image_weight 0.1,
dropout in {0.8, 0.9}, reg_weight in {0, 1e-5, 1e-4, 1e-3}; raw features
trainable (`nn.Embedding.from_pretrained(freeze=False)`); xavier-uniform ID
embeddings; torch's default Linear init for P_m.

Items lacking a modality (mask False): no neighbours in S_m and nobody's
neighbour (`mmjax.graph.knn`), so h_i gets nothing from that modality; their
rows of x_m stay zero even when trained (the mask is re-applied); a BPR_m
term whose positive or negative item lacks modality m is left out of that
modality's mean (MMRec would score the bias of P_m for it). MMRec itself has
no mask: a zero feature row gives NaN similarities.

Differences from the references:
  * MMRec (src/models/freedom.py) prunes once per epoch
    (`pre_epoch_processing`); so do we by default (`pre_epoch`, with
    `model.prune_every='epoch'`); `prune_every='step'` redraws it every
    training step from the step's key instead. MMRec's draw itself uses
    torch's multinomial; ours `jax.random` (the same distribution, other
    numbers). The per-modality weights generalise
    MMRec's `mm_image_weight * image + (1 - mm_image_weight) * text`: with
    convention 'mmrec', one modality gets weight 1 and several get
    `mm_weights` ({'visual': 0.1, 'textual': 0.9} in the configs, MMRec's
    pair; None gives uniform weights).
  * Elliot (Ducho-meets-Elliot external/models/freedom): `mm_adj =
    sum_m mm_weight[m] * Sim_m` for any number of modalities, so with one
    modality its graph is scaled by mm_weight[0]; convention 'elliot' does the
    same. Elliot also uses lr decay `lr_sched`, which is the optimiser's
    business here (optim.schedule).
  * Both divide by a zero norm for a zero feature row (NaN); we isolate the
    item instead (see above). kNN ties go to the lower item id.

The precomputed, non-trainable data (the frozen S and the reverse-edge index
of the user-item graph) comes from `prepare(ctx, cfg)`. When the context
carries it (`ctx.extras[cfg.name]`, filled by the engine), it is used;
otherwise it is recomputed inside the step, which is exact but costs an
I x I similarity per step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.graph import edges
from mmjax.graph import knn
from mmjax.graph import propagation
from mmjax.graph import sparse
from mmjax.models import context as ctx_lib
from mmjax.models import layers
from mmjax.models import losses


def mm_weights(cfg: Any, names: list[str]) -> tuple[float, ...]:
  """The weight of each modality's kNN graph in S (module doc).

  `model.mm_weights` is a mapping {modality: weight} (the configs use
  {'visual': 0.1, 'textual': 0.9}, MMRec's mm_image_weight 0.1), a sequence
  in the context's (sorted) modality order, or None for uniform weights.
  """
  weights = cfg.mm_weights
  convention = cfg.convention
  num = len(names)
  if convention == 'mmrec' and num == 1:
    return (1.0,)
  if weights is None:
    weights = (1.0 / num,) * num
  elif hasattr(weights, 'keys'):
    missing = [n for n in names if n not in weights]
    if missing:
      raise ValueError(
          f'model.mm_weights {dict(weights)} has no weight for modalities '
          f'{missing}.'
      )
    weights = tuple(weights[n] for n in names)
  weights = tuple(float(w) for w in weights)
  if len(weights) < num:
    raise ValueError(
        f'model.mm_weights={weights} has fewer entries than the {num} '
        'modalities.'
    )
  return weights[:num]


def item_graph(
    feats: list[tuple[types.Array, types.Array]],
    weights: tuple[float, ...],
    k: int,
    block_size: int = 512,
) -> sparse.Graph:
  """S = sum_m w_m S_m as one Graph with I * k * M edges (jittable)."""
  indices, values = [], []
  for (x, mask), w in zip(feats, weights):
    idx, val = knn.cosine_topk(x, k, mask, block_size=block_size)
    indices.append(idx)
    values.append(w * knn.normalize(idx, val, weighted=False))
  return knn.to_graph(
      jnp.concatenate(indices, axis=1), jnp.concatenate(values, axis=1)
  )


def prepare(ctx: Any, cfg: Any) -> dict[str, Any]:
  """FREEDOM's frozen data: the item graph S and the graph's reverse edges."""
  feats = layers.modalities(ctx)
  return {
      'item_graph': item_graph(
          feats, mm_weights(cfg, list(ctx.features)), cfg.knn_k
      ),
      'reverse': edges.reverse_edges_sorted(ctx.graph),
  }


def init(key: types.PRNGKey, ctx: Any, cfg: Any) -> types.Params:
  d = cfg.embed_dim
  user, item = layers.id_tables(key, ctx.num_users, ctx.num_items, d)
  params = {'user': user, 'item': item, 'proj': []}
  for m, (x, _) in enumerate(layers.modalities(ctx)):
    params['proj'].append(
        layers.linear_init(jax.random.fold_in(key, 2 + m), x.shape[1], d)
    )
  if cfg.train_features:
    params['features'] = layers.masked_features(ctx)
  return params


def _features(params, ctx):
  feats = layers.modalities(ctx)
  if 'features' in params:
    return [(params['features'][m], mask) for m, (_, mask) in
            enumerate(feats)]
  return feats


def _forward(params, ctx, cfg, graph, item_graph_):
  h = params['item']
  for _ in range(cfg.num_mm_layers):
    h = sparse.propagate(item_graph_, h)
  u, i = propagation.propagate_mean(
      graph, params['user'], params['item'], cfg.num_layers
  )
  return u, i + h


def embed(params: types.Params, ctx: Any, cfg: Any):
  extras = ctx_lib.prepared(ctx, cfg, prepare)
  return _forward(params, ctx, cfg, ctx.graph, extras['item_graph'])


def _prune(key, ctx, cfg, extras):
  # Only the kept edges: the user-item propagations do 20% of the full
  # graph's edge work at MMRec's dropout 0.8, with the same sums.
  return edges.degree_sensitive_prune(
      key, ctx.graph, extras['reverse'], float(cfg.dropout), compact=True
  )


def pre_epoch(ctx: Any, key: types.PRNGKey, cfg: Any) -> Any:
  """The epoch's pruned user-item graph, in the model's extras.

  With `model.prune_every='step'` the context is returned unchanged and
  `loss` prunes with each step's key.
  """
  every = cfg.prune_every
  if every not in ('epoch', 'step'):
    raise ValueError(f"model.prune_every={every!r}: expected 'epoch' or "
                     "'step'.")
  if every == 'step':
    return ctx
  extras = dict(ctx_lib.prepared(ctx, cfg, prepare))
  extras['train_graph'] = _prune(key, ctx, cfg, extras)
  return dataclasses.replace(
      ctx, extras={**ctx.extras, cfg.name: extras})


def loss(params, batch, ctx, key, cfg):
  users, pos, mask = batch['users'], batch['pos'], batch['mask']
  neg = losses.negatives_2d(batch['neg'])  # [B, k]
  extras = ctx_lib.prepared(ctx, cfg, prepare)
  # The epoch's graph from `pre_epoch`, else a draw from this step's key.
  graph = extras.get('train_graph')
  if graph is None:
    graph = _prune(key, ctx, cfg, extras)
  u_all, i_all = _forward(params, ctx, cfg, graph, extras['item_graph'])
  u = u_all[users]  # [B, D]

  def bpr(items):  # items [I, D] -> BPR over the batch, per-row mask
    s_pos = jnp.sum(u * items[pos], -1)
    s_neg = losses.neg_scores(u, items[neg])
    return s_pos, s_neg

  mf = losses.bpr_logsigmoid(*bpr(i_all), mask)
  aux = jnp.zeros((), jnp.float32)
  for proj, (x, m) in zip(params['proj'], _features(params, ctx)):
    p = layers.linear(proj, jnp.where(m[:, None], x, 0.0))  # [I, D]
    # Pairs with an item lacking this modality are left out of its term.
    ok = mask * m[pos] * jnp.all(m[neg], axis=1)
    aux = aux + losses.bpr_logsigmoid(*bpr(p), ok)
  total = mf + cfg.reg_weight * aux
  return total, {'bpr': mf, 'mm_bpr': aux}
