"""Beyond-accuracy metrics against hand-computed values."""

import math

from absl.testing import absltest
import numpy as np

from mmjax.eval import beyond


class BeyondTest(absltest.TestCase):

  def test_item_popularity_counts_distinct_users(self):
    user = np.asarray([0, 0, 1, 2, 2], np.int32)
    item = np.asarray([1, 1, 1, 3, 1], np.int32)  # User 0 repeats item 1.
    np.testing.assert_array_equal(
        beyond.item_popularity(user, item, 5), [0, 3, 0, 1, 0])

  def test_long_tail(self):
    # Total 20; the head takes items in decreasing popularity until their sum
    # reaches 80% = 16: item 2 (10), then item 0 (6) -> 16, stop.
    pop = np.asarray([6, 2, 10, 0, 2])
    np.testing.assert_array_equal(
        beyond.long_tail_mask(pop, 0.8), [False, True, False, True, True])
    # 50% = 10 is reached by item 2 alone.
    np.testing.assert_array_equal(
        beyond.long_tail_mask(pop, 0.5), [True, True, False, True, True])
    with self.assertRaisesRegex(ValueError, 'head_share'):
      beyond.long_tail_mask(pop, 0.0)

  def test_coverage_and_gini(self):
    top = np.asarray([[0, 1], [0, 2], [0, 1]])
    self.assertAlmostEqual(beyond.coverage(top, 4, 2), 3 / 4)
    self.assertAlmostEqual(beyond.coverage(top, 4, 1), 1 / 4)
    # Counts sorted ascending: (0, 1, 2, 3), n = 4:
    # (-3*0 - 1*1 + 1*2 + 3*3) / (3 * 6) = 10 / 18.
    self.assertAlmostEqual(beyond.gini(top, 4, 2), 10 / 18)
    # One item takes every slot: Gini 1; every item equally: 0.
    self.assertAlmostEqual(beyond.gini(top, 4, 1), 1.0)
    self.assertAlmostEqual(
        beyond.gini(np.asarray([[0, 1], [2, 3]]), 4, 2), 0.0)

  def test_per_user(self):
    top = np.asarray([[2, 0, 1], [3, 4, 2]], np.int32)
    pop = np.asarray([6.0, 2.0, 10.0, 0.0, 2.0], np.float32)
    tail = np.asarray([False, True, False, True, True])
    nov = beyond.novelty(pop, 10)  # 1 - pop / 10.
    np.testing.assert_allclose(nov, [0.4, 0.8, 0.0, 1.0, 0.8], rtol=1e-6)
    # User 0 finds item 0 (rank 2) relevant, user 1 items 3 and 2 (ranks 1, 3).
    gains = np.asarray([[0, 1, 0], [1, 0, 1]], np.float32)
    got = beyond.compute(top, gains, pop, tail, nov, (2, 3))
    np.testing.assert_allclose(got['arp@2'], [8.0, 1.0])
    np.testing.assert_allclose(got['aplt@3'], [1 / 3, 2 / 3], rtol=1e-6)
    norm = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    np.testing.assert_allclose(
        got['epc@3'],
        [0.4 / math.log2(3) / norm, (1.0 + 0.0 / 2) / norm], rtol=1e-6)

  def test_compute_equals_a_per_user_loop(self):
    rng = np.random.default_rng(0)
    n_items, k_max = 40, 12
    top = np.stack([rng.permutation(n_items)[:k_max] for _ in range(9)]
                   ).astype(np.int32)
    gains = (rng.random(top.shape) < 0.3).astype(np.float32)
    pop = rng.integers(0, 50, n_items).astype(np.float32)
    tail = rng.random(n_items) < 0.5
    nov = beyond.novelty(pop, 60)
    ks = (1, 5, 12)
    got = beyond.compute(top, gains, pop, tail, nov, ks)
    self.assertLen(got, 9)
    for k in ks:
      disc = 1 / np.log2(np.arange(2, k + 2))
      for u in range(len(top)):
        items, rel = top[u, :k], gains[u, :k] > 0
        np.testing.assert_allclose(got[f'arp@{k}'][u], pop[items].mean(),
                                   rtol=1e-6)
        np.testing.assert_allclose(got[f'aplt@{k}'][u], tail[items].mean(),
                                   rtol=1e-6)
        np.testing.assert_allclose(
            got[f'epc@{k}'][u], (rel * disc * nov[items]).sum() / disc.sum(),
            rtol=1e-6, atol=1e-7)

if __name__ == '__main__':
  absltest.main()
