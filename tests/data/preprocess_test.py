"""Tests for preprocessing: threshold, restriction, modality, dedupe, k-core,
remap."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import preprocess


def _raw(users, items, rating=None, timestamp=None, item_table=None):
  return dataset_lib.RawData(
      source='test', users=np.asarray(users, dtype=str),
      items=np.asarray(items, dtype=str),
      rating=None if rating is None else np.asarray(rating, np.float32),
      timestamp=None if timestamp is None else np.asarray(timestamp, np.int64),
      item_table=item_table or {})


def _pairs(x):
  """The (raw user, raw item) pairs of `x`, as a sorted list."""
  return sorted(zip(x.user_raw[x.user].tolist(), x.item_raw[x.item].tolist()))


def _brute_k_core(pairs, min_user, min_item):
  """Reference k-core: remove one offending interaction set at a time."""
  pairs = list(pairs)
  while True:
    uc, ic = {}, {}
    for u, i in pairs:
      uc[u] = uc.get(u, 0) + 1
      ic[i] = ic.get(i, 0) + 1
    bad = [p for p in pairs if uc[p[0]] < min_user or ic[p[1]] < min_item]
    if not bad:
      return sorted(pairs)
    # Drop only the first offending user's or item's interactions: the k-core
    # is unique, so any removal order reaches the same fixed point.
    u, i = bad[0]
    if uc[u] < min_user:
      pairs = [p for p in pairs if p[0] != u]
    else:
      pairs = [p for p in pairs if p[1] != i]


class PreprocessTest(parameterized.TestCase):

  def test_threshold_counts_and_keeps_rating_at_threshold(self):
    x = preprocess.from_raw(_raw(['a', 'a', 'b', 'b'], ['x', 'y', 'x', 'z'],
                                 rating=[4.0, 3.5, 2.0, 5.0]))
    steps = []
    y = preprocess.implicit_threshold(x, 3.5, steps)
    self.assertEqual(_pairs(y), [('a', 'x'), ('a', 'y'), ('b', 'z')])
    self.assertEqual(steps, [{'step': 'implicit_threshold', 'threshold': 3.5,
                              'removed': 1}])
    self.assertIs(preprocess.implicit_threshold(x, None, steps), x)
    self.assertLen(steps, 1)

  def test_threshold_without_ratings_raises(self):
    x = preprocess.from_raw(_raw(['a'], ['x']))
    with self.assertRaisesRegex(dataset_lib.DataError, 'needs ratings'):
      preprocess.implicit_threshold(x, 4.0, [])

  def test_deduplicate_keeps_latest_by_time_then_read_order(self):
    # (a, x) three times: latest time 30 wins; (b, y) twice at equal time:
    # the later-read row wins.
    x = preprocess.from_raw(_raw(
        ['a', 'a', 'a', 'b', 'b', 'c'], ['x', 'x', 'x', 'y', 'y', 'x'],
        rating=[1, 2, 3, 4, 5, 1], timestamp=[10, 30, 20, 5, 5, 1]))
    steps = []
    y = preprocess.deduplicate(x, steps)
    self.assertEqual(steps, [{'step': 'deduplicate', 'removed': 3}])
    got = {(p, float(r)) for p, r in zip(
        zip(y.user_raw[y.user], y.item_raw[y.item]), y.rating)}
    self.assertEqual(got, {(('a', 'x'), 2.0), (('b', 'y'), 5.0),
                           (('c', 'x'), 1.0)})

  @parameterized.parameters((2, 2), (3, 2), (2, 4), (5, 5))
  def test_k_core_matches_brute_force_and_is_a_fixed_point(self, mu, mi):
    rng = np.random.default_rng([7, mu, mi])
    n = 600
    # Skewed ids so that some users and items fall below the thresholds.
    users = (rng.zipf(1.6, n) % 60).astype(str)
    items = (rng.zipf(1.4, n) % 80).astype(str)
    x = preprocess.deduplicate(preprocess.from_raw(_raw(users, items)), [])
    steps = []
    y = preprocess.k_core(x, mu, mi, steps)
    self.assertEqual(_pairs(y), _brute_k_core(_pairs(x), mu, mi))
    self.assertEqual(steps[0]['removed'], len(x) - len(y))
    self.assertGreater(steps[0]['removed'], 0)
    # Fixed point: every survivor meets both thresholds, a rerun removes 0.
    if len(y):
      self.assertGreaterEqual(np.bincount(y.user)[np.unique(y.user)].min(), mu)
      self.assertGreaterEqual(np.bincount(y.item)[np.unique(y.item)].min(), mi)
    again = []
    preprocess.k_core(y, mu, mi, again)
    self.assertEqual(again[0]['removed'], 0)
    self.assertEqual(again[0]['rounds'], 1)

  def test_restrict_items(self):
    x = preprocess.from_raw(_raw(['a', 'a', 'b', 'c'], ['x', 'y', 'x', 'z']))
    steps = []
    y = preprocess.restrict_items(x, {'x', 'q'}, steps, reason='test')
    self.assertEqual(_pairs(y), [('a', 'x'), ('b', 'x')])
    self.assertEqual(steps[0]['removed'], 2)
    self.assertEqual(steps[0]['items_kept'], 1)
    self.assertEqual(steps[0]['items_removed'], 2)

  def test_require_modalities_field_and_feature_rows(self):
    table = {'x': {'image': 'x.png'}, 'y': {'image': ''}, 'z': {}}
    x = preprocess.from_raw(_raw(['a', 'a', 'b', 'b'], ['x', 'y', 'z', 'x']))
    steps = []
    y = preprocess.require_modalities(x, table, ['image'], steps)
    self.assertEqual(_pairs(y), [('a', 'x'), ('b', 'x')])
    self.assertEqual((steps[0]['removed'], steps[0]['items_removed']), (2, 2))
    feats = {'v': (np.zeros((2, 3), np.float32), np.array(['y', 'z']))}
    steps = []
    y = preprocess.require_modalities(x, table, ['v'], steps, feats)
    self.assertEqual(_pairs(y), [('a', 'y'), ('b', 'z')])
    self.assertEqual(steps[0]['removed'], 2)

  def test_remap_is_a_seeded_permutation_not_popularity_or_first_seen(self):
    rng = np.random.default_rng(3)
    num = 200
    # Item k has k + 1 interactions and first appears in order k, so both
    # popularity and first-seen order would give a monotone map.
    items = np.concatenate([np.full(k + 1, k) for k in range(num)])
    users = rng.integers(0, 50, len(items))
    raw = _raw(users.astype(str), np.char.add('i', items.astype(str)))
    x = preprocess.from_raw(raw)
    u1, i1, uids1, iids1 = preprocess.remap(x, seed=5)
    u2, i2, uids2, iids2 = preprocess.remap(x, seed=5)
    _, _, _, iids3 = preprocess.remap(x, seed=6)
    for a, b in ((u1, u2), (i1, i2), (uids1, uids2), (iids1, iids2)):
      np.testing.assert_array_equal(a, b)
    self.assertEqual(i1.dtype, np.int32)
    self.assertEqual(u1.dtype, np.int32)
    # Contiguous ids and a consistent map back to the raw ids.
    self.assertEqual(sorted(set(i1.tolist())), list(range(num)))
    np.testing.assert_array_equal(iids1[i1], raw.items)
    np.testing.assert_array_equal(uids1[u1], raw.users)
    # The order is the seeded permutation itself.
    rng = np.random.default_rng([5, 0x5EED])
    rng.permutation(len(x.user_raw))
    np.testing.assert_array_equal(iids1, x.item_raw[rng.permutation(num)])
    self.assertFalse(np.array_equal(iids1, iids3))
    counts = np.bincount(i1)
    rank_corr = np.corrcoef(np.arange(num), counts)[0, 1]
    self.assertLess(abs(rank_corr), 0.3)

  def test_check_nonempty_names_the_step(self):
    x = preprocess.from_raw(_raw(['a', 'b'], ['x', 'y'], rating=[1, 2]))
    steps = []
    y = preprocess.implicit_threshold(x, 4.0, steps)
    with self.assertRaisesRegex(dataset_lib.DataError,
                                "after step 'implicit_threshold'"):
      preprocess.check_nonempty(y, steps, 'test')

  def test_k_core_fixed_point_at_200k_interactions(self):
    # 200k interactions: the vectorised loop takes well under a second; a
    # per-interaction Python loop would take far longer (not asserted).
    rng = np.random.default_rng(0)
    n = 200_000
    x = preprocess.Interactions(
        user=rng.integers(0, 20_000, n), item=rng.zipf(1.3, n) % 5000,
        user_raw=np.arange(20_000).astype(str),
        item_raw=np.arange(5000).astype(str), rating=None, timestamp=None,
        split=None)
    y = preprocess.k_core(x, 5, 5, [])
    self.assertGreaterEqual(np.bincount(y.user)[np.unique(y.user)].min(), 5)
    self.assertGreaterEqual(np.bincount(y.item)[np.unique(y.item)].min(), 5)


if __name__ == '__main__':
  absltest.main()
