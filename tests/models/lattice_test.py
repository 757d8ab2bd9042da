"""LATTICE: shapes, finite gradients, masked items, docstring equations."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import jax
import ml_collections
import numpy as np

from mmjax.graph import sparse
from mmjax.models import lattice
from mmjax.models import options
from tests.testing import fixtures
from tests.testing import numerics

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name='lattice', embed_dim=4, reg_weight=0.1, knn_k=3, num_layers=2,
      num_mm_layers=1, lambda_coeff=0.9, convention='mmrec',
      train_features=True))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def _np_knn_weighted(z, mask, k):
  """MMRec's build_sim + build_knn_neighbourhood, masked rows/cols empty."""
  norm = np.linalg.norm(z, axis=1)
  valid = mask & (norm > 0)
  zn = np.where(valid[:, None], z / np.where(norm > 0, norm, 1)[:, None], 0)
  sim = zn @ zn.T
  sim[:, ~valid] = -np.inf
  # The float32 graph on device (error < 1e-6 here) and this float64 one
  # pick the same neighbours on any CPU only if no row has a near-tie at
  # its k-th.
  assert numerics.topk_margin(sim[valid], k, ordered=False).min() > 1e-5, (
      'near-tied k-th neighbour: choose other test data')
  a = np.zeros_like(sim)
  for i in np.flatnonzero(valid):
    nb = np.argsort(-sim[i], kind='stable')[:k]
    nb = nb[np.isfinite(sim[i, nb])]
    a[i, nb] = sim[i, nb]
  return a


def _np_sym(a):
  d = a.sum(1)
  inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
  return inv[:, None] * a * inv[None, :]


def _np_l2(x):
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class LatticeTest(parameterized.TestCase):

  @parameterized.parameters(1, 2, 3)
  def test_shapes_and_finite_grads(self, num_modalities):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config()
    params = lattice.init(jax.random.key(0), ctx, cfg.model)
    users, items = jax.jit(lambda p, c: lattice.embed(p, c, cfg.model))(
        params, ctx)
    self.assertEqual(users.shape, (NUM_USERS, 4))
    self.assertEqual(items.shape, (NUM_ITEMS, 4))
    batch = fixtures.make_batch(num_negatives=2)
    grads = jax.jit(jax.grad(lambda p, c: lattice.loss(
        p, batch, c, jax.random.key(1), cfg.model)[0]))(params, ctx)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    # The learnt graph passes gradient to the projections.
    self.assertGreater(float(np.abs(np.asarray(grads['proj'][0]['w'])).sum()),
                       0.0)

  @parameterized.parameters(('mmrec', 1), ('mmrec', 2), ('elliot', 2))
  def test_equations(self, convention, num_modalities):
    ctx = fixtures.make_context(num_modalities, seed=4)
    cfg = make_config(convention=convention, reg_weight=0.3)
    params = lattice.init(jax.random.key(3), ctx, cfg.model)
    params['modal_weight'] = params['modal_weight'] * np.arange(
        1.0, num_modalities + 1)
    batch = fixtures.make_batch(seed=6)
    got, _ = lattice.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    got_u, got_i = lattice.embed(params, ctx, cfg.model)

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    names = list(ctx.features)
    alpha = np.exp(p['modal_weight']) / np.exp(p['modal_weight']).sum()
    learnt = np.zeros((NUM_ITEMS, NUM_ITEMS))
    original = np.zeros((NUM_ITEMS, NUM_ITEMS))
    for m, n in enumerate(names):
      mk = np.asarray(ctx.masks[n])
      x0 = np.asarray(ctx.features[n], np.float64)
      original += alpha[m] * _np_sym(_np_knn_weighted(x0, mk, 3))
      t = (p['features'][m] * mk[:, None]) @ p['proj'][m]['w'] + (
          p['proj'][m]['b'])
      learnt += alpha[m] * _np_knn_weighted(t, mk, 3)
    s = 0.1 * _np_sym(learnt) + 0.9 * original
    h = s @ p['item']
    a = (sparse.to_dense(ctx.graph) != 0).astype(np.float64)
    a_hat = a + np.eye(len(a))
    d = a_hat.sum(1)
    if convention == 'mmrec':
      a_hat = a_hat / d[:, None]
    else:
      a_hat = a_hat / d[:, None] / d[None, :]
    layers = [np.concatenate([p['user'], p['item']])]
    for _ in range(2):
      nxt = a_hat @ layers[-1]
      layers.append(_np_l2(nxt) if convention == 'elliot' else nxt)
    e = np.mean(layers, axis=0)
    u_all, i_all = e[:NUM_USERS], e[NUM_USERS:] + _np_l2(h)

    uu, ii, jj = (np.asarray(batch[k]) for k in ('users', 'pos', 'neg'))
    w = np.asarray(batch['mask'])
    x = np.sum(u_all[uu] * i_all[ii], 1) - np.sum(u_all[uu] * i_all[jj], 1)
    bpr = np.sum(w * np.logaddexp(0, -x)) / w.sum()
    reg = 0.5 * sum(np.sum(w[:, None] * v ** 2)
                    for v in (u_all[uu], i_all[ii], i_all[jj])) / w.sum()
    np.testing.assert_allclose(float(got), bpr + 0.3 * reg, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got_u), u_all, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), i_all, rtol=1e-5,
                               atol=1e-6)

  def test_precomputed_extras_give_the_same_loss(self):
    ctx = fixtures.make_context(2)
    cfg = make_config()
    params = lattice.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch()
    plain, _ = lattice.loss(params, batch, ctx, jax.random.key(3), cfg.model)
    rich = dataclasses.replace(
        ctx, extras={'lattice': lattice.prepare(ctx, cfg.model)})
    cached, _ = lattice.loss(params, batch, rich, jax.random.key(3), cfg.model)
    self.assertEqual(float(plain), float(cached))

  def test_masked_item_is_isolated_in_the_item_graph(self):
    ctx = fixtures.make_context(1, masked_share=0.1)
    cfg = make_config()
    params = lattice.init(jax.random.key(0), ctx, cfg.model)
    dense = sparse.to_dense(lattice.item_graph(params, ctx, cfg.model))
    masked = ~np.asarray(ctx.masks['m0'])
    self.assertTrue(masked.any())
    np.testing.assert_array_equal(dense[masked], 0.0)
    np.testing.assert_array_equal(dense[:, masked], 0.0)


if __name__ == '__main__':
  absltest.main()
