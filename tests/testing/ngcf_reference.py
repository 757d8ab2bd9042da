"""Elliot's NGCF in numpy and in torch, and the inputs the NGCF tests build.

Sized for `fixtures.make_context` (NUM_USERS users, NUM_ITEMS items).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.graph import sparse
from mmjax.models import options
from tests.testing import fixtures

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  """A small NGCF config; `model` overrides its model section."""
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name='ngcf', embed_dim=4, num_layers=2, weight_size=None,
      reg_weight=0.1, node_dropout=0.0, message_dropout=0.0,
      adjacency='elliot', feed_normalized=True))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def hand_params(cfg, seed=0):
  """Parameters set from a numpy generator (not `init`), as float32."""
  rng = np.random.default_rng([seed, 7])
  d = cfg.model.embed_dim
  w = cfg.model.weight_size or d
  sizes = [d] + [w] * cfg.model.num_layers
  params = {
      'user_emb': rng.normal(0, 0.5, (NUM_USERS, d)),
      'item_emb': rng.normal(0, 0.5, (NUM_ITEMS, d)),
  }
  for depth in range(cfg.model.num_layers):
    params[f'layer_{depth}'] = {
        'w1': rng.normal(0, 0.5, (sizes[depth], sizes[depth + 1])),
        'b1': rng.normal(0, 0.1, sizes[depth + 1]),
        'w2': rng.normal(0, 0.5, (sizes[depth], sizes[depth + 1])),
        'b2': rng.normal(0, 0.1, sizes[depth + 1]),
    }
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)


def dense_binary(ctx):
  """The binary user-item adjacency [N, N] from the context's graph."""
  a = (sparse.to_dense(ctx.graph) != 0).astype(np.float64)
  assert np.allclose(a, a.T)
  return a


# --- Elliot's NGCF in numpy, written from Ducho-meets-Elliot
# external/models/ngcf (NGCF.py apply_norm, NGCFLayer, NGCFModel), not from
# mmjax.models.ngcf.


def np_leaky_relu(x, slope=0.2):
  return np.where(x >= 0, x, slope * x)


def np_normalize(x):
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def np_lap(a, cfg):
  """The [N, N] propagation matrix from the binary graph `a`."""
  if cfg.model.adjacency == 'elliot':
    adj = a + np.eye(len(a))  # fill_diag(adj, 1.)
    return adj / adj.sum(1, keepdims=True)  # mul(adj, deg_inv.view(-1, 1))
  # The paper's L = D^-1/2 A D^-1/2 (deg clamped at 1 for isolated nodes).
  dinv = 1.0 / np.sqrt(np.maximum(a.sum(1), 1.0))
  return dinv[:, None] * a * dinv[None, :]


def np_propagate(params, a, cfg, aggregation='concat', lap=None):
  """numpy NGCF forward without message dropout.

  Args:
    params: model parameters.
    a: the binary [N, N] graph.
    cfg: config.
    aggregation: 'concat' or 'mean'.
    lap: a given (e.g. node-dropped) [N, N] propagation matrix instead of the
      one built from `a`.
  """
  p = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
  lap = np_lap(a, cfg) if lap is None else lap
  x = np.concatenate([p['user_emb'], p['item_emb']], 0)
  all_embeddings, h = [x], x
  for depth in range(cfg.model.num_layers):
    lw = p[f'layer_{depth}']
    side = lap @ h
    first = side if cfg.model.adjacency == 'elliot' else side + h
    out = np_leaky_relu(first @ lw['w1'] + lw['b1']
                        + (side * h) @ lw['w2'] + lw['b2'])
    norm = np_normalize(out)
    all_embeddings.append(norm)
    h = norm if cfg.model.feed_normalized else out
  if aggregation == 'concat':
    g = np.concatenate(all_embeddings, 1)
  else:
    g = np.stack(all_embeddings, 1).mean(1)
  return g[:NUM_USERS], g[NUM_USERS:]


def np_loss(gu, gi, batch, reg_weight):
  """mf_loss = -mean logsigmoid(x_pos - x_neg) + l_w/2 (|.|^2) / B."""
  users = np.asarray(batch['users'])
  pos = np.asarray(batch['pos'])
  neg = np.asarray(batch['neg'])
  neg = neg[:, None] if neg.ndim == 1 else neg
  real = np.asarray(batch['mask']) > 0
  users, pos, neg = users[real], pos[real], neg[real]
  u = gu[users]
  x_pos = (u * gi[pos]).sum(1)
  x_neg = (u[:, None] * gi[neg]).sum(2)
  log_sig = -np.logaddexp(0.0, -(x_pos[:, None] - x_neg))
  mf = -log_sig.mean(1).mean()
  reg = 0.5 * ((u ** 2).sum() + (gi[pos] ** 2).sum()
               + (gi[neg] ** 2).sum()) / len(users)
  return mf + reg_weight * reg


def epoch_lap(ctx, cfg):
  """The epoch's dropped L~ [N, N] that `pre_epoch` put in the extras."""
  entry = ctx.extras[cfg.model.name]
  lap = sparse.to_dense(entry['train_graph'])
  if 'train_self' in entry:
    lap = lap + np.diag(np.asarray(entry['train_self']))
  return np.asarray(lap, np.float64)


# --- Elliot's NGCF in torch, for its gradients.


def torch_or_none():
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return torch


def torch_elliot_ngcf(torch, params, a, batch, aggregation):
  """Elliot's NGCFModel.propagate_embeddings in torch, and the batch.

  Follows Ducho-meets-Elliot external/models/ngcf line by line, with a dense
  adjacency in place of torch_sparse (the same product); dropout off.

  Returns:
    (gu [U, D'], gi [I, D'], user, pos, neg index tensors, {param path: leaf
    tensor}), float64, the leaves ready for `backward`.
  """
  leaves = {}

  def leaf(name, x):
    t = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    leaves[name] = t
    return t

  gu0 = leaf('user_emb', params['user_emb'])
  gi0 = leaf('item_emb', params['item_emb'])
  adj = torch.tensor(a) + torch.eye(len(a), dtype=torch.float64)
  adj = adj * adj.sum(1).pow(-1).view(-1, 1)  # apply_norm
  ego = torch.cat((gu0, gi0), 0)
  all_embeddings = [ego]
  leaky = torch.nn.LeakyReLU(negative_slope=0.2)
  for depth in range(sum(k.startswith('layer_') for k in params)):
    w1 = leaf(f'layer_{depth}/w1', params[f'layer_{depth}']['w1'])
    b1 = leaf(f'layer_{depth}/b1', params[f'layer_{depth}']['b1'])
    w2 = leaf(f'layer_{depth}/w2', params[f'layer_{depth}']['w2'])
    b2 = leaf(f'layer_{depth}/b2', params[f'layer_{depth}']['b2'])
    x = all_embeddings[depth]
    side = adj @ x
    out = leaky(side @ w1 + b1 + (side * x) @ w2 + b2)
    all_embeddings.append(torch.nn.functional.normalize(out, p=2, dim=1))
  if aggregation == 'concat':
    g = torch.cat(all_embeddings, 1)
  else:
    g = torch.stack(all_embeddings, dim=1).mean(dim=1)
  gu, gi = torch.split(g, [NUM_USERS, NUM_ITEMS], 0)
  user = torch.tensor(np.asarray(batch['users']))
  pos = torch.tensor(np.asarray(batch['pos']))
  neg = torch.tensor(np.asarray(batch['neg']))
  return gu, gi, user, pos, neg, leaves


def flat_grads(grads):
  """{'a/b/c': leaf} of a gradient pytree, as `torch_elliot_ngcf` names
  its leaves."""
  out = {}
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    out['/'.join(str(getattr(k, 'key', k)) for k in path)] = np.asarray(g)
  return out
