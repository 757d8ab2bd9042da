"""ItemKNN: dense numpy reference, [I, k] memory, planted co-consumption."""

import importlib.util
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.graph import sparse
from mmjax.models import context
from mmjax.models import itemknn
from mmjax.models import options
from mmjax.parallel import mesh as mesh_lib
from mmjax.train import loop
from tests.testing import references

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

NUM_USERS, NUM_ITEMS = 15, 23


def make_context(seed=0, num_users=NUM_USERS, num_items=NUM_ITEMS, n=70,
                 cold=2):
  """Random training interactions; the last `cold` items have none."""
  rng = np.random.default_rng([seed, 7])
  users = rng.integers(0, num_users, n)
  items = rng.integers(0, num_items - cold, n)
  graph = sparse.sym_normalize(
      sparse.bipartite(users, items, num_users, num_items))
  r = np.zeros((num_users, num_items))
  r[users, items] = 1.0
  ctx = context.ModelContext(
      graph=graph, features={}, masks={},
      item_popularity=jnp.asarray(r.sum(0), jnp.float32), extras={},
      num_users=num_users, num_items=num_items)
  return ctx, r


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0
  cfg.model = ml_collections.ConfigDict(dict(
      name='itemknn', neighbors=5, shrink=0.0, implementation='aiolli',
      direction='candidate', block_size=8))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


class ItemKnnTest(parameterized.TestCase):

  @parameterized.product(
      implementation=['aiolli', 'classic'], shrink=[0.0, 2.0],
      neighbors=[1, 5, 40])
  def test_matches_dense_reference(self, implementation, shrink, neighbors):
    ctx, r = make_context()
    # Several blocks with a padded last one, and a single block.
    block_size = 64 if neighbors == 40 else 8
    cfg = make_config(implementation=implementation, shrink=shrink,
                      neighbors=neighbors, block_size=block_size)
    params = jax.jit(lambda c: itemknn.fit(jax.random.key(0), c,
                                           cfg.model))(ctx)
    k = min(neighbors, NUM_ITEMS)
    # The memory-shaped arrays are [I, k], never [I, I].
    self.assertEqual(params['neighbors'].shape, (NUM_ITEMS, k))
    self.assertEqual(params['weights'].shape, (NUM_ITEMS, k))
    eps = itemknn.AIOLLI_EPS if implementation == 'aiolli' else 0.0
    sim, valid = references.itemknn_cosine(r, shrink, eps)
    nbr, w = references.itemknn_topk(sim, k, valid)
    np.testing.assert_allclose(params['weights'], w, rtol=1e-5, atol=1e-6)
    # Neighbour ids are compared where the similarity is not tied with
    # another candidate (binary co-occurrences tie often).
    got = np.asarray(params['neighbors'])
    for i in range(NUM_ITEMS):
      for s in range(k):
        if w[i, s] == 0:
          continue
        if np.sum(np.isclose(sim[i], w[i, s], rtol=1e-6)) == 1:
          self.assertEqual(got[i, s], nbr[i, s], (i, s))
    users = jnp.arange(NUM_USERS, dtype=jnp.int32)
    scores = jax.jit(lambda p, c, u: itemknn.score(p, c, u, cfg.model))(
        params, ctx, users)
    self.assertEqual(scores.shape, (NUM_USERS, NUM_ITEMS))
    # Scores from OUR neighbour sets (ties may pick another, equally
    # similar, neighbour than the reference's sort).
    want = references.itemknn_scores(r, got, np.asarray(params['weights']),
                            classic=implementation == 'classic')
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)
    # And, with all neighbours kept, exactly the dense formula.
    if k == NUM_ITEMS:
      full = sim.copy()
      full[~valid] = 0.0
      full[:, ~valid] = 0.0
      np.fill_diagonal(full, 0.0)
      dense = r @ full.T
      if implementation == 'classic':
        den = full.sum(1)
        dense = np.where(den != 0, dense / np.where(den != 0, den, 1.0), 0)
      np.testing.assert_allclose(scores, dense, rtol=1e-5, atol=1e-6)

  def test_cold_items_have_no_neighbours_and_score_zero(self):
    ctx, _ = make_context(cold=2)
    cfg = make_config(neighbors=4)
    params = itemknn.fit(jax.random.key(0), ctx, cfg.model)
    w = np.asarray(params['weights'])
    nbr = np.asarray(params['neighbors'])
    np.testing.assert_array_equal(w[-2:], 0.0)
    # No item lists a cold item with a non-zero weight.
    self.assertFalse(np.any((nbr >= NUM_ITEMS - 2) & (w != 0)))
    scores = itemknn.score(params, ctx, jnp.arange(NUM_USERS), cfg.model)
    np.testing.assert_array_equal(np.asarray(scores)[:, -2:], 0.0)

  def test_history_direction(self):
    ctx, r = make_context(seed=3)
    cfg = make_config(neighbors=3, direction='history')
    params = itemknn.fit(jax.random.key(0), ctx, cfg.model)
    scores = itemknn.score(params, ctx, jnp.arange(NUM_USERS), cfg.model)
    want = references.itemknn_scores(r, np.asarray(params['neighbors']),
                            np.asarray(params['weights']), 'history')
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-6)
    # The two graphs are each other's transpose, and so are the transpose
    # patterns they carry (checked through propagate's gradient, A^T g).
    cand = itemknn.neighbourhood_graph(params['neighbors'], params['weights'])
    hist = params['graph']
    a = sparse.to_dense(cand)
    np.testing.assert_allclose(sparse.to_dense(hist), a.T)
    g = np.random.default_rng([1]).normal(size=(NUM_ITEMS, 3)).astype(
        np.float32)
    for graph, dense in ((cand, a), (hist, a.T)):
      grad = jax.grad(lambda x, gr=graph: jnp.sum(
          sparse.propagate(gr, x) * g))(jnp.zeros((NUM_ITEMS, 3)))
      np.testing.assert_allclose(grad, dense.T @ g, rtol=1e-5, atol=1e-6)

  def test_history_of_repeated_and_permuted_users(self):
    ctx, r = make_context(seed=1)
    users = jnp.asarray([4, 0, 4, 14, 4, 2], jnp.int32)
    hist = jax.jit(itemknn.user_history)(ctx, users)
    np.testing.assert_array_equal(hist, r[np.asarray(users)])

  def test_planted_co_consumption(self):
    # Items 0-4 are always consumed together; a user who saw 0 and 1
    # (held out: 2, 3, 4) gets 2, 3, 4 as the top three.
    rng = np.random.default_rng([5])
    users, items = [], []
    for u in range(30):
      if u < 12:
        chosen = [0, 1, 2, 3, 4]
      else:
        chosen = list(rng.choice(np.arange(5, 40), 5, replace=False))
      users += [u] * len(chosen)
      items += chosen
    users += [30, 30]
    items += [0, 1]
    graph = sparse.sym_normalize(sparse.bipartite(
        np.asarray(users), np.asarray(items), 31, 40))
    ctx = context.ModelContext(
        graph=graph, features={}, masks={},
        item_popularity=jnp.ones(40), extras={}, num_users=31, num_items=40)
    cfg = make_config(neighbors=4)
    params = itemknn.fit(jax.random.key(0), ctx, cfg.model)
    scores = np.array(itemknn.score(params, ctx, jnp.asarray([30]), cfg.model))
    scores[0, [0, 1]] = -np.inf  # the evaluator masks training items
    self.assertEqual(set(np.argsort(-scores[0])[:3]), {2, 3, 4})

  def test_sharded_scores_equal_single_device(self):
    ctx, _ = make_context(seed=2)
    cfg = make_config(neighbors=4)
    params = itemknn.fit(jax.random.key(0), ctx, cfg.model)
    users = np.arange(16, dtype=np.int32) % NUM_USERS
    one = itemknn.score(params, ctx, jnp.asarray(users), cfg.model)
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
        'data'))
    repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    with jax.set_mesh(mesh):
      many = jax.jit(lambda p, c, u: itemknn.score(p, c, u, cfg.model))(
          jax.device_put(params, repl), jax.device_put(ctx, repl),
          jax.device_put(users, rows))
    np.testing.assert_allclose(many, one, rtol=1e-6)

  @parameterized.parameters(('aiolli', 'candidate', 0.0),
                            ('classic', 'candidate', 1.5),
                            ('aiolli', 'history', 0.0))
  def test_sparse_cooccurrence_equals_propagation(self, implementation,
                                                  direction, shrink):
    # Many blocks (a padded last one), power-law items: the scipy product
    # and the two propagations give bit-identical counts, so identical
    # neighbours, weights and scores.
    rng = np.random.default_rng([11])
    num_users, num_items = 120, 90
    pop = 1.0 / np.arange(1, num_items + 1)
    users = rng.integers(0, num_users, 900)
    items = rng.choice(num_items, 900, p=pop / pop.sum())
    graph = sparse.sym_normalize(
        sparse.bipartite(users, items, num_users, num_items))
    ctx = context.ModelContext(
        graph=graph, features={}, masks={},
        item_popularity=jnp.ones(num_items), extras={},
        num_users=num_users, num_items=num_items)
    out = {}
    for cooc in ('sparse', 'propagate'):
      cfg = make_config(neighbors=7, block_size=16, cooccurrence=cooc,
                        implementation=implementation, direction=direction,
                        shrink=shrink)
      params = jax.jit(lambda c, cfg=cfg: itemknn.fit(
          jax.random.key(0), c, cfg.model))(ctx)
      out[cooc] = (params, itemknn.score(
          params, ctx, jnp.arange(num_users, dtype=jnp.int32), cfg.model))
    (p_s, s_s), (p_p, s_p) = out['sparse'], out['propagate']
    np.testing.assert_array_equal(p_s['neighbors'], p_p['neighbors'])
    np.testing.assert_array_equal(p_s['weights'], p_p['weights'])
    np.testing.assert_array_equal(s_s, s_p)
    # And the counts are R^T R.
    r = np.zeros((num_users, num_items), np.float32)
    r[users, items] = 1.0
    ids = jnp.asarray([0, 5, 89, 89], jnp.int32)
    rows = jax.jit(lambda g, i: itemknn.cooccurrence_rows(g, i, num_users))(
        graph, ids)
    np.testing.assert_array_equal(rows, (r.T @ r)[np.asarray(ids)])

  def test_bad_options(self):
    ctx, _ = make_context()
    with self.assertRaisesRegex(ValueError, 'implementation'):
      itemknn.fit(jax.random.key(0), ctx,
                  make_config(implementation='fancy').model)
    with self.assertRaisesRegex(ValueError, 'direction'):
      itemknn.fit(jax.random.key(0), ctx,
                  make_config(direction='sideways').model)
    with self.assertRaisesRegex(ValueError, 'classic'):
      itemknn.fit(jax.random.key(0), ctx, make_config(
          implementation='classic', direction='history').model)
    with self.assertRaisesRegex(ValueError, 'cooccurrence'):
      itemknn.fit(jax.random.key(0), ctx,
                  make_config(cooccurrence='dense').model)

def load_config(name, arg='runlocal'):
  path = os.path.join(REPO, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'mmjax_cfg_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  cfg = module.get_config(arg)
  cfg.data.root = os.path.join(tempfile.gettempdir(), 'mmjax_baselines_data')
  return cfg, module


class BaselineConfigsTest(absltest.TestCase):
  """The three baselines' configs fit and evaluate on 8 devices."""

  def test_runlocal_configs_through_the_trainer(self):
    recall = {}
    ds = data_dir = None
    mesh = mesh_lib.make_mesh(8)
    for name in ('random', 'itemknn', 'attributeitemknn'):
      cfg, module = load_config(name)
      self.assertNotEmpty(module.get_sweep())
      if ds is None:
        ds, data_dir = loop.load_dataset(cfg)
      trainer = loop.Trainer(cfg, ds, data_dir, mesh)
      self.assertTrue(trainer.fit_only)
      params = trainer.fit()
      if name != 'random':
        k = min(int(cfg.model.neighbors), ds.num_items)
        self.assertEqual(params['neighbors'].shape, (ds.num_items, k))
      with jax.set_mesh(mesh):  # validation only: half the compiles
        result = trainer.evaluators['val'](params, trainer.ctx,
                                           jax.random.key(0))
      recall[name] = result.summary['recall@20']
    # Random sits near K / I (0.11 here: 20 of about 185 unmasked items);
    # interaction kNN well above it (0.31; the synthetic data plants
    # collaborative clusters).
    self.assertLess(recall['random'], 0.25)
    self.assertGreater(recall['itemknn'], 2 * recall['random'], recall)


if __name__ == '__main__':
  absltest.main()
