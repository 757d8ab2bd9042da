"""Tests for the feature store (mmjax/data/store.py) as extraction uses it."""

import json
import os

from absl.testing import absltest
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from tests.features import extract_test

ITEMS = np.array(['a', 'b', 'c', 'd'])


class StoreTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = extract_test.new_tempdir(self)
    self.values = np.random.default_rng([1, 2]).normal(
        size=(4, 3)).astype(np.float32)

  def test_round_trip_with_failed_mask(self):
    v = self.values.copy()
    v[2] = 0
    store.save(self.dir, 'f', v, {'extractor': 'x', 'model': 'm'}, ITEMS,
               failed={2: 'image file missing'})
    f = store.load(self.dir, 'f', ITEMS)
    np.testing.assert_array_equal(f.values, v)
    self.assertEqual(f.mask.tolist(), [True, True, False, True])
    self.assertEqual(f.manifest['failed'], {'2': 'image file missing'})
    self.assertEqual(f.manifest['dim'], 3)
    self.assertEqual(f.manifest['item_map_hash'],
                     dataset_lib.item_map_hash(ITEMS))
    self.assertEqual(store.list_features(self.dir), ['f'])

  def test_float16_kept_or_cast(self):
    store.save(self.dir, 'h', self.values.astype(np.float16), {}, ITEMS)
    self.assertEqual(store.load(self.dir, 'h', ITEMS, keep_dtype=True)
                     .values.dtype, np.float16)
    f = store.load(self.dir, 'h', ITEMS)
    self.assertEqual(f.values.dtype, np.float32)
    np.testing.assert_allclose(f.values, self.values, rtol=1e-3, atol=1e-3)

  def test_failed_item_out_of_range_refused(self):
    store.save(self.dir, 'f', self.values, {}, ITEMS)
    _, js = store.feature_paths(self.dir, 'f')
    with open(js, encoding='utf-8') as f:
      m = json.load(f)
    m['failed'] = {'7': 'no image'}
    with open(js, 'w', encoding='utf-8') as f:
      json.dump(m, f)
    with self.assertRaisesRegex(dataset_lib.DataError, r"failed item '7'"):
      store.load(self.dir, 'f', ITEMS)

  def test_item_map_mismatch_refused(self):
    store.save(self.dir, 'f', self.values, {}, ITEMS)
    with self.assertRaisesRegex(dataset_lib.DataError, 'another item map'):
      store.load(self.dir, 'f', np.array(['a', 'b', 'd', 'c']))

  def test_row_count_dtype_and_dim_mismatch_refused(self):
    with self.assertRaisesRegex(dataset_lib.DataError, '3 rows'):
      store.save(self.dir, 'f', self.values[:3], {}, ITEMS)
    with self.assertRaisesRegex(dataset_lib.DataError, 'float32 or float16'):
      store.save(self.dir, 'f', self.values.astype(np.float64), {}, ITEMS)
    store.save(self.dir, 'f', self.values, {}, ITEMS)
    npy, js = store.feature_paths(self.dir, 'f')
    np.save(npy, self.values[:3])
    with self.assertRaisesRegex(dataset_lib.DataError, '3 rows'):
      store.load(self.dir, 'f', ITEMS)
    np.save(npy, self.values.astype(np.float16))
    with self.assertRaisesRegex(dataset_lib.DataError, 'dtype float16'):
      store.load(self.dir, 'f', ITEMS)
    np.save(npy, self.values)
    with open(js) as f:
      m = json.load(f)
    m['dim'] = 5
    with open(js, 'w') as f:
      json.dump(m, f)
    with self.assertRaisesRegex(dataset_lib.DataError, 'dim 3'):
      store.load(self.dir, 'f', ITEMS)

  def test_bad_values_refused(self):
    v = self.values.copy()
    v[1, 1] = np.nan
    with self.assertRaisesRegex(dataset_lib.DataError, 'NaN'):
      store.save(self.dir, 'f', v, {}, ITEMS)
    with self.assertRaisesRegex(dataset_lib.DataError, 'zero rows'):
      store.save(self.dir, 'f', self.values, {}, ITEMS, failed={1: 'x'})
    with self.assertRaisesRegex(dataset_lib.DataError, 'out of range'):
      store.save(self.dir, 'f', self.values, {}, ITEMS, failed={9: 'x'})

  def test_missing_representation_names_what_is_there(self):
    store.save(self.dir, 'have', self.values, {}, ITEMS)
    with self.assertRaisesRegex(dataset_lib.DataError, 'stored: have'):
      store.load(self.dir, 'other', ITEMS)

  def test_item_ids_read_from_dataset_dir(self):
    ds = extract_test.make_dataset(self.dir, num_items=4, with_images=False)
    store.save(self.dir, 'f', self.values, {}, ds.item_ids)
    f = store.load(self.dir, 'f')
    self.assertEqual(f.values.shape, (4, 3))
    self.assertFalse(os.path.exists(store.feature_paths(self.dir, 'f')[0]
                                    + '.tmp.npy'))


if __name__ == '__main__':
  absltest.main()
