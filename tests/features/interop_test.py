"""Round trips through Ducho's and MMRec's feature layouts."""

import os

from absl.testing import absltest
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.features import interop
from tests.testing import extraction
from tests.testing import fixtures


class InteropTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = fixtures.new_tempdir(self)
    self.ds = extraction.make_dataset(self.dir, num_items=6,
                                        with_images=False)
    v = np.random.default_rng([4, 4]).normal(size=(6, 5)).astype(np.float32)
    v[2] = 0.0
    self.values = v
    store.save(self.dir, 'orig', v, {'extractor': 'x'}, self.ds.item_ids,
               failed={2: 'no image'})
    self.out = fixtures.new_tempdir(self)

  def test_mmrec_round_trip(self):
    path = os.path.join(self.out, 'image_feat.npy')
    self.assertEqual(interop.export_mmrec(self.dir, 'orig', path), 1)
    np.testing.assert_array_equal(np.load(path), self.values)
    interop.import_mmrec(self.dir, 'back', path, row_ids=self.ds.item_ids)
    back = store.load(self.dir, 'back')
    np.testing.assert_array_equal(back.values, self.values)
    self.assertTrue(back.mask.all())  # MMRec carries no mask.
    self.assertEqual(back.manifest['format'], 'mmrec')

  def test_mmrec_default_rows_are_mmrec_item_ids(self):
    ds_dir = fixtures.new_tempdir(self)
    ds = extraction.make_dataset(ds_dir, num_items=4, with_images=False)
    ds.item_ids = np.array(['3', '0', '9', '1'])  # Raw ids as MMRec writes.
    dataset_lib.save(ds, ds_dir)
    m = np.arange(20, dtype=np.float32).reshape(5, 4)  # Rows 0..4.
    path = os.path.join(self.out, 'text_feat.npy')
    np.save(path, m)
    interop.import_mmrec(ds_dir, 't', path)
    f = store.load(ds_dir, 't')
    np.testing.assert_array_equal(f.values[[0, 1, 3]], m[[3, 0, 1]])
    self.assertEqual(f.mask.tolist(), [True, True, False, True])
    self.assertEqual(f.manifest['failed'], {'2': 'not in text_feat.npy'})
    self.assertEqual(f.manifest['source_rows_not_in_dataset'], 2)

  def test_ducho_round_trip(self):
    folder = os.path.join(self.out, 'visual', 'torch', 'resnet50', 'avgpool')
    self.assertEqual(interop.export_ducho(self.dir, 'orig', folder), 5)
    self.assertFalse(os.path.exists(os.path.join(folder, 'm2.npy')))
    np.save(os.path.join(folder, 'stranger.npy'), np.ones(5, np.float32))
    # Ducho sometimes stores [1, D]; both shapes import.
    np.save(os.path.join(folder, 'm4.npy'), self.values[4][None])
    interop.import_ducho(self.dir, 'back', folder)
    back = store.load(self.dir, 'back')
    np.testing.assert_array_equal(back.values, self.values)
    self.assertEqual(back.mask.tolist(), [True, True, False, True, True, True])
    self.assertIn('not in Ducho folder', back.manifest['failed']['2'])
    self.assertEqual(back.manifest['source_rows_not_in_dataset'], 1)

  def test_bad_inputs(self):
    path = os.path.join(self.out, 'x.npy')
    np.save(path, np.zeros((3, 2, 2), np.float32))
    with self.assertRaisesRegex(dataset_lib.DataError, r'expected \[R, D\]'):
      interop.import_mmrec(self.dir, 'x', path)
    np.save(path, np.zeros((3, 2), np.float32))
    with self.assertRaisesRegex(dataset_lib.DataError, 'row ids'):
      interop.import_mmrec(self.dir, 'x', path, row_ids=np.array(['a']))
    folder = os.path.join(self.out, 'd')
    os.makedirs(folder)
    np.save(os.path.join(folder, 'm0.npy'), np.zeros((2, 3), np.float32))
    with self.assertRaisesRegex(dataset_lib.DataError, r'\[D\] or \[1, D\]'):
      interop.import_ducho(self.dir, 'x', folder)
    os.remove(os.path.join(folder, 'm0.npy'))
    np.save(os.path.join(folder, 'zzz.npy'), np.zeros(3, np.float32))
    with self.assertRaisesRegex(dataset_lib.DataError, 'none of its'):
      interop.import_ducho(self.dir, 'x', folder)

  def test_cli(self):
    path = os.path.join(self.out, 'cli_feat.npy')
    interop.main(['export-mmrec', '--dataset_dir', self.dir, '--name', 'orig',
                  '--path', path])
    ids = os.path.join(self.out, 'ids.npy')
    np.save(ids, self.ds.item_ids)
    interop.main(['import-mmrec', '--dataset_dir', self.dir, '--name', 'cli',
                  '--path', path, '--row_ids', ids])
    np.testing.assert_array_equal(store.load(self.dir, 'cli').values,
                                  self.values)


if __name__ == '__main__':
  absltest.main()
