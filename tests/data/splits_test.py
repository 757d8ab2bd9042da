"""Tests for split assignment and cold handling."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax.data import splits

TRAIN, VALID, TEST = splits.TRAIN, splits.VALID, splits.TEST


def _data(seed=0, num_users=60, num_items=40, n=1500):
  rng = np.random.default_rng(seed)
  user = rng.integers(0, num_users, n)
  item = rng.integers(0, num_items, n)
  # Coarse timestamps so that ties occur.
  timestamp = rng.integers(0, 200, n).astype(np.int64)
  return user, item, timestamp


def _mmrec_counts(n, ratios=(0.8, 0.1, 0.1)):
  """MMRec 1splitting.ipynb per-user rule, written out by hand."""
  if n < 10:
    valid, test = 1, 1
  else:
    held = int(n * (ratios[1] + ratios[2]))
    valid = held // 2
    test = held - valid
  # At least one train interaction; valid gives way first.
  over = max(valid + test - (n - 1), 0)
  cut = min(over, valid)
  valid -= cut
  test = max(test - (over - cut), 0)
  return n - valid - test, valid, test


class SplitsTest(parameterized.TestCase):

  @parameterized.parameters('random', 'chrono', 'leave_last', 'temporal',
                            'cold_item')
  def test_complete_labels_and_seed_stable(self, kind):
    user, item, ts = _data()
    a = splits.assign(user, item, ts, None, kind=kind, seed=1)
    b = splits.assign(user, item, ts, None, kind=kind, seed=1)
    np.testing.assert_array_equal(a, b)
    self.assertEqual(a.dtype, np.int8)
    self.assertEqual(a.shape, user.shape)
    self.assertTrue(np.isin(a, [TRAIN, VALID, TEST]).all())
    for label in (TRAIN, VALID, TEST):
      self.assertGreater((a == label).sum(), 0, (kind, label))
    if kind in ('random', 'cold_item'):
      c = splits.assign(user, item, ts, None, kind=kind, seed=2)
      self.assertFalse(np.array_equal(a, c))

  def test_chrono_counts_follow_mmrec_rounding(self):
    user, item, ts = _data()
    label = splits.assign(user, item, ts, None, kind='chrono', seed=0)
    for u in np.unique(user):
      got = tuple(int((label[user == u] == k).sum())
                  for k in (TRAIN, VALID, TEST))
      self.assertEqual(got, _mmrec_counts(int((user == u).sum())), u)

  @parameterized.parameters(1, 2, 3, 9, 10, 19, 20, 25, 31)
  def test_mmrec_rounding_small_and_boundary_counts(self, n):
    user = np.zeros(n, np.int64)
    label = splits.assign(user, np.arange(n), np.arange(n), None,
                          kind='chrono', seed=0)
    got = tuple(int((label == k).sum()) for k in (TRAIN, VALID, TEST))
    self.assertEqual(got, _mmrec_counts(n))
    # Hand-checked anchors of the rule.
    anchors = {1: (1, 0, 0), 2: (1, 0, 1), 3: (1, 1, 1), 9: (7, 1, 1),
               10: (8, 1, 1), 19: (16, 1, 2), 25: (20, 2, 3)}
    if n in anchors:
      self.assertEqual(got, anchors[n])

  def test_round_rule(self):
    n = 25
    label = splits.assign(np.zeros(n, np.int64), np.arange(n), np.arange(n),
                          None, kind='chrono', seed=0, rounding='round')
    # round(2.5) = 2 (half to even) for both valid and test.
    self.assertEqual([int((label == k).sum()) for k in (TRAIN, VALID, TEST)],
                     [21, 2, 2])

  def test_chrono_respects_time_per_user(self):
    user, item, ts = _data(seed=4)
    label = splits.assign(user, item, ts, None, kind='chrono', seed=0)
    for u in np.unique(user):
      m = user == u
      t, lab = ts[m], label[m]
      if (lab == TRAIN).any() and (lab != TRAIN).any():
        self.assertLessEqual(t[lab == TRAIN].max(), t[lab != TRAIN].min())
      if (lab == VALID).any() and (lab == TEST).any():
        self.assertLessEqual(t[lab == VALID].max(), t[lab == TEST].min())

  def test_leave_last(self):
    user = np.array([0, 0, 0, 0, 1, 1, 2])
    ts = np.array([5, 1, 9, 3, 2, 1, 7])
    label = splits.assign(user, np.arange(7), ts, None, kind='leave_last',
                          seed=0)
    np.testing.assert_array_equal(
        label, [VALID, TRAIN, TEST, TRAIN, TEST, TRAIN, TRAIN])

  def test_temporal_quantiles_and_absolute_cutoffs(self):
    ts = np.arange(100)
    user = np.zeros(100, np.int64)
    label = splits.assign(user, ts, ts, None, kind='temporal', seed=0)
    # Quantiles of 0..99 at .8 and .9 are 79.2 and 89.1.
    np.testing.assert_array_equal(
        label, np.repeat([TRAIN, VALID, TEST], [80, 10, 10]))
    label = splits.assign(user, ts, ts, None, kind='temporal', seed=0,
                          cutoffs=(50, 60))
    np.testing.assert_array_equal(
        label, np.repeat([TRAIN, VALID, TEST], [50, 10, 40]))
    with self.assertRaisesRegex(ValueError, 'cutoffs'):
      splits.assign(user, ts, ts, None, kind='temporal', seed=0,
                    cutoffs=(60, 50))

  def test_cold_item_holds_items_out_of_train(self):
    user, item, ts = _data(seed=2)
    label = splits.assign(user, item, ts, None, kind='cold_item', seed=3,
                          cold_share=0.25)
    held = np.unique(item[label != TRAIN])
    train_items = np.unique(item[label == TRAIN])
    self.assertEmpty(np.intersect1d(held, train_items))
    self.assertLen(held, 10)  # 25% of 40 items.
    # Each held-out item goes to one split entirely.
    for i in held:
      self.assertLen(np.unique(label[item == i]), 1)
    steps = []
    keep = splits.handle_cold(user, item, label, 'keep', steps)
    self.assertTrue(keep.all())
    self.assertEqual(steps[0]['cold_item_interactions'],
                     int((label != TRAIN).sum()))

  def test_handle_cold_drop_counts(self):
    user = np.array([0, 0, 1, 1, 2])
    item = np.array([0, 1, 0, 2, 0])
    label = np.array([TRAIN, TEST, TRAIN, VALID, TEST], np.int8)
    # Item 1 and item 2 are cold; user 2 is cold.
    steps = []
    keep = splits.handle_cold(user, item, label, 'drop', steps)
    np.testing.assert_array_equal(keep, [1, 0, 1, 0, 0])
    self.assertEqual(steps[0]['removed'], 3)
    self.assertEqual(steps[0]['cold_user_interactions'], 1)
    self.assertEqual(steps[0]['cold_item_interactions'], 2)
    steps = []
    keep = splits.handle_cold(user, item, label, 'drop_users', steps)
    np.testing.assert_array_equal(keep, [1, 1, 1, 1, 0])
    self.assertEqual(steps[0]['removed'], 1)

  def test_fixed_passes_source_labels(self):
    fixed = np.array([0, 1, 2, 0], np.int8)
    got = splits.assign(np.zeros(4, int), np.arange(4), None, fixed,
                        kind='fixed', seed=0)
    np.testing.assert_array_equal(got, fixed)
    with self.assertRaisesRegex(ValueError, 'fixed'):
      splits.assign(np.zeros(4, int), np.arange(4), None, None, kind='fixed',
                    seed=0)

  def test_bad_arguments(self):
    u = np.zeros(3, int)
    with self.assertRaisesRegex(ValueError, 'timestamps'):
      splits.assign(u, u, None, None, kind='chrono', seed=0)
    with self.assertRaisesRegex(ValueError, 'unknown split kind'):
      splits.assign(u, u, None, None, kind='nope', seed=0)
    with self.assertRaisesRegex(ValueError, 'summing to 1'):
      splits.assign(u, u, None, None, kind='random', seed=0,
                    ratios=(0.5, 0.1, 0.1))

  def test_random_split_at_one_million_is_vectorised(self):
    rng = np.random.default_rng(0)
    n = 1_000_000
    user = rng.integers(0, 50_000, n)
    label = splits.assign(user, rng.integers(0, 1000, n), None, None,
                          kind='random', seed=0)
    share = np.bincount(label, minlength=3) / n
    np.testing.assert_allclose(share, [0.8, 0.1, 0.1], atol=0.06)


class SplitOptionsAndColdCountsTest(absltest.TestCase):

  def test_options_of_each_kind(self):
    kw = dict(ratios=(0.7, 0.1, 0.2), rounding='round', cutoffs=(),
              cold_share=0.3)
    self.assertEqual(splits.options('fixed', **kw), {})
    self.assertEqual(splits.options('leave_last', **kw), {})
    self.assertEqual(splits.options('chrono', **kw),
                     {'ratios': [0.7, 0.1, 0.2], 'rounding': 'round'})
    self.assertEqual(splits.options('random', **kw),
                     {'ratios': [0.7, 0.1, 0.2], 'rounding': 'round'})
    self.assertEqual(splits.options('temporal', **kw),
                     {'ratios': [0.7, 0.1, 0.2]})
    self.assertEqual(splits.options('temporal', **{**kw, 'cutoffs': (5, 9)}),
                     {'cutoffs': [5, 9]})
    self.assertEqual(splits.options('cold_item', **kw), {'cold_share': 0.3})

  def test_cold_step_counts_users_and_items(self):
    user = np.array([0, 0, 1, 2, 2, 3])
    item = np.array([0, 1, 0, 2, 0, 3])
    label = np.array([TRAIN, TRAIN, TEST, VALID, TEST, TEST])
    steps = []
    keep = splits.handle_cold(user, item, label, 'drop', steps)
    # Users 1, 2, 3 never train; items 2, 3 neither.
    self.assertEqual(steps[0]['cold_users'], 3)
    self.assertEqual(steps[0]['cold_items'], 2)
    self.assertEqual(steps[0]['cold_user_interactions'], 4)
    self.assertEqual(steps[0]['removed'], 4)
    self.assertEqual(keep.tolist(), [True, True, False, False, False, False])


if __name__ == '__main__':
  absltest.main()
