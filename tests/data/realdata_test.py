"""Readers on the real data of $MMJAX_SHARED_DATA (skipped when it is absent)."""

import os
import shutil
import tempfile
import unittest
from unittest import mock

from absl.testing import absltest
import numpy as np
import pytest

from mmjax.data import datasets
from mmjax.data import prepare
from mmjax.data import readers
from mmjax.data import writers
from tests.testing import fixtures

ML100K = os.path.join(fixtures.SHARED_DATA, 'ml-100k-recbole')
LVLM = os.path.join(fixtures.SHARED_DATA, 'movielens-lvlm')


@pytest.mark.shared_data
@unittest.skipUnless(os.path.isdir(ML100K),
                     f'real data {ML100K} is absent (only in the project '
                     'workspace, not in a clone)')
class RealML100KRecBoleTest(absltest.TestCase):

  def test_counts_and_item_table(self):
    raw = readers.read('recbole', ML100K)
    self.assertLen(raw, 100_000)
    self.assertLen(np.unique(raw.users), 943)
    self.assertLen(np.unique(raw.items), 1682)
    self.assertLen(raw.item_table, 1682)
    self.assertEqual(raw.steps, [])
    self.assertTrue(np.isin(raw.rating, [1, 2, 3, 4, 5]).all())
    self.assertEqual(raw.item_table['1']['title'], 'Toy Story')
    self.assertEqual(raw.item_table['1']['year'], '1995')
    self.assertIn('Animation', raw.item_table['1']['genres'])

  def test_prepared_dataset_round_trips_through_mmrec_and_elliot(self):
    with mock.patch.dict(os.environ,
                         {datasets.SHARED_DATA_ENV: fixtures.SHARED_DATA}):
      cfg = datasets.load('ml100k')
    self.assertEqual(cfg.path, ML100K)
    ds, _ = prepare.build(cfg)
    rng = np.random.default_rng([0])
    image = rng.normal(size=(ds.num_items, 4)).astype(np.float32)
    out = tempfile.mkdtemp(prefix='mmjax_realdata_')
    self.addCleanup(shutil.rmtree, out, ignore_errors=True)
    expected = sorted(zip(ds.user.tolist(), ds.item.tolist(),
                          ds.split.tolist()))
    writers.write_mmrec(ds, os.path.join(out, 'mmrec'), 'ml100k',
                        {'image': image})
    writers.write_elliot(ds, os.path.join(out, 'elliot'), {'image': image})
    for raw in (readers.read_mmrec(os.path.join(out, 'mmrec')),
                readers.read_elliot(os.path.join(out, 'elliot'))):
      got = sorted(zip(raw.users.astype(int).tolist(),
                       raw.items.astype(int).tolist(), raw.split.tolist()))
      self.assertEqual(got, expected)
      values, ids = raw.features['image']
      np.testing.assert_array_equal(values[np.argsort(ids.astype(int))],
                                    image)


@pytest.mark.shared_data
@unittest.skipUnless(os.path.isdir(LVLM),
                     f'real data {LVLM} is absent (only in the project '
                     'workspace, not in a clone)')
class RealMovieLensLVLMTest(absltest.TestCase):

  def test_counts_and_movie_table(self):
    raw = readers.read('movielens_latest', LVLM)
    # Counts of the public data (README, "Data": MovieLens latest-small).
    self.assertLen(raw, 100_004)
    self.assertLen(np.unique(raw.users), 671)
    self.assertLen(np.unique(raw.items), 9066)
    self.assertGreaterEqual(raw.rating.min(), 0.5)
    self.assertLessEqual(raw.rating.max(), 5.0)
    self.assertTrue(set(np.unique(raw.items)) <= set(raw.item_table))
    toy = raw.item_table['1']
    self.assertEqual(toy['title'], 'Toy Story')
    self.assertEqual(toy['year'], '1995')
    self.assertIn('Animation', toy['genres'].split('|'))


if __name__ == '__main__':
  absltest.main()
