"""NGCF: Elliot's equations in numpy, shapes, gradients and dropout."""

import importlib
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.graph import sparse
from mmjax.models import ngcf
from mmjax.parallel import mesh as mesh_lib
from mmjax.train import defaults
from mmjax.train import loop
from tests.testing import fixtures
from tests.testing import ngcf_reference as ref

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS
N = NUM_USERS + NUM_ITEMS


class NgcfTest(parameterized.TestCase):

  def test_elliot_adjacency_is_row_normalised_with_self_loops(self):
    ctx = fixtures.make_context(1)
    g, self_w = ngcf.elliot_adjacency(ctx.graph)
    dense = sparse.to_dense(g) + np.diag(np.asarray(self_w))
    a = ref.dense_binary(ctx) + np.eye(N)
    np.testing.assert_allclose(dense, a / a.sum(1, keepdims=True),
                               rtol=1e-6)

  @parameterized.parameters(
      ('elliot', True, 'concat', None), ('elliot', True, 'mean', 3),
      ('elliot', False, 'concat', 3), ('paper', False, 'concat', None),
      ('paper', True, 'mean', 3))
  def test_matches_numpy_transcription(self, adjacency, feed_normalized,
                                       aggregation, num_negatives):
    ctx = fixtures.make_context(1)
    cfg = ref.make_config(adjacency=adjacency, feed_normalized=feed_normalized,
                      aggregation=aggregation)
    params = ref.hand_params(cfg)
    batch = fixtures.make_batch(num_negatives=num_negatives)
    gu_np, gi_np = ref.np_propagate(params, ref.dense_binary(ctx), cfg,
                                    aggregation)
    gu, gi = ngcf.embed(params, ctx, cfg.model)
    np.testing.assert_allclose(gu, gu_np, atol=1e-5)
    np.testing.assert_allclose(gi, gi_np, atol=1e-5)
    total, aux = ngcf.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    np.testing.assert_allclose(
        total, ref.np_loss(gu_np, gi_np, batch, 0.1), atol=1e-5, rtol=1e-5)
    self.assertGreater(float(aux['reg']), 0.0)

  def test_init_shapes_and_finite_grads(self):
    w = 6  # weight_size != embed_dim
    ctx = fixtures.make_context(1)
    cfg = ref.make_config(num_layers=3, weight_size=w,
                      node_dropout=0.1, message_dropout=0.1)
    params = ngcf.init(jax.random.key(0), ctx, cfg.model)
    self.assertEqual(params['user_emb'].shape, (NUM_USERS, 4))
    self.assertEqual(params['layer_0']['w1'].shape, (4, w))
    self.assertEqual(params['layer_2']['b2'].shape, (w,))
    users, items = ngcf.embed(params, ctx, cfg.model)
    self.assertEqual(users.shape, (NUM_USERS, 4 + 3 * w))
    self.assertEqual(items.shape, (NUM_ITEMS, 4 + 3 * w))
    grads = jax.jit(jax.grad(lambda p: ngcf.loss(
        p, fixtures.make_batch(num_negatives=2), ctx, jax.random.key(1),
        cfg.model)[0]))(params)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.all(np.isfinite(g)))
    self.assertGreater(float(jnp.abs(grads['layer_2']['w2']).sum()), 0.0)

  def test_bias_init_bound_is_torch_xavier_on_one_by_out(self):
    cfg = ref.make_config(embed_dim=50, num_layers=1)
    params = ngcf.init(jax.random.key(3), fixtures.make_context(1), cfg.model)
    b = np.asarray(params['layer_0']['b1'])
    bound = np.sqrt(6.0 / (1 + 50))
    self.assertLessEqual(np.abs(b).max(), bound)
    self.assertGreater(np.abs(b).max(), 0.7 * bound)

  def test_mean_aggregation_needs_equal_widths(self):
    ctx = fixtures.make_context(1)
    cfg = ref.make_config(weight_size=6, aggregation='mean')
    params = ref.hand_params(cfg)
    with self.assertRaisesRegex(ValueError, 'layer width'):
      ngcf.embed(params, ctx, cfg.model)

  @parameterized.parameters(('node_dropout',), ('message_dropout',))
  def test_dropout_is_keyed_static_and_training_only(self, which):
    ctx = fixtures.make_context(1)
    cfg = ref.make_config(**{which: 0.3})
    params = ref.hand_params(cfg)
    batch = fixtures.make_batch()
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
    gu_np, gi_np = ref.np_propagate(params, ref.dense_binary(ctx), cfg)
    np.testing.assert_allclose(ngcf.embed(params, ctx, cfg.model)[1], gi_np,
                               atol=1e-5)
    self.assertNotAlmostEqual(float(a), ref.np_loss(gu_np, gi_np, batch, 0.1),
                              places=4)


class DropoutScheduleTest(parameterized.TestCase):
  """Node dropout once per epoch (Elliot's `sampled_adj`), or per step."""

  @parameterized.parameters('elliot', 'paper')
  def test_one_node_dropout_mask_per_epoch(self, adjacency):
    ctx = fixtures.make_context(1)
    rate = 0.3
    cfg = ref.make_config(node_dropout=rate, adjacency=adjacency,
                      feed_normalized=adjacency == 'elliot')
    params = ref.hand_params(cfg)
    prop = jax.jit(lambda c, k: ngcf.propagate(params, c, cfg.model, k))
    epoch_a = ngcf.pre_epoch(ctx, jax.random.key(10), cfg.model)
    epoch_b = ngcf.pre_epoch(ctx, jax.random.key(11), cfg.model)
    # The dropped matrix: every stored entry of the full one is either 0 or
    # scaled by 1 / (1 - r); some of each.
    full = ref.np_lap(ref.dense_binary(ctx), cfg)
    lap = ref.epoch_lap(epoch_a, cfg)
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
    want = ref.np_propagate(params, ref.dense_binary(ctx), cfg, lap=lap)
    np.testing.assert_allclose(a1[0], want[0], atol=1e-5)
    np.testing.assert_allclose(a1[1], want[1], atol=1e-5)
    # The next epoch drops other nodes.
    self.assertFalse(np.array_equal(lap, ref.epoch_lap(epoch_b, cfg)))
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
    ctx = fixtures.make_context(1)
    cfg = ref.make_config(node_dropout=0.3, message_dropout=0.3)
    params = ref.hand_params(cfg)
    epoch = ngcf.pre_epoch(ctx, jax.random.key(10), cfg.model)
    batch = fixtures.make_batch()
    loss = jax.jit(lambda c, k: ngcf.loss(params, batch, c, k, cfg.model)[0])
    self.assertNotEqual(float(loss(epoch, jax.random.key(1))),
                        float(loss(epoch, jax.random.key(2))))
    self.assertEqual(float(loss(epoch, jax.random.key(1))),
                     float(loss(epoch, jax.random.key(1))))

  def test_step_schedule_and_switch_values(self):
    ctx = fixtures.make_context(1)
    step_cfg = ref.make_config(node_dropout=0.3, dropout_every='step')
    params = ref.hand_params(step_cfg)
    self.assertIs(
        ngcf.pre_epoch(ctx, jax.random.key(10), step_cfg.model), ctx)
    # Node dropout off: nothing to draw.
    self.assertIs(ngcf.pre_epoch(ctx, jax.random.key(10),
                                 ref.make_config().model),
                  ctx)
    # 'step' ignores an epoch graph: each step key drops other nodes.
    epoch = ngcf.pre_epoch(ctx, jax.random.key(10),
                           ref.make_config(node_dropout=0.3).model)
    prop = jax.jit(lambda k: ngcf.propagate(params, epoch, step_cfg.model, k))
    self.assertFalse(np.array_equal(prop(jax.random.key(1))[1],
                                    prop(jax.random.key(2))[1]))
    bad = ref.make_config(node_dropout=0.3, dropout_every='batch')
    with self.assertRaisesRegex(ValueError, 'dropout_every'):
      ngcf.pre_epoch(ctx, jax.random.key(10), bad.model)
    with self.assertRaisesRegex(ValueError, 'dropout_every'):
      ngcf.propagate(params, ctx, bad.model, jax.random.key(1))

  def test_resumed_epoch_redraws_the_same_graph(self):
    # Two epochs in one go equal epoch 2 run again from the state saved
    # after epoch 1 (a resumed run): the epoch's dropped graph depends on
    # the seed and the epoch alone. (tests/launch_test.py resumes a killed
    # run for the engine in general.)
    ds = fixtures.random_dataset(num_users=24, num_items=24, per_user=6)
    mesh = mesh_lib.make_mesh(1)

    def config(every):
      cfg = fixtures.small_config('ngcf')
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
    ctx = fixtures.make_context(2 if multimodal else 1)
    with cfg.unlocked():
      cfg.model.embed_dim = 4
    model = importlib.import_module(f'mmjax.models.{cfg.model.name}')
    params = model.init(jax.random.key(0), ctx, cfg.model)
    value, _ = model.loss(params, fixtures.make_batch(), ctx,
                          jax.random.key(1), cfg.model)
    self.assertTrue(np.isfinite(float(value)))


@absltest.skipIf(ref.torch_or_none() is None, 'torch is not installed')
class TorchGradientTest(absltest.TestCase):
  """Loss and gradients against Elliot's NGCF written in torch (float64)."""

  def test_loss_and_gradients(self):
    torch = ref.torch_or_none()
    ctx = fixtures.make_context(1)
    cfg = ref.make_config(num_layers=3)
    params = ref.hand_params(cfg)
    batch = fixtures.make_batch()
    batch['mask'] = jnp.ones_like(batch['mask'])  # Elliot has no padding
    gu, gi, user, pos, neg, leaves = ref.torch_elliot_ngcf(
        torch, params, ref.dense_binary(ctx), batch, 'concat')
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
    ours = ref.flat_grads(grads)
    self.assertEqual(set(ours), set(leaves))
    for name, t in leaves.items():
      np.testing.assert_allclose(ours[name], t.grad.numpy(), rtol=1e-4,
                                 atol=1e-6, err_msg=name)


if __name__ == '__main__':
  absltest.main()
