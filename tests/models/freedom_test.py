"""FREEDOM: shapes, finite gradients, masked items, docstring equations."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import jax
import ml_collections
import numpy as np

from mmjax.graph import edges
from mmjax.graph import sparse
from mmjax.models import freedom
from mmjax.models import options
from tests.testing import fixtures
from tests.testing import numerics

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name='freedom', embed_dim=4, reg_weight=0.2, knn_k=3, num_layers=2,
      num_mm_layers=1, dropout=0.5, mm_weights=None, convention='mmrec',
      train_features=True,
  ))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def _np_knn_sym(x, mask, k):
  """Dense FREEDOM item graph: unit top-k (self included), D^-1/2 A D^-1/2."""
  n = len(x)
  norm = np.linalg.norm(x, axis=1)
  valid = mask & (norm > 0)
  xn = np.where(valid[:, None], x / np.where(norm > 0, norm, 1)[:, None], 0)
  sim = xn @ xn.T
  sim[:, ~valid] = -np.inf
  # The float32 graph on device (error < 1e-6 here) and this float64 one
  # pick the same neighbours on any CPU only if no row has a near-tie at
  # its k-th.
  assert numerics.topk_margin(sim[valid], k, ordered=False).min() > 1e-5, (
      'near-tied k-th neighbour: choose other test data')
  a = np.zeros((n, n))
  for i in np.flatnonzero(valid):
    nb = np.argsort(-sim[i], kind='stable')[:k]
    a[i, nb[np.isfinite(sim[i, nb])]] = 1.0
  d = a.sum(1)
  inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
  return inv[:, None] * a * inv[None, :]


def _np_logsig(x):
  return -np.logaddexp(0, -x)


class FreedomTest(parameterized.TestCase):

  @parameterized.parameters(1, 2, 3)
  def test_shapes_and_finite_grads(self, num_modalities):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config()
    params = freedom.init(jax.random.key(0), ctx, cfg.model)
    users, items = jax.jit(lambda p, c: freedom.embed(p, c, cfg.model))(
        params, ctx)
    self.assertEqual(users.shape, (NUM_USERS, 4))
    self.assertEqual(items.shape, (NUM_ITEMS, 4))
    batch = fixtures.make_batch(num_negatives=2)
    grads = jax.jit(jax.grad(lambda p, c: freedom.loss(
        p, batch, c, jax.random.key(1), cfg.model)[0]))(params, ctx)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    # Masked feature rows get no gradient: they stay zero.
    for m, (name, mask) in enumerate(ctx.masks.items()):
      del name
      np.testing.assert_array_equal(
          np.asarray(grads['features'][m])[~np.asarray(mask)], 0.0)

  @parameterized.parameters(
      ('mmrec', 1, 0.5), ('mmrec', 2, 0.0), ('elliot', 1, 0.0),
      ('elliot', 2, 0.5),
  )
  def test_equations(self, convention, num_modalities, dropout):
    ctx = fixtures.make_context(num_modalities, seed=7)
    cfg = make_config(convention=convention, dropout=dropout,
                      mm_weights=(0.3, 0.7))
    params = freedom.init(jax.random.key(2), ctx, cfg.model)
    key = jax.random.key(11)
    batch = fixtures.make_batch(seed=5)
    got, _ = freedom.loss(params, batch, ctx, key, cfg.model)
    got_u, got_i = freedom.embed(params, ctx, cfg.model)

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    names = list(ctx.features)
    masks = [np.asarray(ctx.masks[n]) for n in names]
    if convention == 'mmrec' and num_modalities == 1:
      w = [1.0]
    else:
      w = [0.3, 0.7][:num_modalities]
    s = sum(wm * _np_knn_sym(np.asarray(ctx.features[n]), mk, 3)
            for wm, n, mk in zip(w, names, masks))
    h = s @ p['item']
    a_full = sparse.to_dense(ctx.graph).astype(np.float64)
    a_train = sparse.to_dense(edges.degree_sensitive_prune(
        key, ctx.graph, edges.reverse_edges(ctx.graph), dropout))

    def forward(a):
      e = np.concatenate([p['user'], p['item']])
      layers = [e]
      for _ in range(2):
        layers.append(a @ layers[-1])
      mean = np.mean(layers, axis=0)
      return mean[:NUM_USERS], mean[NUM_USERS:] + h

    u_all, i_all = forward(a_train)
    uu, ii, jj = (np.asarray(batch[k]) for k in ('users', 'pos', 'neg'))
    wt = np.asarray(batch['mask'])
    u = u_all[uu]

    def bpr(x, wts):
      return -np.sum(wts * _np_logsig(x)) / max(wts.sum(), 1)

    mf = bpr(np.sum(u * i_all[ii], 1) - np.sum(u * i_all[jj], 1), wt)
    aux = 0.0
    for m, mk in enumerate(masks):
      proj = (p['features'][m] * mk[:, None]) @ p['proj'][m]['w'] + (
          p['proj'][m]['b'])
      aux += bpr(np.sum(u * proj[ii], 1) - np.sum(u * proj[jj], 1),
                 wt * mk[ii] * mk[jj])
    np.testing.assert_allclose(float(got), mf + 0.2 * aux, rtol=1e-5)
    ref_u, ref_i = forward(a_full)
    np.testing.assert_allclose(np.asarray(got_u), ref_u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), ref_i, rtol=1e-5, atol=1e-6)

  def test_precomputed_extras_give_the_same_loss(self):
    ctx = fixtures.make_context(2)
    cfg = make_config()
    params = freedom.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch()
    plain, _ = freedom.loss(params, batch, ctx, jax.random.key(3), cfg.model)

    rich = dataclasses.replace(
        ctx, extras={'freedom': freedom.prepare(ctx, cfg.model)})
    cached, _ = freedom.loss(params, batch, rich, jax.random.key(3), cfg.model)
    self.assertEqual(float(plain), float(cached))

  def test_pre_epoch_fixes_the_pruned_graph_for_the_epoch(self):
    ctx = fixtures.make_context(2, seed=3)
    cfg = make_config(dropout=0.5)
    params = freedom.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch(seed=3)
    loss = jax.jit(lambda p, c, k: freedom.loss(p, batch, c, k, cfg.model)[0])
    epoch_a = freedom.pre_epoch(ctx, jax.random.key(10), cfg.model)
    epoch_b = freedom.pre_epoch(ctx, jax.random.key(11), cfg.model)
    # Within an epoch the step key no longer changes the graph...
    self.assertEqual(float(loss(params, epoch_a, jax.random.key(1))),
                     float(loss(params, epoch_a, jax.random.key(2))))
    # ...another epoch draws another graph, and per-step pruning (no
    # pre_epoch) follows the step key.
    self.assertNotEqual(float(loss(params, epoch_a, jax.random.key(1))),
                        float(loss(params, epoch_b, jax.random.key(1))))
    self.assertNotEqual(float(loss(params, ctx, jax.random.key(1))),
                        float(loss(params, ctx, jax.random.key(2))))
    step_cfg = make_config(dropout=0.5, prune_every='step')
    self.assertIs(
        freedom.pre_epoch(ctx, jax.random.key(10), step_cfg.model), ctx)
    with self.assertRaisesRegex(ValueError, 'prune_every'):
      freedom.pre_epoch(ctx, jax.random.key(10),
                        make_config(prune_every='batch').model)

  def test_masked_item_has_no_item_graph_neighbours(self):
    ctx = fixtures.make_context(1, masked_share=0.1)
    cfg = make_config()
    g = freedom.prepare(ctx, cfg.model)['item_graph']
    dense = sparse.to_dense(g)
    masked = ~np.asarray(ctx.masks['m0'])
    self.assertTrue(masked.any())
    np.testing.assert_array_equal(dense[masked], 0.0)
    np.testing.assert_array_equal(dense[:, masked], 0.0)

  def test_mm_weights_conventions(self):
    cfg = make_config(mm_weights=(0.1, 0.9))
    self.assertEqual(freedom.mm_weights(cfg.model, ['a']), (1.0,))
    self.assertEqual(freedom.mm_weights(cfg.model, ['a', 'b']), (0.1, 0.9))
    cfg = make_config(mm_weights=(0.1, 0.9), convention='elliot')
    self.assertEqual(freedom.mm_weights(cfg.model, ['a']), (0.1,))
    with self.assertRaisesRegex(ValueError, 'mm_weights'):
      freedom.mm_weights(cfg.model, ['a', 'b', 'c'])
    cfg = make_config(mm_weights={'visual': 0.1, 'textual': 0.9})
    self.assertEqual(freedom.mm_weights(cfg.model, ['textual', 'visual']),
                     (0.9, 0.1))
    with self.assertRaisesRegex(ValueError, "'audio'"):
      freedom.mm_weights(cfg.model, ['audio', 'visual'])
    self.assertEqual(freedom.mm_weights(make_config().model, ['a', 'b']),
                     (0.5, 0.5))


if __name__ == '__main__':
  absltest.main()
