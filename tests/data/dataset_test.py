"""Tests for the canonical dataset directory format."""

import os
import tempfile

from absl.testing import absltest
import numpy as np

from mmjax.data import dataset as dataset_lib


def _tiny(n=50, num_users=7, num_items=11, seed=0):
  rng = np.random.default_rng(seed)
  return dataset_lib.Dataset(
      user=rng.integers(0, num_users, n).astype(np.int32),
      item=rng.integers(0, num_items, n).astype(np.int32),
      split=rng.integers(0, 3, n).astype(np.int8),
      user_ids=np.array([f'u{i}' for i in range(num_users)]),
      item_ids=np.array([f'i{i}' for i in range(num_items)]),
      rating=rng.uniform(0.5, 5, n).astype(np.float32),
      timestamp=rng.integers(0, 10**9, n),
      item_table={'title': [f'Item {i}' for i in range(num_items)],
                  'image': [None] * num_items},
      manifest={'source': 'test', 'seed': seed},
  )


class DatasetTest(absltest.TestCase):

  def test_round_trip_is_identical(self):
    ds = _tiny()
    with tempfile.TemporaryDirectory() as d:
      dataset_lib.save(ds, d)
      back = dataset_lib.load(d, verify=True)
    for name in ('user', 'item', 'split', 'rating', 'timestamp', 'user_ids',
                 'item_ids'):
      np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
      self.assertEqual(getattr(back, name).dtype, getattr(ds, name).dtype)
    self.assertEqual(back.item_table, ds.item_table)
    self.assertEqual(back.manifest['counts']['interactions'], 50)
    self.assertEqual(back.manifest['split_hash'], dataset_lib.split_hash(ds))

  def test_optional_columns_absent(self):
    ds = _tiny()
    ds.rating = ds.timestamp = None
    with tempfile.TemporaryDirectory() as d:
      dataset_lib.save(ds, d)
      back = dataset_lib.load(d)
    self.assertIsNone(back.rating)
    self.assertIsNone(back.timestamp)

  def test_summary_counts(self):
    ds = _tiny()
    s = ds.summary()
    self.assertEqual(s['train'] + s['valid'] + s['test'], 50)
    self.assertEqual(s['train'], int((ds.split == 0).sum()))
    self.assertAlmostEqual(s['density'], 50 / (7 * 11))

  def test_out_of_range_id_names_interaction(self):
    ds = _tiny()
    ds.item[3] = 11
    with self.assertRaisesRegex(dataset_lib.DataError, r'item id 11 .*3'):
      ds.validate()

  def test_wrong_dtype_refused(self):
    ds = _tiny()
    ds.user = ds.user.astype(np.int64)
    with self.assertRaisesRegex(dataset_lib.DataError, 'int32'):
      ds.validate()

  def test_bad_split_label_refused(self):
    ds = _tiny()
    ds.split[5] = 7
    with self.assertRaisesRegex(dataset_lib.DataError, 'split label 7'):
      ds.validate()

  def test_item_table_row_count_checked(self):
    ds = _tiny()
    ds.item_table['title'] = ds.item_table['title'][:-1]
    with self.assertRaisesRegex(dataset_lib.DataError, "'title' has 10 rows"):
      ds.validate()

  def test_checksum_mismatch_detected(self):
    ds = _tiny()
    with tempfile.TemporaryDirectory() as d:
      dataset_lib.save(ds, d)
      path = os.path.join(d, 'interactions', 'item.npy')
      arr = np.load(path)
      arr[0] = (arr[0] + 1) % 11
      np.save(path, arr)
      with self.assertRaisesRegex(dataset_lib.DataError, 'checksum'):
        dataset_lib.load(d, verify=True)

  def test_missing_manifest_is_clear(self):
    with tempfile.TemporaryDirectory() as d:
      with self.assertRaisesRegex(dataset_lib.DataError, 'prepare'):
        dataset_lib.load(d)

  def test_item_map_hash_depends_on_order(self):
    a = dataset_lib.item_map_hash(np.array(['a', 'b']))
    b = dataset_lib.item_map_hash(np.array(['b', 'a']))
    self.assertNotEqual(a, b)
    # The separator keeps ('ab', 'c') and ('a', 'bc') apart.
    self.assertNotEqual(dataset_lib.item_map_hash(np.array(['ab', 'c'])),
                        dataset_lib.item_map_hash(np.array(['a', 'bc'])))


if __name__ == '__main__':
  absltest.main()
