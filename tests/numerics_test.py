"""The ranking comparisons of tests/testing/numerics.py on hand-made scores."""

from absl.testing import absltest
import numpy as np

from tests.testing import numerics

NEG = -np.inf


class MarginTest(absltest.TestCase):

  def test_margins_by_hand(self):
    scores = np.array([[0.9, 0.1, 0.5, 0.45],
                       [1.0, 1.0, 0.0, NEG],
                       [0.3, NEG, NEG, NEG]])
    # Row 0 sorted: 0.9, 0.5, 0.45, 0.1; k = 2: gaps 0.4, 0.05.
    np.testing.assert_allclose(numerics.topk_margin(scores, 2),
                               [0.05, 0.0, np.inf])
    np.testing.assert_allclose(
        numerics.topk_margin(scores, 2, ordered=False), [0.05, 1.0, np.inf])


class SameRankingTest(absltest.TestCase):

  def test_near_tie_may_swap_but_nothing_else(self):
    scores = np.array([[0.3, 0.7, 0.7 + 1e-7, 0.1],
                       [0.9, 0.2, 0.5, 0.4]])
    swapped = np.array([[1, 2, 0], [0, 2, 3]])
    fixed = numerics.assert_same_ranking(swapped, scores, atol=1e-6)
    np.testing.assert_array_equal(fixed, [False, True])
    for wrong in ([[2, 1, 3], [0, 2, 3]],   # 3 is not the third best
                  [[2, 1, 0], [0, 3, 2]],   # 3 and 2 are 0.1 apart
                  [[2, 2, 0], [0, 2, 3]]):  # a repeated item
      with self.assertRaises(AssertionError):
        numerics.assert_same_ranking(np.array(wrong), scores, atol=1e-6)


class RecallBoundsTest(absltest.TestCase):

  def test_bounds_by_hand(self):
    scores = np.array([0.9, 0.5, 0.5 + 1e-8, 0.2, NEG])
    # Top 2: item 0 surely; items 1 and 2 tie for the second place.
    self.assertEqual(numerics.recall_bounds(scores, [0, 1], 2, 1e-6),
                     (0.5, 1.0))
    self.assertEqual(numerics.recall_bounds(scores, [0, 3], 2, 1e-6),
                     (0.5, 0.5))
    # Fewer finite candidates than k: every finite one is ranked.
    self.assertEqual(numerics.recall_bounds(scores, [3, 4], 5, 1e-6),
                     (0.5, 0.5))


if __name__ == '__main__':
  absltest.main()
