"""NGCF: Elliot's equations in numpy, shapes, gradients and dropout."""

import importlib
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.graph import sparse
from mmjax.models import ngcf
from mmjax.models import options
from mmjax.parallel import mesh as mesh_lib
from mmjax.train import defaults
from mmjax.train import loop
from tests.models import vbpr_test
from tests.train import loop_test

NUM_USERS, NUM_ITEMS = vbpr_test.NUM_USERS, vbpr_test.NUM_ITEMS
N = NUM_USERS + NUM_ITEMS


def make_config(**model):
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


class NgcfTest(parameterized.TestCase):

  def test_elliot_adjacency_is_row_normalised_with_self_loops(self):
    ctx = vbpr_test.make_context(1)
    g, self_w = ngcf.elliot_adjacency(ctx.graph)
    dense = sparse.to_dense(g) + np.diag(np.asarray(self_w))
    a = dense_binary(ctx) + np.eye(N)
    np.testing.assert_allclose(dense, a / a.sum(1, keepdims=True),
                               rtol=1e-6)

  @parameterized.parameters(
      ('elliot', True, 'concat', None), ('elliot', True, 'mean', 3),
      ('elliot', False, 'concat', 3), ('paper', False, 'concat', None),
      ('paper', True, 'mean', 3))
  def test_matches_numpy_transcription(self, adjacency, feed_normalized,
                                       aggregation, num_negatives):
    ctx = vbpr_test.make_context(1)
    cfg = make_config(adjacency=adjacency, feed_normalized=feed_normalized,
                      aggregation=aggregation)
    params = hand_params(cfg)
    batch = vbpr_test.make_batch(num_negatives=num_negatives)
    gu_np, gi_np = np_propagate(params, dense_binary(ctx), cfg, aggregation)
    gu, gi = ngcf.embed(params, ctx, cfg.model)
    np.testing.assert_allclose(gu, gu_np, atol=1e-5)
    np.testing.assert_allclose(gi, gi_np, atol=1e-5)
    total, aux = ngcf.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    np.testing.assert_allclose(
        total, np_loss(gu_np, gi_np, batch, 0.1), atol=1e-5, rtol=1e-5)
    self.assertGreater(float(aux['reg']), 0.0)

  def test_init_shapes_and_finite_grads(self):
    w = 6  # weight_size != embed_dim
    ctx = vbpr_test.make_context(1)
    cfg = make_config(num_layers=3, weight_size=w,
                      node_dropout=0.1, message_dropout=0.1)
    params = ngcf.init(jax.random.key(0), ctx, cfg.model)
    self.assertEqual(params['user_emb'].shape, (NUM_USERS, 4))
    self.assertEqual(params['layer_0']['w1'].shape, (4, w))
    self.assertEqual(params['layer_2']['b2'].shape, (w,))
    users, items = ngcf.embed(params, ctx, cfg.model)
    self.assertEqual(users.shape, (NUM_USERS, 4 + 3 * w))
    self.assertEqual(items.shape, (NUM_ITEMS, 4 + 3 * w))
    grads = jax.jit(jax.grad(lambda p: ngcf.loss(
        p, vbpr_test.make_batch(num_negatives=2), ctx, jax.random.key(1),
        cfg.model)[0]))(params)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.all(np.isfinite(g)))
    self.assertGreater(float(jnp.abs(grads['layer_2']['w2']).sum()), 0.0)

  def test_bias_init_bound_is_torch_xavier_on_one_by_out(self):
    cfg = make_config(embed_dim=50, num_layers=1)
    params = ngcf.init(jax.random.key(3), vbpr_test.make_context(1), cfg.model)
    b = np.asarray(params['layer_0']['b1'])
    bound = np.sqrt(6.0 / (1 + 50))
    self.assertLessEqual(np.abs(b).max(), bound)
    self.assertGreater(np.abs(b).max(), 0.7 * bound)

  def test_mean_aggregation_needs_equal_widths(self):
    ctx = vbpr_test.make_context(1)
    cfg = make_config(weight_size=6, aggregation='mean')
    params = hand_params(cfg)
    with self.assertRaisesRegex(ValueError, 'layer width'):
      ngcf.embed(params, ctx, cfg.model)

  @parameterized.parameters(('node_dropout',), ('message_dropout',))
  def test_dropout_is_keyed_static_and_training_only(self, which):
    ctx = vbpr_test.make_context(1)
    cfg = make_config(**{which: 0.3})
    params = hand_params(cfg)
    batch = vbpr_test.make_batch()
    loss_fn = jax.jit(lambda p, k: ngcf.loss(p, batch, ctx, k, cfg.model)[0])
    a = loss_fn(params, jax.random.key(1))
    b = loss_fn(params, jax.random.key(1))
    c = loss_fn(params, jax.random.key(2))
    self.assertEqual(float(a), float(b))
    self.assertNotEqual(float(a), float(c))
    # One compile for every key: the dropout masks keep shapes static.
    self.assertEqual(
        loss_fn._cache_size(), 1)  # pylint: disable=protected-access
    # Without dropout the loss is the numpy one; embed never drops.
    gu_np, gi_np = np_propagate(params, dense_binary(ctx), cfg)
    np.testing.assert_allclose(ngcf.embed(params, ctx, cfg.model)[1], gi_np,
                               atol=1e-5)
    self.assertNotAlmostEqual(float(a), np_loss(gu_np, gi_np, batch, 0.1),
                              places=4)


def epoch_lap(ctx, cfg):
  """The epoch's dropped L~ [N, N] that `pre_epoch` put in the extras."""
  entry = ctx.extras[cfg.model.name]
  lap = sparse.to_dense(entry['train_graph'])
  if 'train_self' in entry:
    lap = lap + np.diag(np.asarray(entry['train_self']))
  return np.asarray(lap, np.float64)


class DropoutScheduleTest(parameterized.TestCase):
  """Node dropout once per epoch (Elliot's `sampled_adj`), or per step."""

  @parameterized.parameters('elliot', 'paper')
  def test_one_node_dropout_mask_per_epoch(self, adjacency):
    ctx = vbpr_test.make_context(1)
    rate = 0.3
    cfg = make_config(node_dropout=rate, adjacency=adjacency,
                      feed_normalized=adjacency == 'elliot')
    params = hand_params(cfg)
    prop = jax.jit(lambda c, k: ngcf.propagate(params, c, cfg.model, k))
    epoch_a = ngcf.pre_epoch(ctx, jax.random.key(10), cfg.model)
    epoch_b = ngcf.pre_epoch(ctx, jax.random.key(11), cfg.model)
    # The dropped matrix: every stored entry of the full one is either 0 or
    # scaled by 1 / (1 - r); some of each.
    full = np_lap(dense_binary(ctx), cfg)
    lap = epoch_lap(epoch_a, cfg)
    stored = full != 0
    kept = lap[stored] != 0
    np.testing.assert_allclose(lap[stored][kept],
                               full[stored][kept] / (1 - rate), rtol=1e-6)
    np.testing.assert_array_equal(lap[~stored], 0.0)
    self.assertTrue(kept.any() and not kept.all())
    self.assertEqual('train_self' in epoch_a.extras['ngcf'],
                     adjacency == 'elliot')
    # Two steps of one epoch (different step keys) propagate over the same
    # dropped nodes: equal embeddings, and those of numpy on that matrix.
    a1, a2 = prop(epoch_a, jax.random.key(1)), prop(epoch_a,
                                                     jax.random.key(2))
    for x, y in zip(a1, a2):
      np.testing.assert_array_equal(x, y)
    want = np_propagate(params, dense_binary(ctx), cfg, lap=lap)
    np.testing.assert_allclose(a1[0], want[0], atol=1e-5)
    np.testing.assert_allclose(a1[1], want[1], atol=1e-5)
    # The next epoch drops other nodes.
    self.assertFalse(np.array_equal(lap, epoch_lap(epoch_b, cfg)))
    self.assertFalse(np.array_equal(a1[1], prop(epoch_b,
                                                jax.random.key(1))[1]))
    # The epoch's draw is the one a step without the hook makes with that
    # key (one key stream), and evaluation never drops.
    no_hook = prop(ctx, jax.random.key(10))
    np.testing.assert_array_equal(no_hook[1], a1[1])
    np.testing.assert_array_equal(ngcf.embed(params, epoch_a, cfg.model)[1],
                                  ngcf.embed(params, ctx, cfg.model)[1])

  def test_message_dropout_stays_per_step_within_an_epoch(self):
    # Elliot's message dropout is a torch Dropout layer: a new mask at every
    # step, even while the epoch's node-dropped matrix is fixed (with it off,
    # the steps of an epoch agree: the test above).
    ctx = vbpr_test.make_context(1)
    cfg = make_config(node_dropout=0.3, message_dropout=0.3)
    params = hand_params(cfg)
    epoch = ngcf.pre_epoch(ctx, jax.random.key(10), cfg.model)
    batch = vbpr_test.make_batch()
    loss = jax.jit(lambda c, k: ngcf.loss(params, batch, c, k, cfg.model)[0])
    self.assertNotEqual(float(loss(epoch, jax.random.key(1))),
                        float(loss(epoch, jax.random.key(2))))
    self.assertEqual(float(loss(epoch, jax.random.key(1))),
                     float(loss(epoch, jax.random.key(1))))

  def test_step_schedule_and_switch_values(self):
    ctx = vbpr_test.make_context(1)
    step_cfg = make_config(node_dropout=0.3, dropout_every='step')
    params = hand_params(step_cfg)
    self.assertIs(
        ngcf.pre_epoch(ctx, jax.random.key(10), step_cfg.model), ctx)
    # Node dropout off: nothing to draw.
    self.assertIs(ngcf.pre_epoch(ctx, jax.random.key(10), make_config().model),
                  ctx)
    # 'step' ignores an epoch graph: each step key drops other nodes.
    epoch = ngcf.pre_epoch(ctx, jax.random.key(10),
                           make_config(node_dropout=0.3).model)
    prop = jax.jit(lambda k: ngcf.propagate(params, epoch, step_cfg.model, k))
    self.assertFalse(np.array_equal(prop(jax.random.key(1))[1],
                                    prop(jax.random.key(2))[1]))
    bad = make_config(node_dropout=0.3, dropout_every='batch')
    with self.assertRaisesRegex(ValueError, 'dropout_every'):
      ngcf.pre_epoch(ctx, jax.random.key(10), bad.model)
    with self.assertRaisesRegex(ValueError, 'dropout_every'):
      ngcf.propagate(params, ctx, bad.model, jax.random.key(1))

  def test_resumed_epoch_redraws_the_same_graph(self):
    # Two epochs in one go equal epoch 2 run again from the state saved
    # after epoch 1 (a resumed run): the epoch's dropped graph depends on
    # the seed and the epoch alone. (tests/launch_test.py resumes a killed
    # run for the engine in general.)
    ds = loop_test.random_dataset(num_users=24, num_items=24, per_user=6)
    mesh = mesh_lib.make_mesh(1)

    def config(every):
      cfg = loop_test.small_config('ngcf')
      with cfg.unlocked():
        cfg.model.update(dict(
            embed_dim=4, num_layers=1, weight_size=None, node_dropout=0.3,
            message_dropout=0.1, adjacency='elliot', feed_normalized=True,
            aggregation='concat', dropout_every=every))
      cfg.train.batch_size = 32
      return cfg

    trainer = loop.Trainer(config('epoch'), ds, mesh=mesh)
    state, _ = trainer.run_epoch(trainer.init_state(), 1)
    saved = jax.device_get(state)
    unbroken, _ = trainer.run_epoch(state, 2)
    resumed, _ = trainer.run_epoch(jax.device_put(saved, trainer.repl), 2)
    for x, y in zip(jax.tree.leaves(unbroken), jax.tree.leaves(resumed)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # The engine calls the hook: per-step node dropout trains other numbers
    # from the same state.
    step_trainer = loop.Trainer(config('step'), ds, mesh=mesh)
    stepped, _ = step_trainer.run_epoch(
        jax.device_put(saved, step_trainer.repl), 2)
    self.assertFalse(np.array_equal(
        np.asarray(unbroken.params['user_emb']),
        np.asarray(stepped.params['user_emb'])))


class ConfigTest(parameterized.TestCase):

  @parameterized.product(name=['ngcf', 'ngcf_m'],
                         data=['synthetic', 'ml_lvlm'],
                         arg=['', 'runlocal', 'paper'])
  def test_configs_build_a_model_that_runs(self, name, data, arg):
    here = os.path.dirname(os.path.abspath(__file__))
    module = defaults.sibling_config(
        os.path.join(here, '..', '..', 'configs', 'x.py'), name)
    cfg = module.get_config(f'data={data},{arg}')
    self.assertEqual(cfg.data.name, data)
    self.assertEqual(cfg.model.adjacency,
                     'paper' if arg == 'paper' else 'elliot')
    self.assertLen(module.get_sweep(), 30)  # the CIKM grid: 5 x 3 x 2
    multimodal = cfg.model.name == 'ngcf_m'
    self.assertEqual(bool(cfg.features.sources), multimodal)
    if arg:
      return  # The model runs once per config, with its defaults.
    ctx = vbpr_test.make_context(2 if multimodal else 1)
    with cfg.unlocked():
      cfg.model.embed_dim = 4
    model = importlib.import_module(f'mmjax.models.{cfg.model.name}')
    params = model.init(jax.random.key(0), ctx, cfg.model)
    value, _ = model.loss(params, vbpr_test.make_batch(), ctx,
                          jax.random.key(1), cfg.model)
    self.assertTrue(np.isfinite(float(value)))


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
  out = {}
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    out['/'.join(str(getattr(k, 'key', k)) for k in path)] = np.asarray(g)
  return out


@absltest.skipIf(torch_or_none() is None, 'torch is not installed')
class TorchGradientTest(absltest.TestCase):
  """Loss and gradients against Elliot's NGCF written in torch (float64)."""

  def test_loss_and_gradients(self):
    torch = torch_or_none()
    ctx = vbpr_test.make_context(1)
    cfg = make_config(num_layers=3)
    params = hand_params(cfg)
    batch = vbpr_test.make_batch()
    batch['mask'] = jnp.ones_like(batch['mask'])  # Elliot has no padding
    gu, gi, user, pos, neg, leaves = torch_elliot_ngcf(
        torch, params, dense_binary(ctx), batch, 'concat')
    xu_pos = torch.sum(gu[user] * gi[pos], 1)
    xu_neg = torch.sum(gu[user] * gi[neg], 1)
    mf_loss = -1 * torch.mean(torch.nn.LogSigmoid()(xu_pos - xu_neg))
    reg_loss = 0.1 * (1 / 2) * (torch.norm(gu[user]) ** 2
                                + torch.norm(gi[pos]) ** 2
                                + torch.norm(gi[neg]) ** 2) / len(user)
    (mf_loss + reg_loss).backward()
    value, grads = jax.value_and_grad(lambda p: ngcf.loss(
        p, batch, ctx, jax.random.key(0), cfg.model)[0])(params)
    np.testing.assert_allclose(value, (mf_loss + reg_loss).item(), rtol=1e-5)
    ours = flat_grads(grads)
    self.assertEqual(set(ours), set(leaves))
    for name, t in leaves.items():
      np.testing.assert_allclose(ours[name], t.grad.numpy(), rtol=1e-4,
                                 atol=1e-6, err_msg=name)


if __name__ == '__main__':
  absltest.main()
