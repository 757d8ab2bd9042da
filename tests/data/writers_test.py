"""Tests for mmjax.data.writers: round trips and the tools' own reading."""

import csv
import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import readers
from mmjax.data import writers

DataError = dataset_lib.DataError


def _tempdir(test: absltest.TestCase) -> str:
  # absl's create_tempdir needs parsed flags, which pytest never parses.
  path = tempfile.mkdtemp(prefix='mmjax_writers_')
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def _dataset(seed: int = 0, *, rating: bool = True, timestamp: bool = True,
             num_users: int = 7, num_items: int = 11, n: int = 60
             ) -> dataset_lib.Dataset:
  """A tiny dataset in which every user and item has an interaction."""
  rng = np.random.default_rng([seed, 17])
  user = np.concatenate([np.arange(num_users),
                         rng.integers(0, num_users, n - num_users)])
  item = np.concatenate([rng.integers(0, num_items, num_users),
                         np.arange(num_items),
                         rng.integers(0, num_items,
                                      n - num_users - num_items)])
  user = user.astype(np.int32)
  item = item.astype(np.int32)
  split = rng.integers(0, 3, n).astype(np.int8)
  ds = dataset_lib.Dataset(
      user=user, item=item, split=split,
      user_ids=np.array([f'u{k}' for k in range(num_users)]),
      item_ids=np.array([f'i{k}' for k in range(num_items)]),
      # Quarter-star ratings and an awkward float32 value must survive text.
      rating=(rng.integers(1, 21, n) / 4).astype(np.float32) if rating
      else None,
      timestamp=rng.integers(0, 2**40, n).astype(np.int64) if timestamp
      else None)
  if rating:
    ds.rating[0] = np.float32(0.1)
  ds.validate()
  return ds


def _sorted_rows(*columns: np.ndarray) -> list[tuple]:
  return sorted(zip(*(c.tolist() for c in columns)))


class MMRecWriterTest(parameterized.TestCase):

  @parameterized.parameters(True, False)
  def test_round_trip(self, with_ratings):
    ds = _dataset(rating=with_ratings, timestamp=with_ratings)
    rng = np.random.default_rng([1])
    feats = {'image': rng.normal(size=(11, 4)).astype(np.float32),
             'text': rng.normal(size=(11, 3)).astype(np.float32)}
    out = _tempdir(self)
    writers.write_mmrec(ds, out, 'tiny', feats)
    self.assertCountEqual(os.listdir(out),
                          ['tiny.inter', 'image_feat.npy', 'text_feat.npy'])
    raw = readers.read_mmrec(out)
    # MMRec ids are the internal ids: raw id = str(internal id).
    self.assertEqual(
        _sorted_rows(raw.users.astype(np.int32), raw.items.astype(np.int32),
                     raw.split),
        _sorted_rows(ds.user, ds.item, ds.split))
    rating = (ds.rating if with_ratings
              else np.ones(len(ds), np.float32))  # 1 where unknown.
    timestamp = ds.timestamp if with_ratings else np.zeros(len(ds), np.int64)
    np.testing.assert_array_equal(raw.rating, rating)  # Same order as ds.
    np.testing.assert_array_equal(raw.timestamp, timestamp)
    for name, values in feats.items():
      got, ids = raw.features[name]
      np.testing.assert_array_equal(got, values)
      self.assertEqual(ids.tolist(), [str(k) for k in range(11)])

  def test_nan_rating_written_as_one(self):
    ds = _dataset()
    ds.rating[3] = np.nan
    out = _tempdir(self)
    writers.write_mmrec(ds, out, 'x')
    raw = readers.read_mmrec(out)
    self.assertEqual(raw.rating[3], 1.0)

  def test_file_reads_like_mmrec(self):
    """Mimics MMRec's RecDataset: read_csv(sep='\\t', usecols=[userID, itemID,
    x_label]).

    Item and user counts are max id + 1; features are np.load'ed with row =
    item id, so their row count must equal that item count.
    """
    ds = _dataset()
    feats = {'image': np.ones((11, 2), np.float32),
             'clip': np.zeros((11, 5), np.float32)}
    out = _tempdir(self)
    writers.write_mmrec(ds, out, 'baby', feats)
    with open(os.path.join(out, 'baby.inter'), newline='') as f:
      rows = list(csv.DictReader(f, delimiter='\t'))
    self.assertEqual(list(rows[0]), ['userID', 'itemID', 'rating', 'timestamp',
                                     'x_label'])
    user = np.array([int(r['userID']) for r in rows])
    item = np.array([int(r['itemID']) for r in rows])
    label = np.array([int(r['x_label']) for r in rows])
    self.assertEqual(user.max() + 1, ds.num_users)
    self.assertEqual(item.max() + 1, ds.num_items)
    for k in range(3):  # MMRec's split(): df[x_label == k].
      np.testing.assert_array_equal(
          np.sort(item[label == k]), np.sort(ds.select(k)[1]))
    self.assertEqual(np.load(os.path.join(out, 'image_feat.npy')).shape,
                     (item.max() + 1, 2))
    self.assertEqual(np.load(os.path.join(out, 'clip_feat.npy')).shape,
                     (11, 5))

  def test_item_without_interaction_at_top_raises(self):
    ds = _dataset()
    ds.item_ids = np.append(ds.item_ids, 'cold')
    with self.assertRaisesRegex(DataError, 'max id'):
      writers.write_mmrec(ds, _tempdir(self), 'x')

  @parameterized.named_parameters(
      ('rows', np.zeros((10, 2), np.float32), r'\[11, D\]'),
      ('nan', np.full((11, 2), np.nan, np.float32), 'NaN'),
  )
  def test_bad_features(self, values, what):
    with self.assertRaisesRegex(DataError, f"'image'.*{what}"):
      writers.write_mmrec(_dataset(), _tempdir(self), 'x', {'image': values})


class ElliotWriterTest(parameterized.TestCase):

  def test_round_trip(self):
    ds = _dataset(seed=3)
    feats = {'visual': np.random.default_rng([2]).normal(
        size=(11, 6)).astype(np.float32)}
    out = _tempdir(self)
    writers.write_elliot(ds, out, feats)
    raw = readers.read_elliot(out)
    self.assertEqual(
        _sorted_rows(raw.users.astype(np.int32), raw.items.astype(np.int32),
                     raw.split, raw.rating, raw.timestamp),
        _sorted_rows(ds.user, ds.item, ds.split, ds.rating, ds.timestamp))
    values, ids = raw.features['visual']
    order = np.argsort(ids.astype(int))
    np.testing.assert_array_equal(ids.astype(int)[order], np.arange(11))
    np.testing.assert_array_equal(values[order], feats['visual'])

  def test_no_validation_writes_no_val_file(self):
    ds = _dataset(seed=5)
    ds.split[ds.split == 1] = 0
    out = _tempdir(self)
    writers.write_elliot(ds, out)
    self.assertCountEqual(os.listdir(out), ['train.tsv', 'test.tsv'])
    raw = readers.read_elliot(out)
    self.assertEqual(_sorted_rows(raw.users.astype(np.int32),
                                  raw.items.astype(np.int32), raw.split),
                     _sorted_rows(ds.user, ds.item, ds.split))

  def test_files_read_like_elliot(self):
    """Mimics Elliot's fixed strategy: headerless TSV, columns user item
    rating timestamp; and Ducho-style `<feature>/<item>.npy` vectors."""
    ds = _dataset(seed=4, rating=False, timestamp=False)
    out = _tempdir(self)
    writers.write_elliot(ds, out, {'text': np.eye(11, dtype=np.float32)})
    for file, label in (('train.tsv', 0), ('val.tsv', 1), ('test.tsv', 2)):
      with open(os.path.join(out, file), newline='') as f:
        rows = list(csv.reader(f, delimiter='\t'))
      self.assertTrue(all(len(r) == 4 for r in rows))
      u, i = ds.select(label)
      self.assertEqual(sorted((int(r[0]), int(r[1])) for r in rows),
                       _sorted_rows(u, i))
      self.assertTrue(all(float(r[2]) == 1.0 and r[3] == '0' for r in rows))
    for item in range(11):
      np.testing.assert_array_equal(
          np.load(os.path.join(out, 'text', f'{item}.npy')),
          np.eye(11)[item])


if __name__ == '__main__':
  absltest.main()
