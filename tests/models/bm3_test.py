"""BM3: shapes, finite gradients, masked items, equations, dropout."""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import ml_collections
import numpy as np

from mmjax import models
from mmjax.graph import sparse
from mmjax.models import bm3
from mmjax.models import layers
from mmjax.models import options
from tests.testing import fixtures

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name='bm3', embed_dim=4, reg_weight=0.1, num_layers=2, dropout=0.3,
      cl_weight=2.0, train_features=True))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def _pairs_batch(seed=0, size=8):
  batch = fixtures.make_batch(seed, size)
  del batch['neg']
  return batch


def _np_cos(a, b):
  na = np.maximum(np.linalg.norm(a, axis=-1), 1e-8)
  nb = np.maximum(np.linalg.norm(b, axis=-1), 1e-8)
  return np.sum(a * b, -1) / (na * nb)


class Bm3Test(parameterized.TestCase):

  def test_no_negatives(self):
    self.assertFalse(models.uses_negatives(bm3))

  @parameterized.parameters(1, 2, 3)
  def test_shapes_and_finite_grads(self, num_modalities):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config()
    params = bm3.init(jax.random.key(0), ctx, cfg.model)
    users, items = jax.jit(lambda p, c: bm3.embed(p, c, cfg.model))(params, ctx)
    self.assertEqual(users.shape, (NUM_USERS, 4))
    self.assertEqual(items.shape, (NUM_ITEMS, 4))
    batch = _pairs_batch()
    grads = jax.jit(jax.grad(lambda p, c: bm3.loss(
        p, batch, c, jax.random.key(1), cfg.model)[0]))(params, ctx)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    for m, mask in enumerate(ctx.masks.values()):
      np.testing.assert_array_equal(
          np.asarray(grads['features'][m])[~np.asarray(mask)], 0.0)

  # A batch of 24 rows is larger than both tables (12 users, 20 items): the
  # predictor then runs over the tables and the batch's rows are gathered.
  @parameterized.parameters((1, 8), (2, 8), (2, 24))
  def test_equations(self, num_modalities, batch_size):
    # dropout 0 makes the targets deterministic (sg(x) == x in value).
    ctx = fixtures.make_context(num_modalities, seed=9)
    cfg = make_config(dropout=0.0, reg_weight=0.3, cl_weight=1.5)
    params = bm3.init(jax.random.key(4), ctx, cfg.model)
    batch = _pairs_batch(seed=2, size=batch_size)
    got, _ = bm3.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    got_u, got_i = bm3.embed(params, ctx, cfg.model)

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    a = sparse.to_dense(ctx.graph).astype(np.float64)
    layers = [np.concatenate([p['user'], p['item']])]
    for _ in range(2):
      layers.append(a @ layers[-1])
    e = np.mean(layers, axis=0)
    u_o, i_o = e[:NUM_USERS], e[NUM_USERS:] + p['item']

    def pred(z):
      return z @ p['predictor']['w'] + p['predictor']['b']

    u, i = np.asarray(batch['users']), np.asarray(batch['pos'])
    w = np.asarray(batch['mask'])

    def mean(x, wts):
      return np.sum(wts * x) / max(wts.sum(), 1)

    loss = (1 - mean(_np_cos(pred(u_o)[u], i_o[i]), w)
            + 1 - mean(_np_cos(pred(i_o)[i], u_o[u]), w))
    cl = 0.0
    for m, name in enumerate(ctx.features):
      mk = np.asarray(ctx.masks[name])
      t = (p['features'][m] * mk[:, None]) @ p['proj'][m]['w'] + (
          p['proj'][m]['b'])
      ok = w * mk[i]
      cl += 1 - mean(_np_cos(pred(t)[i], i_o[i]), ok)
      cl += 1 - mean(_np_cos(pred(t)[i], t[i]), ok)
    reg = (np.linalg.norm(u_o) + np.linalg.norm(i_o)) / NUM_ITEMS
    np.testing.assert_allclose(float(got), loss + 0.3 * reg + 1.5 * cl,
                               rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got_u), pred(u_o), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), pred(i_o), rtol=1e-5,
                               atol=1e-6)

  def test_targets_carry_no_gradient(self):
    # The step's key redraws the targets' dropout, so it changes the loss;
    # with cl_weight = 0 the modality projection gets no gradient at all.
    ctx = fixtures.make_context(1)
    cfg = make_config(cl_weight=0.0, reg_weight=0.0, dropout=0.5)
    params = bm3.init(jax.random.key(0), ctx, cfg.model)
    batch = _pairs_batch()
    a, _ = bm3.loss(params, batch, ctx, jax.random.key(1), cfg.model)
    b, _ = bm3.loss(params, batch, ctx, jax.random.key(2), cfg.model)
    self.assertNotEqual(float(a), float(b))
    grads = jax.grad(lambda q: bm3.loss(
        q, batch, ctx, jax.random.key(1), cfg.model)[0])(params)
    # Modality branches only enter through cl: no gradient at cl_weight 0.
    np.testing.assert_array_equal(np.asarray(grads['proj'][0]['w']), 0.0)

  def test_dropout_keeps_one_minus_rate_and_scales_the_kept(self):
    x = jax.random.normal(jax.random.key(3), (400, 50)) + 5.0  # no zeros
    out = np.asarray(layers.dropout(jax.random.key(4), x, 0.3))
    x = np.asarray(x)
    kept = out != 0
    # 20,000 Bernoulli(0.7) draws: sd 0.0032, the bound is 6 sd.
    self.assertAlmostEqual(kept.mean(), 0.7, delta=0.02)
    np.testing.assert_allclose(out[kept], x[kept] / np.float32(0.7),
                               rtol=1e-6)
    other = np.asarray(layers.dropout(jax.random.key(5), x, 0.3)) != 0
    self.assertFalse((other == kept).all())
    np.testing.assert_array_equal(np.asarray(layers.dropout(
        jax.random.key(4), x, 0.0)), x)

  @parameterized.parameters(1, 2)
  def test_dropout_draws_one_mask_per_target_over_whole_tables(
      self, num_modalities):
    # What MMRec drops: u_t, i_t and each modality's target, each with its
    # own mask over the whole table, at the configured rate.
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config(dropout=0.3)
    params = bm3.init(jax.random.key(0), ctx, cfg.model)
    calls = []
    original = layers.dropout

    def recording(key, x, rate):
      calls.append((tuple(np.asarray(jax.random.key_data(key)).ravel()),
                    x.shape, rate))
      return original(key, x, rate)

    with mock.patch.object(layers, 'dropout', recording):
      bm3.loss(params, _pairs_batch(), ctx, jax.random.key(1), cfg.model)
      bm3.embed(params, ctx, cfg.model)  # Scoring draws no dropout.
    self.assertEqual([shape for _, shape, _ in calls],
                     [(NUM_USERS, 4)] + [(NUM_ITEMS, 4)] * (
                         1 + num_modalities))
    self.assertEqual({rate for _, _, rate in calls}, {0.3})
    self.assertLen({key for key, _, _ in calls}, len(calls))


if __name__ == '__main__':
  absltest.main()
