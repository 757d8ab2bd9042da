"""Metrics: hand-computed 3-user cases per convention, and a numpy reference."""

import math

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax.eval import metrics
from tests.testing import references

L2, L3 = math.log2(3), math.log2(4)  # Rank discounts 1/log2(k+1), k = 2, 3.


def _gains(rows, width):
  return np.asarray([r + [0.0] * (width - len(r)) for r in rows], np.float32)


# Three users, K = 3. A: |R| = 2, hits at ranks 1 and 3. B: |R| = 4, hit at
# rank 2. C: |R| = 1, no hit.
HITS = _gains([[1, 0, 1], [0, 1, 0], [0, 0, 0]], 3)
NUM_REL = np.asarray([2, 4, 1])
IDEAL = _gains([[1, 1], [1, 1, 1, 1], [1]], 4)


class HandComputedTest(parameterized.TestCase):

  def _compute(self, convention, gains=HITS, ideal=IDEAL):
    out = metrics.compute(gains, ideal, NUM_REL, (3,), convention)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}

  @parameterized.parameters('mmrec', 'elliot')
  def test_shared_definitions(self, convention):
    m = self._compute(convention)
    np.testing.assert_allclose(m['recall@3'], [1.0, 0.25, 0.0], rtol=1e-6)
    np.testing.assert_allclose(m['precision@3'], [2 / 3, 1 / 3, 0], rtol=1e-6)
    np.testing.assert_allclose(m['hit@3'], [1, 1, 0])
    np.testing.assert_allclose(m['mrr@3'], [1.0, 0.5, 0.0], rtol=1e-6)
    # The ideal list is cut at min(|R|, K) in both tools: A's IDCG has two
    # terms, B's three (not four).
    np.testing.assert_allclose(
        m['ndcg@3'],
        [(1 + 1 / 2) / (1 + 1 / L2), (1 / L2) / (1 + 1 / L2 + 1 / L3), 0.0],
        rtol=1e-6,
    )

  def test_map_mmrec(self):
    # sum of P@k at hits / min(|R|, K): A (1 + 2/3) / 2, B (1/2) / 3.
    m = self._compute('mmrec')
    np.testing.assert_allclose(m['map@3'], [5 / 6, 1 / 6, 0.0], rtol=1e-6)

  def test_map_elliot(self):
    # mean of P@1..P@K: A (1 + 1/2 + 2/3) / 3, B (0 + 1/2 + 1/3) / 3.
    m = self._compute('elliot')
    np.testing.assert_allclose(m['map@3'], [13 / 18, 5 / 18, 0.0], rtol=1e-6)

  def test_graded_ndcg_elliot(self):
    # Threshold t = 3, gain 2^(r - 3 + 1) - 1. A's relevant ratings (5, 3):
    # gains 7 (rank 1) and 1 (rank 3). B's ratings (4, 4, 3, 5): gains
    # 3, 3, 1, 7; the hit at rank 2 has rating 4.
    gains = _gains([[7, 0, 1], [0, 3, 0], [0, 0, 0]], 3)
    ideal = _gains([[7, 1], [7, 3, 3, 1], [1]], 4)
    m = self._compute('elliot', gains, ideal)
    np.testing.assert_allclose(
        m['ndcg@3'],
        [(7 + 1 / L3) / (7 + 1 / L2), (3 / L2) / (7 + 3 / L2 + 3 / L3), 0.0],
        rtol=1e-6,
    )
    # Hit-based metrics ignore the grade.
    np.testing.assert_allclose(m['recall@3'], [1.0, 0.25, 0.0], rtol=1e-6)

  def test_unknown_convention(self):
    with self.assertRaisesRegex(ValueError, 'convention'):
      metrics.compute(HITS, IDEAL, NUM_REL, (3,), 'recbole')


class ReferenceTest(parameterized.TestCase):

  @parameterized.product(convention=('mmrec', 'elliot'), graded=(False, True))
  def test_random_rankings(self, convention, graded):
    rng = np.random.default_rng([7, graded])
    n_users, n_items, ks = 30, 25, (1, 5, 10)
    k_max = max(ks)
    ranked = np.stack([rng.permutation(n_items) for _ in range(n_users)])
    relevant = []
    for _ in range(n_users):
      items = rng.choice(n_items, rng.integers(1, 12), replace=False)
      gains = rng.integers(1, 8, len(items)) if graded else np.ones(len(items))
      relevant.append(dict(zip(items.tolist(), gains.astype(float).tolist())))
    gains = np.asarray(
        [[rel.get(i, 0.0) for i in row[:k_max]]
         for row, rel in zip(ranked, relevant)], np.float32)
    width = max(len(r) for r in relevant)
    ideal = np.zeros((n_users, width), np.float32)
    for u, rel in enumerate(relevant):
      g = sorted(rel.values(), reverse=True)
      ideal[u, : len(g)] = g
    n_rel = np.asarray([len(r) for r in relevant])
    got = metrics.compute(gains, ideal, n_rel, ks, convention)
    for k in ks:
      want = [references.ranking_metrics(r, rel, k, convention)
              for r, rel in zip(ranked, relevant)]
      for name in want[0]:
        np.testing.assert_allclose(
            np.asarray(got[name]), [w[name] for w in want], rtol=1e-5,
            atol=1e-7, err_msg=name)


if __name__ == '__main__':
  absltest.main()
