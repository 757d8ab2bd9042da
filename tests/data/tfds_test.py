"""Tests for the TFDS ArrayRecord builder (no TensorFlow installed)."""

import os
import sys
import tempfile

from absl.testing import absltest
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import tfds_builder


def _tiny(seed=0, n=120, num_users=15, num_items=20):
  rng = np.random.default_rng(seed)
  # User 14 has no interactions: its record must hold empty lists.
  return dataset_lib.Dataset(
      user=rng.integers(0, num_users - 1, n).astype(np.int32),
      item=rng.integers(0, num_items, n).astype(np.int32),
      split=rng.choice(3, n, p=[0.7, 0.15, 0.15]).astype(np.int8),
      user_ids=np.array([f'u{i}' for i in range(num_users)]),
      item_ids=np.array([f'i{i}' for i in range(num_items)]),
      rating=rng.uniform(0.5, 5, n).astype(np.float32),
      timestamp=rng.integers(0, 10**9, n),
      item_table={'title': [f'Item {i}' for i in range(num_items)]},
      manifest={'source': 'test', 'seed': seed},
  )


class TfdsBuilderTest(absltest.TestCase):

  def test_records_match_the_numpy_cache(self):
    with tempfile.TemporaryDirectory() as d:
      dataset_lib.save(_tiny(), d)
      data_dir = tfds_builder.build(d)
      self.assertEqual(data_dir, os.path.join(d, 'tfds'))
      src = tfds_builder.data_source(data_dir)
      ds = dataset_lib.load(d)
      self.assertLen(src, ds.num_users)
      for u in range(ds.num_users):
        rec = src[u]
        self.assertEqual(int(rec['user']), u)
        rows = np.flatnonzero(ds.user == u)  # Interaction order.
        for label, name in enumerate(tfds_builder.SPLITS):
          r = rows[ds.split[rows] == label]
          np.testing.assert_array_equal(
              np.asarray(rec[f'{name}_items'], np.int32), ds.item[r])
          np.testing.assert_array_equal(
              np.asarray(rec[f'{name}_ratings'], np.float32), ds.rating[r])
      self.assertEmpty(src[14]['train_items'])
      files = os.listdir(os.path.join(data_dir, tfds_builder.NAME, '1.0.0'))
      self.assertTrue(any('array_record' in f for f in files), files)
      # A second build reuses the files.
      self.assertEqual(tfds_builder.build(d), data_dir)
    self.assertNotIn('tensorflow', sys.modules)

  def test_user_records_without_ratings_use_ones(self):
    ds = _tiny()
    ds.rating = None
    recs = list(tfds_builder.user_records(ds))
    self.assertLen(recs, ds.num_users)
    total = sum(len(r[f'{s}_items']) for r in recs
                for s in tfds_builder.SPLITS)
    self.assertEqual(total, len(ds))
    self.assertTrue(all((r['train_ratings'] == 1).all() for r in recs))


if __name__ == '__main__':
  absltest.main()
