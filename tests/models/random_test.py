"""Random: seeded per-user scores, and Recall@K near its expectation K/I."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.eval import ranking
from mmjax.models import context
from mmjax.models import random as random_model
from mmjax.utils import seeds

NUM_USERS, NUM_ITEMS = 400, 60


def make_dataset(seed=0):
  """Each user: 3-8 distinct items, all but the last 2 for training."""
  rng = np.random.default_rng([seed, 3])
  user, item, split = [], [], []
  for u in range(NUM_USERS):
    n = int(rng.integers(3, 9))
    chosen = rng.choice(NUM_ITEMS, n, replace=False)
    user += [u] * n
    item += list(chosen)
    split += [dataset_lib.TRAIN] * (n - 2) + [dataset_lib.VALID,
                                               dataset_lib.TEST]
  return dataset_lib.Dataset(
      user=np.asarray(user, np.int32), item=np.asarray(item, np.int32),
      split=np.asarray(split, np.int8),
      user_ids=np.asarray([f'u{i}' for i in range(NUM_USERS)]),
      item_ids=np.asarray([f'i{i}' for i in range(NUM_ITEMS)]))


def make_config(seed=0):
  cfg = ml_collections.ConfigDict()
  cfg.seed = seed
  cfg.model = ml_collections.ConfigDict({'name': 'random'})
  return cfg


def init_key(cfg):
  """The key the loop gives a closed-form model: the run's init stream."""
  return seeds.stream(cfg.seed, seeds.STREAM_INIT)


def scores(cfg, users, ctx):
  params = random_model.fit(init_key(cfg), ctx, cfg.model)
  return np.asarray(jax.jit(
      lambda p, c, u: random_model.score(p, c, u, cfg.model))(
          params, ctx, jnp.asarray(users, jnp.int32)))


class RandomTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.ds = make_dataset()
    self.ctx, _ = context.make_context(self.ds)

  def test_seeded_per_user_and_independent_of_the_block(self):
    cfg = make_config(seed=3)
    full = scores(cfg, np.arange(NUM_USERS), self.ctx)
    self.assertEqual(full.shape, (NUM_USERS, NUM_ITEMS))
    self.assertTrue(np.all((full >= 0) & (full < 1)))
    # Same seed, same numbers; any block of users reads the same rows.
    np.testing.assert_array_equal(
        scores(cfg, np.arange(NUM_USERS), self.ctx), full)
    block = np.array([17, 5, 5, 399])
    np.testing.assert_array_equal(scores(cfg, block, self.ctx), full[block])
    # Different users, different scores; another seed, other scores.
    self.assertFalse(np.array_equal(full[0], full[1]))
    other = scores(make_config(seed=4), np.arange(NUM_USERS), self.ctx)
    self.assertGreater(np.mean(other != full), 0.99)

  def test_sharded_scores_equal_single_device(self):
    cfg = make_config(seed=1)
    users = np.arange(16, dtype=np.int32) * 7
    one = scores(cfg, users, self.ctx)
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
        'data'))
    with jax.set_mesh(mesh):
      many = jax.jit(lambda p, c, u: random_model.score(p, c, u, cfg.model))(
          random_model.fit(init_key(cfg), self.ctx, cfg.model), self.ctx,
          jax.device_put(users, rows))
    np.testing.assert_array_equal(np.asarray(many), one)

  def test_recall_is_close_to_k_over_unmasked_items(self):
    cfg_eval = ml_collections.ConfigDict(dict(
        topk=(5, 20), batch_users=64, gain='binary', convention='mmrec',
        relevance_threshold=None, mask_valid_at_test=True, user_groups=()))
    cfg = make_config(seed=0)
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    data = ranking.make_eval_data(self.ds, dataset_lib.VALID,
                                  mask_valid=True, relevance_threshold=None)
    evaluator = ranking.Evaluator(
        data, cfg_eval, mesh,
        lambda p, c, u: random_model.score(p, c, u, cfg.model))
    params = random_model.fit(init_key(cfg), self.ctx, cfg.model)
    result = evaluator(params, self.ctx, jax.random.key(0))
    train = self.ds.split == dataset_lib.TRAIN
    n_free = NUM_ITEMS - np.bincount(self.ds.user[train],
                                     minlength=NUM_USERS)  # unmasked items
    for k in (5, 20):
      # One relevant item per user: a hit with probability K / n_free.
      p = k / n_free
      expected = p.mean()
      stderr = np.sqrt((p * (1 - p)).sum()) / NUM_USERS
      got = result.summary[f'recall@{k}']
      self.assertLess(abs(got - expected), 4 * stderr, (k, got, expected))
      # Roughly K / I, the brief's rule of thumb.
      self.assertAlmostEqual(got, k / NUM_ITEMS, delta=0.05)


if __name__ == '__main__':
  absltest.main()
