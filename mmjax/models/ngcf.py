"""NGCF (Wang et al., SIGIR 2019): graph layers with a bi-interaction message.

Paper: X. Wang, X. He, M. Wang, F. Feng, T.-S. Chua, "Neural Graph
Collaborative Filtering", SIGIR 2019.

Transcribed from Elliot's PyTorch-Geometric NGCF as the Ducho-meets-Elliot
benchmark runs it (sisinflab/Ducho-meets-Elliot external/models/ngcf:
NGCF.py, NGCFModel.py, NGCFLayer.py). ID-only: item features in the context
are ignored (NGCF-M, `mmjax.models.ngcf_m`, adds them).

Equations as implemented (`model.adjacency='elliot'`, the default):
  A     = the symmetric bipartite TRAIN graph on N = U + I nodes (binary)
  L~    = D~^-1 (A + I),  D~ = diag(deg + 1)   (`apply_norm`: self-loops, then
          each ROW divided by its sum; row r is what node r receives)
  E^0   = [E_u ; E_i]                                      [N, D]
  for l = 0 .. L-1 (input H^0 = E^0):
    S^l     = L~ H^l                                       (side embeddings)
    O^l     = LeakyReLU_0.2(S^l W1_l + b1_l + (S^l * H^l) W2_l + b2_l)
    O^l     <- message_dropout(O^l)           (training only, inverted)
    E^{l+1} = O^l / max(|O^l|_2, 1e-12)       (row-wise)
    H^{l+1} = E^{l+1}                          (`feed_normalized`, Elliot)
  G     = concat_l E^l                     [N, D + L W]   (`aggregation`)
  s(u, i) = G[u] . G[U + i]
  L = mean_b -log sigmoid(s(u, i) - s(u, j))
      + reg_weight / 2 * (|G_u[b]|^2 + |G_i[pos_b]|^2 + |G_i[neg_b]|^2) / B
The regulariser is on the batch's PROPAGATED rows (squared Frobenius norms),
not on the ego embeddings, and not on W, b. B counts the real (unpadded)
rows; with k negatives per positive the BPR term is averaged over them per
row and the regulariser sums all B k negative rows.

Node dropout (training only, `model.node_dropout` = rate r): every stored
entry of L~, self-loops included, is kept with probability 1 - r and scaled
by 1 / (1 - r) (Elliot's `sparse_dropout`); E stays static here (dropped
entries get weight 0, `mmjax.graph.edges.edge_dropout`, mode 'scale').
Schedule (`model.dropout_every`):
  'epoch' (default, Elliot's): one dropped L~ per epoch. Elliot's `train`
    calls `sparse_dropout` once before the epoch's batches and every step of
    the epoch propagates over that `sampled_adj`. Here `pre_epoch` (called
    by the engine once per epoch, with a key derived from the epoch alone,
    so a resumed run redraws the same graph) puts the dropped L~ in
    `ctx.extras[cfg.name]` and `loss` uses it. A context without it
    (a `loss` called outside the engine) gets the draw that `pre_epoch`
    would make with the step's key.
  'step': a new L~ is dropped at every training step from the step's key.
Message dropout (`model.message_dropout`, inverted dropout on each layer's
output before the L2 normalisation) is drawn at every step in both schedules,
as Elliot's `torch.nn.Dropout` layers are.

Parameters: `user_emb` [U, D], `item_emb` [I, D] (xavier-uniform), and per
layer `layer_<l>` = {w1, w2: [W_l, W_{l+1}], b1, b2: [W_{l+1}]}, all
xavier-uniform (the biases as torch draws a [1, W] tensor:
U(+-sqrt(6 / (1 + W)))), W_0 = D and W_l = `weight_size` (None: D).

Defaults (Elliot's class defaults / the Ducho-meets-Elliot benchmark grid):
embed_dim (factors) 64, num_layers 3, weight_size 64, reg_weight (l_w) 0.01
(benchmark grid {1e-5, 1e-2}), lr 5e-4 (grid {1e-4 .. 1e-2}), batch 1024,
node_dropout 0.0 / 0.1 (class default / benchmark), message_dropout 0.5 / 0.1.
Our configs use the benchmark's 0.1 / 0.1, and dropout_every 'epoch'.

Differences from Elliot's version:
  * Node dropout follows Elliot's once-per-epoch schedule by default (see
    above); its numbers come from `jax.random`, not torch's. Elliot's older
    TensorFlow NGCF (sisinflab/elliot, graph_based/ngcf) instead draws one
    dropped Laplacian when the model is built and keeps it for the whole run
    (and passes the rate as the keep probability); that variant is not
    reproduced.
  * With k > 1 negatives (Elliot samples one), the BPR term is averaged over
    the k negatives per row.
  * Elliot's sampler draws B distinct users and one positive and one negative
    each; the engine's sampler is the shared BPR one (over interactions).
  * The layer nonlinearity, normalisation and loss are Elliot's; our L~ is
    built on device from the engine's graph structure, identical to Elliot's
    `apply_norm(fill_diag(A, 1))`.

Differences between Elliot's version and the paper (switches):
  * `model.adjacency`: 'elliot' (default) is above. 'paper' uses the paper's
    Laplacian L = D^-1/2 A D^-1/2 (the engine's graph, no self-loops) and
    eq. (7)'s matrix form: O = LeakyReLU((L + I) H W1 + b1 + ((L H) * H) W2
    + b2), so the self-connection enters the first term only and the
    bi-interaction term only sees neighbours. Elliot instead puts the
    self-loop inside L~ and thus into both terms, and row-normalises.
  * `model.feed_normalized`: True (Elliot) feeds the L2-normalised (and
    dropped) output to the next layer; False feeds the un-normalised output
    after message dropout, as the original NGCF code does (there only the
    stored copy is normalised).
  * The paper regularises all parameters (lambda |Theta|^2); its code, like
    Elliot's TensorFlow NGCF, regularises the batch's ego embeddings. Elliot's
    PyTorch version, reproduced here, regularises the propagated rows.
  * The original code applies LeakyReLU to each of the two terms separately;
    Elliot (and the paper's equation) applies it once to their sum.
  * `model.aggregation`: 'concat' (NGCF) or 'mean' (the layer mean that
    Elliot's NGCF-M uses, `mmjax.models.ngcf_m`; needs weight_size = D).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.graph import edges
from mmjax.graph import sparse
from mmjax.models import layers
from mmjax.models import losses

# Key streams inside a step (fold_in constants).
_NODE_DROPOUT = 0
_MESSAGE_DROPOUT = 1

ADJACENCIES = ('elliot', 'paper')
AGGREGATIONS = ('concat', 'mean')
DROPOUT_EVERY = ('epoch', 'step')


def layer_sizes(cfg: Any) -> list[int]:
  """[W_0 = D, W_1, ..., W_L]: the input and output widths of the layers."""
  d = cfg.embed_dim
  w = cfg.weight_size or d  # None: every layer D wide
  return [d] + [w] * cfg.num_layers


def init_layers(key: types.PRNGKey, sizes: list[int]) -> dict[str, Any]:
  """Xavier-uniform W1, W2 [in, out] and b1, b2 [out] per layer."""
  out = {}
  for depth, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
    k1, k2, k3, k4 = (jax.random.fold_in(jax.random.fold_in(key, depth), j)
                      for j in range(4))
    out[f'layer_{depth}'] = {
        'w1': layers.xavier_uniform(k1, (d_in, d_out)),
        # torch's xavier on a [1, out] tensor: fans 1 and out.
        'b1': layers.xavier_uniform_row(k2, (d_out,)),
        'w2': layers.xavier_uniform(k3, (d_in, d_out)),
        'b2': layers.xavier_uniform_row(k4, (d_out,)),
    }
  return out


def init(key: types.PRNGKey, ctx: Any, cfg: Any) -> types.Params:
  """Parameters for `ctx.num_users` users and `ctx.num_items` items."""
  d = cfg.embed_dim
  k_user, k_item, k_layers = (jax.random.fold_in(key, i) for i in range(3))
  return {
      'user_emb': layers.xavier_uniform(k_user, (ctx.num_users, d)),
      'item_emb': layers.xavier_uniform(k_item, (ctx.num_items, d)),
      **init_layers(k_layers, layer_sizes(cfg)),
  }


def elliot_adjacency(graph: sparse.Graph
                     ) -> tuple[sparse.Graph, types.Array]:
  """L~ = D~^-1 (A + I) split into its edges and its diagonal.

  Args:
    graph: the user-item graph; its non-zero weights define A's structure.

  Returns:
    (graph with weights 1 / (deg_r + 1) on present edges, float32 [N] self
    weights 1 / (deg + 1)).
  """
  present = (graph.weights != 0).astype(jnp.float32)  # [E]
  deg = jax.ops.segment_sum(present, graph.receivers,
                            num_segments=graph.num_nodes,
                            indices_are_sorted=True)  # [N]
  inv = 1.0 / (deg + 1.0)
  return graph.with_weights(present * inv[graph.receivers]), inv


def base_adjacency(ctx: Any, cfg: Any
                   ) -> tuple[sparse.Graph, types.Array | None]:
  """The propagation matrix as (edges, self-loop weights [N] or None).

  'elliot': L~ = D~^-1 (A + I) (`elliot_adjacency`); 'paper': the context's
  D^-1/2 A D^-1/2 without self-loops (None).
  """
  adjacency = cfg.adjacency
  if adjacency not in ADJACENCIES:
    raise ValueError(f'model.adjacency={adjacency!r}; expected one of '
                     f'{ADJACENCIES}.')
  if adjacency == 'elliot':
    return elliot_adjacency(ctx.graph)
  return ctx.graph, None


def node_dropout(key: types.PRNGKey, ctx: Any, cfg: Any
                 ) -> tuple[sparse.Graph, types.Array | None]:
  """`base_adjacency` with Elliot's `sparse_dropout` at `model.node_dropout`.

  Each stored entry (self-loops included) is kept with probability 1 - r
  and scaled by 1 / (1 - r); shapes stay static (dropped entries weigh 0).

  Args:
    key: the step's key ('step') or the epoch's key ('epoch').
    ctx: model context (its graph).
    cfg: the model section.

  Returns:
    (graph [E edges], self-loop weights float32 [N] or None).
  """
  rate = float(cfg.node_dropout)
  graph, self_w = base_adjacency(ctx, cfg)
  k_node = jax.random.fold_in(key, _NODE_DROPOUT)
  graph = edges.edge_dropout(jax.random.fold_in(k_node, 0), graph, rate,
                             renormalize='scale')
  if self_w is not None:
    # The self-loops are entries of L~ too; Elliot drops them alike.
    u = jax.random.uniform(jax.random.fold_in(k_node, 1), self_w.shape)
    self_w = jnp.where(u >= rate, self_w / (1.0 - rate), 0.0)
  return graph, self_w


def dropout_every(cfg: Any) -> str:
  """`model.dropout_every`, checked."""
  every = cfg.dropout_every
  if every not in DROPOUT_EVERY:
    raise ValueError(f'model.dropout_every={every!r}; expected one of '
                     f'{DROPOUT_EVERY}.')
  return every


def _epoch_extras(ctx: Any, cfg: Any) -> dict[str, Any]:
  if dropout_every(cfg) != 'epoch':
    return {}
  extras = getattr(ctx, 'extras', None) or {}
  return extras.get(cfg.name) or {}


def pre_epoch(ctx: Any, key: types.PRNGKey, cfg: Any) -> Any:
  """The epoch's node-dropped L~ in `ctx.extras[cfg.name]`.

  Elliot draws one `sampled_adj` per epoch; the engine calls this once per
  epoch inside the compiled epoch and the epoch's steps see the result.

  Args:
    ctx: model context.
    key: the epoch's key (a function of the run's seed and the epoch only).
    cfg: the model section.

  Returns:
    The context with {'train_graph': Graph, 'train_self': float32 [N]
    (adjacency 'elliot' only)} under the model's name; unchanged when
    `model.dropout_every='step'` or node dropout is off.

  Raises:
    ValueError: unknown `model.dropout_every` or `model.adjacency`.
  """
  if (dropout_every(cfg) == 'step'
      or float(cfg.node_dropout) == 0.0):
    return ctx
  graph, self_w = node_dropout(key, ctx, cfg)
  entry = {'train_graph': graph}
  if self_w is not None:
    entry['train_self'] = self_w
  extras = dict(getattr(ctx, 'extras', None) or {})
  extras[cfg.name] = {**(extras.get(cfg.name) or {}), **entry}
  return dataclasses.replace(ctx, extras=extras)


def propagate(
    params: types.Params,
    ctx: Any,
    cfg: Any,
    key: types.PRNGKey | None = None,
) -> tuple[types.Array, types.Array]:
  """The NGCF layers on [user_emb; item_emb] (module doc).

  Args:
    params: from `init`.
    ctx: model context (its graph).
    cfg: the model section (module doc).
    key: the step's PRNG key for message dropout and, without an epoch
      graph in `ctx.extras` (`pre_epoch`), node dropout; None (evaluation)
      turns both off.

  Returns:
    (users [U, D'], items [I, D']) with D' = D + sum_l W_l for 'concat' and
    D for 'mean'.
  """
  adjacency = cfg.adjacency
  aggregation = cfg.aggregation
  if adjacency not in ADJACENCIES:
    raise ValueError(f'model.adjacency={adjacency!r}; expected one of '
                     f'{ADJACENCIES}.')
  dropout_every(cfg)
  if aggregation not in AGGREGATIONS:
    raise ValueError(f'model.aggregation={aggregation!r}; expected one of '
                     f'{AGGREGATIONS}.')
  sizes = layer_sizes(cfg)
  if aggregation == 'mean' and len(set(sizes)) > 1:
    raise ValueError(f'model.aggregation=mean needs every layer width equal '
                     f'to embed_dim; got widths {sizes}.')
  node_rate = float(cfg.node_dropout)
  msg_rate = float(cfg.message_dropout)
  feed_normalized = bool(cfg.feed_normalized)

  if key is None or node_rate == 0.0:
    graph, self_w = base_adjacency(ctx, cfg)
  else:
    # The epoch's dropped L~ from `pre_epoch`, else a draw from this key.
    epoch = _epoch_extras(ctx, cfg)
    if 'train_graph' in epoch:
      graph, self_w = epoch['train_graph'], epoch.get('train_self')
    else:
      graph, self_w = node_dropout(key, ctx, cfg)

  ego = jnp.concatenate([params['user_emb'], params['item_emb']], 0)  # [N, D]
  outs, h = [ego], ego
  for depth in range(cfg.num_layers):
    p = params[f'layer_{depth}']
    side = sparse.propagate(graph, h)  # [N, W_l]
    if adjacency == 'elliot':
      side = side + self_w[:, None] * h
      first = side
    else:
      first = side + h  # (L + I) H
    layer = layers.BiInteraction(p['w1'].shape[1])
    o = layers.apply(layer, p, first, side * h)  # [N, W_{l+1}]
    if key is not None:
      k_msg = jax.random.fold_in(
          jax.random.fold_in(key, _MESSAGE_DROPOUT), depth)
      o = layers.dropout(k_msg, o, msg_rate)
    e = layers.l2_normalize(o)
    outs.append(e)
    h = e if feed_normalized else o
  if aggregation == 'concat':
    g = jnp.concatenate(outs, axis=1)  # [N, D + sum W]
  else:
    g = jnp.mean(jnp.stack(outs, axis=1), axis=1)  # [N, D]
  return g[:ctx.num_users], g[ctx.num_users:]


def embed(params: types.Params, ctx: Any, cfg: Any
          ) -> tuple[types.Array, types.Array]:
  """Users [U, D'] and items [I, D'] without dropout; scores are dots."""
  return propagate(params, ctx, cfg)


def loss(params: types.Params, batch: dict, ctx: Any, key: types.PRNGKey,
         cfg: Any) -> tuple[types.Array, dict[str, types.Array]]:
  """BPR over the propagated embeddings plus Elliot's regulariser."""
  gu, gi = propagate(params, ctx, cfg, key)
  users, pos, mask = batch['users'], batch['pos'], batch['mask']
  neg = losses.negatives_2d(batch['neg'])  # [B, k]
  u, i_pos, i_neg = gu[users], gi[pos], gi[neg]  # [B, D'], [B, D'], [B,k,D']
  s_pos = jnp.sum(u * i_pos, -1)  # [B]
  s_neg = losses.neg_scores(u, i_neg)  # [B, k]
  bpr = losses.bpr_logsigmoid(s_pos, s_neg, mask)
  reg = 0.5 * losses.squared_rows(mask, u, i_pos, i_neg)
  return bpr + cfg.reg_weight * reg, {'bpr': bpr, 'reg': reg}
