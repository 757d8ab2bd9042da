"""The on-device BPR sampler: exact negatives, uniform, a seeded order."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from mmjax.data import dataset as dataset_lib
from mmjax.train import sampler


def random_train(seed, num_users=40, num_items=25, n=300):
  rng = np.random.default_rng([seed])
  users = rng.integers(0, num_users, n)
  # Skewed items, with duplicates, so degrees vary a lot.
  items = np.minimum(rng.zipf(1.3, n) - 1, num_items - 1)
  return users, items, num_users, num_items


class SamplerTest(parameterized.TestCase):

  @parameterized.parameters('train_items', 'all')
  def test_never_a_positive_and_in_range(self, negatives_from):
    users, items, nu, ni = random_train(0)
    td = sampler.from_interactions(users, items, nu, ni, negatives_from)
    sample = jax.jit(sampler.sample_negatives, static_argnums=3)
    neg = np.asarray(sample(td, jnp.arange(nu, dtype=jnp.int32),
                            jax.random.key(1), 500))
    self.assertEqual(neg.shape, (nu, 500))
    self.assertTrue(((neg >= 0) & (neg < ni)).all())
    positives = set(zip(users.tolist(), items.tolist()))
    hits = sum((u, int(j)) in positives for u in range(nu) for j in neg[u])
    self.assertEqual(hits, 0)
    never_trained = np.setdiff1d(np.arange(ni), items)
    self.assertNotEmpty(never_trained)  # zipf leaves some items out
    drawn = np.isin(neg, never_trained).any()
    self.assertEqual(drawn, negatives_from == 'all')

  def test_uniform_over_non_positives(self):
    # One user with many positives, drawn 20000 times: a chi-square test of
    # uniformity over its non-positive items.
    ni = 30
    pos = np.array([0, 1, 2, 5, 9, 10, 11, 17, 28, 29])
    users = np.zeros(len(pos), np.int64)
    td = sampler.from_interactions(users, pos, 1, ni, 'all')
    neg = np.asarray(sampler.sample_negatives(
        td, jnp.zeros((20000,), jnp.int32), jax.random.key(7), 1))[:, 0]
    allowed = np.setdiff1d(np.arange(ni), pos)
    counts = np.bincount(neg, minlength=ni)
    self.assertEqual(counts[pos].sum(), 0)
    _, p = stats.chisquare(counts[allowed])
    self.assertGreater(p, 1e-3)

  def test_uniform_over_non_positive_training_items(self):
    # User 0's positives, user 1 trains on other items; items 3, 4, 20-24
    # have no training interaction and are never drawn.
    ni = 25
    pos = np.array([0, 1, 2, 5, 9, 10, 11, 17])
    other = np.array([6, 7, 8, 12, 13, 14, 15, 16, 18, 19])
    users = np.concatenate([np.zeros(len(pos)), np.ones(len(other))])
    td = sampler.from_interactions(users.astype(np.int64),
                                   np.concatenate([pos, other]), 2, ni)
    np.testing.assert_array_equal(np.asarray(td.candidates),
                                  np.sort(np.concatenate([pos, other])))
    neg = np.asarray(sampler.sample_negatives(
        td, jnp.zeros((20000,), jnp.int32), jax.random.key(7), 1))[:, 0]
    counts = np.bincount(neg, minlength=ni)
    self.assertEqual(counts.sum() - counts[other].sum(), 0)
    _, p = stats.chisquare(counts[other])
    self.assertGreater(p, 1e-3)

  def test_epoch_order_is_a_seeded_permutation(self):
    users, items, nu, ni = random_train(2, n=103)
    td = sampler.from_interactions(users, items, nu, ni)
    idx, mask = sampler.epoch_order(td, jax.random.key(3), 16)
    idx, mask = np.asarray(idx), np.asarray(mask)
    self.assertEqual(idx.shape, (7, 16))
    self.assertEqual(mask.sum(), 103)
    np.testing.assert_array_equal(np.sort(idx[mask > 0]), np.arange(103))
    again, _ = sampler.epoch_order(td, jax.random.key(3), 16)
    np.testing.assert_array_equal(np.asarray(again), idx)
    other, _ = sampler.epoch_order(td, jax.random.key(4), 16)
    self.assertFalse(np.array_equal(np.asarray(other), idx))

  def test_batch_without_negatives(self):
    users, items, nu, ni = random_train(3)
    td = sampler.from_interactions(users, items, nu, ni)
    batch = sampler.make_batch(td, jnp.arange(4), jnp.ones(4),
                               jax.random.key(0), 2, with_negatives=False)
    self.assertNotIn('neg', batch)
    np.testing.assert_array_equal(np.asarray(batch['pos']), items[:4])

  def test_user_with_every_item_is_refused(self):
    with self.assertRaisesRegex(dataset_lib.DataError, 'user 1 has all 3'):
      sampler.from_interactions(np.array([0, 1, 1, 1]),
                                np.array([0, 0, 1, 2]), 2, 4, 'train_items')
    with self.assertRaisesRegex(dataset_lib.DataError, 'user 1 has all 3'):
      sampler.from_interactions(np.array([0, 1, 1, 1]),
                                np.array([0, 0, 1, 2]), 2, 3, 'all')
    with self.assertRaisesRegex(ValueError, 'negatives_from'):
      sampler.from_interactions(np.array([0]), np.array([0]), 1, 3, 'cold')


if __name__ == '__main__':
  absltest.main()
