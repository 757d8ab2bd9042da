"""Tests for the feature store (mmjax/data/store.py) as extraction uses it."""

import json
import os
import shutil

from absl.testing import absltest
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from tests.testing import extraction
from tests.testing import fixtures

ITEMS = np.array(['a', 'b', 'c', 'd'])


def _dataset(root: str, name: str, source: str) -> dataset_lib.Dataset:
  """A 2-user dataset over ITEMS whose manifest names `name` and `source`."""
  ds = dataset_lib.Dataset(
      user=np.array([0, 0, 1, 1], np.int32),
      item=np.array([0, 1, 2, 3], np.int32),
      split=np.zeros(4, np.int8), user_ids=np.array(['u0', 'u1']),
      item_ids=ITEMS, manifest={'name': name, 'source': source})
  dataset_lib.save(ds, root)
  return ds


class StoreTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = fixtures.new_tempdir(self)
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
    ds = extraction.make_dataset(self.dir, num_items=4, with_images=False)
    store.save(self.dir, 'f', self.values, {}, ds.item_ids)
    f = store.load(self.dir, 'f')
    self.assertEqual(f.values.shape, (4, 3))
    self.assertFalse(os.path.exists(store.feature_paths(self.dir, 'f')[0]
                                    + '.tmp.npy'))

  def test_features_of_another_dataset_with_the_same_item_map_refused(self):
    # Both item maps are a..d, so only the recorded identity tells them apart.
    a, b = os.path.join(self.dir, 'a'), os.path.join(self.dir, 'b')
    _dataset(a, 'first', 'mmrec:/data/first/x.inter')
    _dataset(b, 'second', 'mmrec:/data/second/x.inter')
    store.save(a, 'f', self.values, {'extractor': 'x'}, ITEMS)
    f = store.load(a, 'f')
    self.assertEqual(f.manifest['dataset']['name'], 'first')
    with open(os.path.join(a, dataset_lib.MANIFEST), encoding='utf-8') as fh:
      self.assertEqual(f.manifest['dataset']['identity'],
                       json.load(fh)['identity'])
    shutil.copytree(os.path.join(a, store.FEATURES_DIR),
                    os.path.join(b, store.FEATURES_DIR))
    with self.assertRaisesRegex(
        dataset_lib.DataError,
        r"extracted for dataset 'first' \(mmrec:/data/first/x.inter\), but "
        r".* holds dataset 'second' \(mmrec:/data/second/x.inter\)"):
      store.load(b, 'f')

  def test_manifest_without_identity_loads_with_one_warning(self):
    # Stores written before the identity was recorded keep working.
    _dataset(self.dir, 'first', 'synthetic:preset=both,seed=0')
    store.save(self.dir, 'f', self.values, {}, ITEMS)
    _, js = store.feature_paths(self.dir, 'f')
    with open(js, encoding='utf-8') as fh:
      m = json.load(fh)
    del m['dataset']
    with open(js, 'w', encoding='utf-8') as fh:
      json.dump(m, fh)
    with self.assertLogs(level='WARNING') as logs:
      for _ in range(3):
        np.testing.assert_array_equal(store.load(self.dir, 'f').values,
                                      self.values)
    warned = [r for r in logs.output if 'records no dataset identity' in r]
    self.assertLen(warned, 1)

  def test_identity_ignores_preprocessing_but_not_source(self):
    base = {'source': 's', 'item_map_hash': 'h', 'steps': [1]}
    self.assertEqual(dataset_lib.identity(base),
                     dataset_lib.identity({**base, 'steps': [2], 'seed': 3}))
    self.assertNotEqual(dataset_lib.identity(base),
                        dataset_lib.identity({**base, 'source': 't'}))
    self.assertNotEqual(dataset_lib.identity(base),
                        dataset_lib.identity({**base, 'item_map_hash': 'g'}))


if __name__ == '__main__':
  absltest.main()
