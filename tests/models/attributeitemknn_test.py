"""AttributeItemKNN: dense numpy reference, one-hot and dense features."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.graph import sparse
from mmjax.models import attributeitemknn
from mmjax.models import context
from mmjax.models import options
from tests.testing import references

NUM_USERS, NUM_ITEMS = 14, 21


def make_context(kind='dense', seed=0, masked=(3, 17)):
  """Training interactions plus features; `masked` items lack them all."""
  rng = np.random.default_rng([seed, 11])
  users = rng.integers(0, NUM_USERS, 60)
  items = rng.integers(0, NUM_ITEMS, 60)
  graph = sparse.sym_normalize(
      sparse.bipartite(users, items, NUM_USERS, NUM_ITEMS))
  r = np.zeros((NUM_USERS, NUM_ITEMS))
  r[users, items] = 1.0
  mask = np.ones(NUM_ITEMS, bool)
  mask[list(masked)] = False
  if kind == 'onehot':
    # Two slots of 4 and 3 values, one value each (keywords-like).
    x = np.zeros((NUM_ITEMS, 7), np.float32)
    x[np.arange(NUM_ITEMS), rng.integers(0, 4, NUM_ITEMS)] = 1.0
    x[np.arange(NUM_ITEMS), 4 + rng.integers(0, 3, NUM_ITEMS)] = 1.0
    features = {'keywords': x}
  else:
    features = {'text': rng.normal(size=(NUM_ITEMS, 5)).astype(np.float32),
                'visual': rng.normal(size=(NUM_ITEMS, 3)).astype(np.float32)}
  masks = {}
  for m, x in features.items():
    x[~mask] = 0.0  # the store's zero rows
    features[m] = jnp.asarray(x)
    masks[m] = jnp.asarray(mask)
  ctx = context.ModelContext(
      graph=graph, features=features, masks=masks,
      item_popularity=jnp.ones(NUM_ITEMS), extras={}, num_users=NUM_USERS,
      num_items=NUM_ITEMS)
  return ctx, r, mask


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0
  cfg.model = ml_collections.ConfigDict(dict(
      name='attributeitemknn', neighbors=4, shrink=0.0, modality='',
      direction='candidate', exclude_self=False, block_size=8))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def reference_sim(x, valid, shrink):
  x = np.asarray(x, np.float64)
  n = np.linalg.norm(x, axis=1)
  den = n[:, None] * n[None, :] + shrink
  sim = (x @ x.T) / np.where(den > 0, den, 1.0)
  return sim, valid & (n > 0)


class AttributeItemKnnTest(parameterized.TestCase):

  @parameterized.product(
      kind=['dense', 'onehot'], shrink=[0.0, 10.0],
      direction=['candidate', 'history'])
  def test_matches_dense_reference(self, kind, shrink, direction):
    ctx, r, mask = make_context(kind)
    exclude_self = shrink > 0  # Both settings, without doubling the grid.
    cfg = make_config(shrink=shrink, direction=direction,
                      exclude_self=exclude_self)
    params = jax.jit(lambda c: attributeitemknn.fit(
        jax.random.key(0), c, cfg.model))(ctx)
    self.assertEqual(params['neighbors'].shape, (NUM_ITEMS, 4))
    x = np.concatenate([np.asarray(ctx.features[m])
                        for m in sorted(ctx.features)], axis=1)
    sim, valid = reference_sim(x, mask, shrink)
    _, w = references.itemknn_topk(sim, 4, valid, exclude_self)
    np.testing.assert_allclose(params['weights'], w, rtol=1e-5, atol=1e-6)
    got = np.asarray(params['neighbors'])
    # Every kept neighbour really has the similarity stored for it.
    for i in range(NUM_ITEMS):
      for s in range(4):
        if w[i, s] != 0:
          np.testing.assert_allclose(sim[i, got[i, s]], w[i, s], rtol=1e-5)
          self.assertTrue(valid[got[i, s]])
          if exclude_self:
            self.assertNotEqual(got[i, s], i)
    scores = jax.jit(
        lambda p, c, u: attributeitemknn.score(p, c, u, cfg.model))(
        params, ctx, jnp.arange(NUM_USERS, dtype=jnp.int32))
    want = references.itemknn_scores(r, got, np.asarray(params['weights']),
                                         direction)
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)
    # Items lacking the representation have no neighbours, and (with the
    # candidate direction) score 0.
    np.testing.assert_array_equal(np.asarray(params['weights'])[~mask], 0.0)
    if direction == 'candidate':
      np.testing.assert_array_equal(np.asarray(scores)[:, ~mask], 0.0)

  def test_all_neighbours_give_the_dense_formula(self):
    ctx, r, mask = make_context('dense', seed=4)
    cfg = make_config(neighbors=NUM_ITEMS)
    params = attributeitemknn.fit(jax.random.key(0), ctx, cfg.model)
    x = np.concatenate([np.asarray(ctx.features[m])
                        for m in sorted(ctx.features)], axis=1)
    sim, valid = reference_sim(x, mask, 0.0)
    sim[~valid] = 0.0
    sim[:, ~valid] = 0.0
    scores = attributeitemknn.score(params, ctx, jnp.arange(NUM_USERS),
                                    cfg.model)
    np.testing.assert_allclose(scores, r @ sim.T, rtol=1e-5, atol=1e-5)

  def test_one_modality_chosen(self):
    ctx, r, mask = make_context('dense', seed=2)
    cfg = make_config(modality='visual', neighbors=NUM_ITEMS)
    params = attributeitemknn.fit(jax.random.key(0), ctx, cfg.model)
    sim, valid = reference_sim(np.asarray(ctx.features['visual']), mask, 0.0)
    sim[~valid] = 0.0
    sim[:, ~valid] = 0.0
    scores = attributeitemknn.score(params, ctx, jnp.arange(NUM_USERS),
                                    cfg.model)
    np.testing.assert_allclose(scores, r @ sim.T, rtol=1e-5, atol=1e-5)

  def test_planted_attribute(self):
    # Items 0-3 share a keyword no other item has; a user who saw item 0
    # gets 1, 2, 3 first, although nobody ever consumed them.
    num_items = 30
    x = np.zeros((num_items, 12), np.float32)
    x[:4, 0] = 1.0
    x[4:, 1 + np.arange(num_items - 4) % 11] = 1.0
    users = np.array([0, 1, 1, 2, 2])
    items = np.array([0, 10, 11, 12, 20])
    graph = sparse.sym_normalize(sparse.bipartite(users, items, 3,
                                                  num_items))
    ctx = context.ModelContext(
        graph=graph, features={'keywords': jnp.asarray(x)},
        masks={'keywords': jnp.ones(num_items, bool)},
        item_popularity=jnp.ones(num_items), extras={}, num_users=3,
        num_items=num_items)
    cfg = make_config(neighbors=5)
    params = attributeitemknn.fit(jax.random.key(0), ctx, cfg.model)
    scores = np.array(attributeitemknn.score(params, ctx, jnp.asarray([0]),
                                             cfg.model))
    scores[0, 0] = -np.inf
    self.assertEqual(set(np.argsort(-scores[0], kind='stable')[:3]),
                     {1, 2, 3})

  def test_errors(self):
    ctx, _, _ = make_context('dense')
    with self.assertRaisesRegex(ValueError, 'model.modality'):
      attributeitemknn.fit(jax.random.key(0), ctx,
                           make_config(modality='audio').model)
    empty = context.ModelContext(
        graph=ctx.graph, features={}, masks={}, item_popularity=jnp.ones(
            NUM_ITEMS), extras={}, num_users=NUM_USERS, num_items=NUM_ITEMS)
    with self.assertRaisesRegex(ValueError, 'features.sources'):
      attributeitemknn.fit(jax.random.key(0), empty, make_config().model)


if __name__ == '__main__':
  absltest.main()
