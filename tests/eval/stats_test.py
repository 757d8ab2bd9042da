"""The study's statistics against hand-computed values and scipy."""

import math

from absl.testing import absltest
import numpy as np
from scipy import stats as scipy_stats

from mmjax.eval import compare
from mmjax.eval import stats


def run(users, values, split_hash='h', name='r'):
  """A per-user dict as ranking.load_per_user returns it."""
  return {'users': np.asarray(users, np.int32),
          'per_user': {k: np.asarray(v, np.float64) for k, v in
                       values.items()},
          'split_hash': split_hash, 'split': 'test', 'name': name}


class AlignedTest(absltest.TestCase):

  def test_aligns_by_user(self):
    a = run([2, 0, 1], {'m': [0.2, 0.0, 0.1]})
    b = run([1, 2, 0], {'m': [1.1, 1.2, 1.0]})
    users, va, vb = stats.aligned(a, b, 'm')
    np.testing.assert_array_equal(users, [0, 1, 2])
    np.testing.assert_allclose(va, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(vb, [1.0, 1.1, 1.2])

  def test_refuses_other_splits_users_and_metrics(self):
    a = run([0, 1], {'m': [0, 1]})
    with self.assertRaisesRegex(compare.HashMismatchError, 'split'):
      stats.aligned(a, run([0, 1], {'m': [0, 1]}, split_hash='x'), 'm')
    with self.assertRaisesRegex(ValueError, 'different users'):
      stats.aligned(a, run([0, 2], {'m': [0, 1]}), 'm')
    with self.assertRaisesRegex(KeyError, 'no per-user'):
      stats.aligned(a, a, 'ndcg@20')


class PoolTest(absltest.TestCase):

  def test_units_are_seed_user_pairs_and_nan_users_drop(self):
    pairs = [
        (0, run([0, 1, 2], {'m': [1.0, np.nan, 0.0]}),
         run([2, 1, 0], {'m': [0.5, np.nan, 0.0]})),
        (3, run([0, 1, 2], {'m': [1.0, 1.0, 1.0]}),
         run([0, 1, 2], {'m': [0.0, 1.0, 0.0]})),
    ]
    p = stats.pool(pairs, 'm')
    np.testing.assert_array_equal(p.units, [0, 2, 3 << 32, (3 << 32) | 1,
                                            (3 << 32) | 2])
    np.testing.assert_array_equal(p.seeds, [0, 0, 3, 3, 3])
    np.testing.assert_allclose(p.real, [1, 0, 1, 1, 1])
    np.testing.assert_allclose(p.control, [0, 0.5, 0, 1, 0])
    # A selection of users per seed.
    q = stats.pool(pairs, 'm', select=lambda seed, users: users != seed)
    np.testing.assert_array_equal(q.units, [2, 3 << 32, (3 << 32) | 1,
                                            (3 << 32) | 2])
    self.assertEqual(stats.seed_gaps(p), {0: 0.25, 3: 2 / 3})

  def test_refuses_nan_mismatch_and_repeated_seeds(self):
    a = run([0, 1], {'m': [np.nan, 1.0]})
    b = run([0, 1], {'m': [0.0, 1.0]})
    with self.assertRaisesRegex(ValueError, 'NaN'):
      stats.pool([(0, a, b)], 'm')
    with self.assertRaisesRegex(ValueError, 'repeated'):
      stats.pool([(0, b, b), (0, b, b)], 'm')


class TestsTest(absltest.TestCase):

  def test_hand_computed_row(self):
    # diff = [1, 0, 0, 0.5]: mean 0.375, sd sqrt(0.6875 / 3) = 0.478714.
    real = run([0, 1, 2, 3], {'m': [1.0, 0.5, 0.0, 1.0]})
    ctrl = run([0, 1, 2, 3], {'m': [0.0, 0.5, 0.0, 0.5]})
    row = stats.real_vs_control(stats.pool([(0, real, ctrl)], 'm'),
                                num_boot=2000)
    sd = math.sqrt(0.6875 / 3)
    self.assertEqual(row['n'], 4)
    self.assertEqual(row['n_seeds'], 1)
    self.assertAlmostEqual(row['gap'], 0.375)
    self.assertAlmostEqual(row['real'], 0.625)
    self.assertAlmostEqual(row['control'], 0.25)
    self.assertAlmostEqual(row['effect_d'], 0.375 / sd)
    self.assertAlmostEqual(stats.effect_size([1, 0, 0, 0.5]), 0.375 / sd)
    t = 0.375 / (sd / 2)
    self.assertAlmostEqual(row['p_t'], 2 * scipy_stats.t.sf(t, df=3))
    self.assertAlmostEqual(
        row['p_t'], scipy_stats.ttest_rel([1, 0.5, 0, 1],
                                          [0, 0.5, 0, 0.5]).pvalue)
    self.assertAlmostEqual(row['p_w'],
                           scipy_stats.wilcoxon([1, 0, 0, 0.5]).pvalue)
    # The bootstrap means lie between the smallest and largest resample
    # mean: within [0, 1]; the gap's 95% interval holds the gap here.
    self.assertLessEqual(0.0, row['ci_low'])
    self.assertLessEqual(row['ci_low'], 0.375)
    self.assertLessEqual(0.375, row['ci_high'])
    self.assertLessEqual(row['ci_high'], 1.0)
    self.assertTrue(math.isnan(row['p_seeds']))  # One seed.

  def test_identical_runs_have_no_evidence(self):
    r = run([0, 1, 2], {'m': [0.1, 0.5, 0.0]})
    row = stats.real_vs_control(stats.pool([(0, r, r), (1, r, r)], 'm'),
                                num_boot=100)
    self.assertEqual(row['gap'], 0.0)
    self.assertEqual(row['p_t'], 1.0)
    self.assertEqual(row['p_w'], 1.0)
    self.assertEqual(row['effect_d'], 0.0)
    self.assertEqual(row['gap_per_seed'], {0: 0.0, 1: 0.0})
    self.assertTrue(math.isnan(row['p_seeds']))  # No spread.

  def test_seed_gap_test_is_a_one_sample_t_test(self):
    gaps = [0.02, 0.05, 0.01, 0.04]
    m, sd = np.mean(gaps), np.std(gaps, ddof=1)
    t = m / (sd / 2)
    self.assertAlmostEqual(stats.seed_gap_test(gaps),
                           2 * scipy_stats.t.sf(t, df=3))
    self.assertTrue(math.isnan(stats.seed_gap_test([0.1])))
    self.assertTrue(math.isnan(stats.seed_gap_test([0.1, 0.1])))

  def test_per_seed_gaps_through_the_row(self):
    pairs = []
    for seed, (r, c) in enumerate([([1, 1], [0, 1]), ([1, 0], [0, 0]),
                                   ([1, 1], [1, 0])]):
      pairs.append((seed, run([0, 1], {'m': r}), run([0, 1], {'m': c})))
    row = stats.real_vs_control(stats.pool(pairs, 'm'), num_boot=100)
    self.assertEqual(row['gap_per_seed'], {0: 0.5, 1: 0.5, 2: 0.5})
    self.assertTrue(math.isnan(row['p_seeds']))  # Identical gaps.
    self.assertAlmostEqual(row['gap'], 0.5)
    self.assertEqual(row['n'], 6)

  def test_holm_across_rows(self):
    rows = [{'p_t': 0.01, 'p_w': 0.02}, {'p_t': 0.04, 'p_w': math.nan},
            {'p_t': 0.03, 'p_w': 0.5}, {}]
    stats.add_holm(rows)
    # Three p_t values: 0.01*3, max(0.03*2, 0.03) = 0.06, max(0.04, 0.06).
    np.testing.assert_allclose([r['p_t_holm'] for r in rows],
                               [0.03, 0.06, 0.06, np.nan])
    np.testing.assert_allclose([r['p_w_holm'] for r in rows],
                               [0.04, np.nan, 0.5, np.nan])

  def test_mean_std(self):
    self.assertEqual(stats.mean_std([1.0, 3.0]), (2.0, math.sqrt(2.0)))
    m, s = stats.mean_std([2.0])
    self.assertEqual(m, 2.0)
    self.assertTrue(math.isnan(s))
    self.assertTrue(all(math.isnan(x) for x in stats.mean_std([])))


if __name__ == '__main__':
  absltest.main()
