"""NGCF-M: Elliot's equations in numpy for 1-3 modalities, masks, dropout."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.models import ngcf_m
from tests.testing import fixtures
from tests.testing import ngcf_reference as ref

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  cfg = ref.make_config(name='ngcf_m', **model)
  return cfg


def hand_params(ctx, cfg, seed=0):
  params = ref.hand_params(cfg, seed)
  rng = np.random.default_rng([seed, 11])
  d = cfg.model.embed_dim
  f = sum(x.shape[1] for x in ctx.features.values())
  params['theta'] = jnp.asarray(rng.normal(0, 0.5, (NUM_USERS, d)),
                                jnp.float32)
  params['proj_w'] = jnp.asarray(rng.normal(0, 0.5, (f, d)), jnp.float32)
  params['proj_b'] = jnp.asarray(rng.normal(0, 0.1, d), jnp.float32)
  return params


# --- Elliot's NGCF-M in numpy, written from Ducho-meets-Elliot
# external/models/ngcf_m/NGCFMModel.py (forward, predict, train_step).


def np_content(params, ctx):
  feats = [np.asarray(ctx.features[m], np.float64)
           * np.asarray(ctx.masks[m])[:, None] for m in ctx.features]
  f = np.concatenate(feats, 1)  # the modalities' features side by side
  proj = f @ np.asarray(params['proj_w'], np.float64) + np.asarray(
      params['proj_b'], np.float64)
  return ref.np_normalize(proj)


def np_loss(params, ctx, cfg, batch):
  gu, gi = ref.np_propagate(params, ref.dense_binary(ctx), cfg,
                                  'mean')
  return np_loss_from(params, ctx, cfg, batch, gu, gi, with_scores=True)


def np_loss_from(params, ctx, cfg, batch, gu, gi, with_scores=False):
  """The loss (and with_scores: all scores) from propagated gu, gi."""
  p = np_content(params, ctx)
  theta = np.asarray(params['theta'], np.float64)
  real = np.asarray(batch['mask']) > 0
  users = np.asarray(batch['users'])[real]
  pos = np.asarray(batch['pos'])[real]
  neg = np.asarray(batch['neg'])
  neg = (neg[:, None] if neg.ndim == 1 else neg)[real]
  x_pos = (gu[users] * gi[pos]).sum(1) + (theta[users] * p[pos]).sum(1)
  x_neg = ((gu[users][:, None] * gi[neg]).sum(2)
           + (theta[users][:, None] * p[neg]).sum(2))
  diff = np.clip(x_pos[:, None] - x_neg, -80.0, 1e8)
  bpr = np.logaddexp(0.0, -diff).mean(1).mean()
  reg = 0.5 * sum((t ** 2).sum() for t in (
      gu[users], gi[pos], gi[neg], theta[users], p[pos], p[neg])
                  ) / len(users)
  total = bpr + cfg.model.reg_weight * reg
  if not with_scores:
    return total
  return total, gu @ gi.T + theta @ p.T


class NgcfMTest(parameterized.TestCase):

  @parameterized.product(num_modalities=[1, 2, 3], num_negatives=[None, 2])
  def test_matches_numpy_transcription(self, num_modalities, num_negatives):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config()
    params = hand_params(ctx, cfg)
    batch = fixtures.make_batch(num_negatives=num_negatives)
    want_loss, want_scores = np_loss(params, ctx, cfg, batch)
    total, aux = ngcf_m.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    np.testing.assert_allclose(total, want_loss, rtol=1e-5, atol=1e-5)
    self.assertGreater(float(aux['reg']), 0.0)
    users, items = ngcf_m.embed(params, ctx, cfg.model)
    self.assertEqual(users.shape, (NUM_USERS, 8))
    self.assertEqual(items.shape, (NUM_ITEMS, 8))
    np.testing.assert_allclose(users @ items.T, want_scores, atol=1e-5)
    # The embeddings themselves: [G_u ; theta] and [G_i ; p].
    np.testing.assert_allclose(items[:, 4:], np_content(params, ctx),
                               atol=1e-5)
    np.testing.assert_allclose(users[:, 4:], params['theta'])

  @parameterized.parameters(1, 3)
  def test_init_shapes_and_finite_grads(self, num_modalities):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config(num_layers=3, node_dropout=0.1, message_dropout=0.1)
    params = ngcf_m.init(jax.random.key(0), ctx, cfg.model)
    f = sum(x.shape[1] for x in ctx.features.values())
    self.assertEqual(params['proj_w'].shape, (f, 4))
    self.assertEqual(params['theta'].shape, (NUM_USERS, 4))
    grads = jax.jit(jax.grad(lambda p: ngcf_m.loss(
        p, fixtures.make_batch(num_negatives=2), ctx, jax.random.key(1),
        cfg.model)[0]))(params)
    for name, g in jax.tree_util.tree_leaves_with_path(grads):
      self.assertTrue(np.all(np.isfinite(g)), name)
    self.assertGreater(float(jnp.abs(grads['proj_w']).sum()), 0.0)
    self.assertGreater(float(jnp.abs(grads['layer_2']['w1']).sum()), 0.0)

  def test_masked_items(self):
    ctx = fixtures.make_context(2, masked_share=0.3)
    cfg = make_config()
    params = hand_params(ctx, cfg)
    _, items = ngcf_m.embed(params, ctx, cfg.model)
    p = np.asarray(items[:, 4:])
    masks = [np.asarray(m) for m in ctx.masks.values()]
    none = ~masks[0] & ~masks[1]
    only_first = masks[0] & ~masks[1]
    # An item lacking a modality is projected from the others alone.
    x0 = np.asarray(ctx.features[list(ctx.features)[0]])
    w0 = np.asarray(params['proj_w'])[:x0.shape[1]]
    for i in np.flatnonzero(only_first):
      v = x0[i] @ w0 + np.asarray(params['proj_b'])
      np.testing.assert_allclose(p[i], v / np.linalg.norm(v), atol=1e-5)
    # An item with no modality gets b / |b|, shared by all such items.
    b = np.asarray(params['proj_b'])
    for i in np.flatnonzero(none):
      np.testing.assert_allclose(p[i], b / np.linalg.norm(b), atol=1e-6)
    self.assertTrue(only_first.any())

  def test_message_dropout_keyed_and_static(self):
    ctx = fixtures.make_context(2)
    cfg = make_config(message_dropout=0.3, node_dropout=0.2)
    params = hand_params(ctx, cfg)
    batch = fixtures.make_batch()
    loss_fn = jax.jit(lambda p, k: ngcf_m.loss(p, batch, ctx, k, cfg.model)[0])
    a = loss_fn(params, jax.random.key(4))
    self.assertEqual(float(a), float(loss_fn(params, jax.random.key(4))))
    self.assertNotEqual(float(a), float(loss_fn(params, jax.random.key(5))))
    # One compile for every key: the dropout masks keep shapes static.
    self.assertEqual(
        loss_fn._cache_size(), 1)  # pylint: disable=protected-access

  def test_node_dropout_once_per_epoch(self):
    # Elliot's NGCF-M drops the adjacency once per epoch, like its NGCF.
    ctx = fixtures.make_context(2)
    cfg = make_config(node_dropout=0.3)
    params = hand_params(ctx, cfg)
    batch = fixtures.make_batch()
    loss_fn = jax.jit(
        lambda c, k: ngcf_m.loss(params, batch, c, k, cfg.model)[0])
    epoch_a = ngcf_m.pre_epoch(ctx, jax.random.key(10), cfg.model)
    epoch_b = ngcf_m.pre_epoch(ctx, jax.random.key(11), cfg.model)
    self.assertIn('ngcf_m', epoch_a.extras)
    # The steps of one epoch share the dropped graph; the next epoch's
    # differs; the loss is numpy's on the epoch's matrix.
    a1 = float(loss_fn(epoch_a, jax.random.key(1)))
    self.assertEqual(a1, float(loss_fn(epoch_a, jax.random.key(2))))
    self.assertNotEqual(a1, float(loss_fn(epoch_b, jax.random.key(1))))
    lap = ref.epoch_lap(epoch_a, cfg)
    gu, gi = ref.np_propagate(params, ref.dense_binary(ctx), cfg,
                                    'mean', lap=lap)
    np.testing.assert_allclose(
        np.asarray(ngcf_m.loss(params, batch, epoch_a, jax.random.key(1),
                               cfg.model)[0]),
        np_loss_from(params, ctx, cfg, batch, gu, gi), rtol=1e-5, atol=1e-5)
    step_cfg = make_config(node_dropout=0.3, dropout_every='step')
    self.assertIs(
        ngcf_m.pre_epoch(ctx, jax.random.key(10), step_cfg.model), ctx)

  def test_sharded_batch_gives_the_single_device_loss_and_grads(self):
    ctx = fixtures.make_context(2)
    cfg = make_config(message_dropout=0.3, node_dropout=0.2)
    params = hand_params(ctx, cfg)
    batch = fixtures.make_batch(size=16, num_negatives=2)
    key = jax.random.key(7)
    fn = jax.jit(jax.value_and_grad(
        lambda p, b: ngcf_m.loss(p, b, ctx, key, cfg.model)[0]))
    want_value, want_grads = fn(params, batch)
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
        'data'))
    with jax.set_mesh(mesh):
      sharded = jax.device_put(batch, rows)
      self.assertLen(sharded['users'].sharding.device_set, 8)
      value, grads = fn(params, sharded)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    for g, w in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):
      np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-7)

  def test_mean_needs_weight_size_equal_to_embed_dim(self):
    ctx = fixtures.make_context(1)
    cfg = make_config(weight_size=6)
    with self.assertRaisesRegex(ValueError, 'layer width'):
      ngcf_m.embed(ngcf_m.init(jax.random.key(0), ctx, cfg.model), ctx,
                   cfg.model)


@absltest.skipIf(ref.torch_or_none() is None, 'torch is not installed')
class TorchGradientTest(absltest.TestCase):
  """Loss and gradients against Elliot's NGCF-M written in torch (float64)."""

  def test_loss_and_gradients(self):
    torch = ref.torch_or_none()
    ctx = fixtures.make_context(2)
    cfg = make_config(num_layers=2)
    params = hand_params(ctx, cfg)
    batch = fixtures.make_batch()
    batch['mask'] = jnp.ones_like(batch['mask'])  # Elliot has no padding
    gu, gi, user, pos, neg, leaves = ref.torch_elliot_ngcf(
        torch, params, ref.dense_binary(ctx), batch, 'mean')
    # NGCFMModel: Tu, F (features side by side, frozen), proj = Linear.
    tu = torch.tensor(np.asarray(params['theta'], np.float64),
                      requires_grad=True)
    proj = torch.nn.Linear(in_features=params['proj_w'].shape[0],
                           out_features=4).double()
    with torch.no_grad():
      proj.weight.copy_(torch.tensor(np.asarray(params['proj_w']).T))
      proj.bias.copy_(torch.tensor(np.asarray(params['proj_b'])))
    f = torch.tensor(np.concatenate(
        [np.asarray(ctx.features[m], np.float64)
         * np.asarray(ctx.masks[m])[:, None] for m in ctx.features], 1))

    def forward(g_u, g_i, users, items):
      theta_u = tu[users]
      proj_i = torch.nn.functional.normalize(proj(f[items]), p=2, dim=1)
      xui = torch.sum(g_u * g_i, 1) + torch.sum(theta_u * proj_i, 1)
      return xui, g_u, g_i, theta_u, proj_i

    xu_pos, gamma_u, gamma_i_pos, theta_u, proj_i_pos = forward(
        gu[user], gi[pos], user, pos)
    xu_neg, _, gamma_i_neg, _, proj_i_neg = forward(
        gu[user], gi[neg], user, neg)
    difference = torch.clamp(xu_pos - xu_neg, -80.0, 1e8)
    loss = torch.mean(torch.nn.functional.softplus(-difference))
    reg_loss = 0.1 * (1 / 2) * (gamma_u.norm(2).pow(2)
                                + gamma_i_pos.norm(2).pow(2)
                                + gamma_i_neg.norm(2).pow(2)
                                + theta_u.norm(2).pow(2)
                                + proj_i_pos.norm(2).pow(2)
                                + proj_i_neg.norm(2).pow(2)) / len(user)
    loss = loss + reg_loss
    loss.backward()
    value, grads = jax.value_and_grad(
        lambda p: ngcf_m.loss(p, batch, ctx, jax.random.key(0), cfg.model)[0]
    )(params)
    np.testing.assert_allclose(value, loss.item(), rtol=1e-5)
    ours = ref.flat_grads(grads)
    want = {k: t.grad.numpy() for k, t in leaves.items()}
    want['theta'] = tu.grad.numpy()
    want['proj_w'] = proj.weight.grad.numpy().T
    want['proj_b'] = proj.bias.grad.numpy()
    self.assertEqual(set(ours), set(want))
    for name, g in want.items():
      np.testing.assert_allclose(ours[name], g, rtol=1e-4, atol=1e-6,
                                 err_msg=name)


if __name__ == '__main__':
  absltest.main()
