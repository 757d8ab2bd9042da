"""Tests for the weight-free extractors against hand-computed values."""

import math
import os

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np
from PIL import Image

from mmjax.data import dataset as dataset_lib
from mmjax.features import base
from mmjax.features import weightfree
from tests.testing import fixtures


def _ds(titles):
  n = len(titles)
  return dataset_lib.Dataset(
      user=np.zeros(1, np.int32), item=np.zeros(1, np.int32),
      split=np.zeros(1, np.int8), user_ids=np.array(['u']),
      item_ids=np.array([f'i{k}' for k in range(n)]),
      item_table={'title': list(titles)})


def _batch(rows, paths=None):
  n = len(rows)
  return base.ItemBatch(np.arange(n, dtype=np.int32),
                        np.array([str(i) for i in range(n)]), list(rows),
                        paths or [None] * n)


class HistogramTest(parameterized.TestCase):

  def test_hand_counted_histogram(self):
    # 2x2 image: black, white, pure red twice; 2 levels per channel.
    a = np.array([[[0, 0, 0], [255, 255, 255]],
                  [[255, 0, 0], [200, 10, 90]]], np.uint8)
    h = weightfree.color_histogram(Image.fromarray(a), bins=2, side=256)
    expected = np.zeros(8, np.float32)
    expected[0] = 0.25           # (0, 0, 0)
    expected[7] = 0.25           # (1, 1, 1)
    expected[4] = 0.5            # (1, 0, 0): both reds
    np.testing.assert_array_equal(h, expected)

  def test_pixels_of_a_flat_image(self):
    im = Image.new('RGB', (40, 30), (51, 102, 255))
    v = weightfree.pixels(im, 4)
    self.assertEqual(v.shape, (48,))
    np.testing.assert_allclose(v.reshape(4, 4, 3)[2, 1], [0.2, 0.4, 1.0],
                               rtol=1e-6)

  def test_image_extractor_batch(self):
    d = fixtures.new_tempdir(self)
    p = os.path.join(d, 'a.png')
    Image.new('RGB', (5, 5), (255, 0, 0)).save(p)
    spec = ml_collections.ConfigDict(
        {'name': 'h', 'method': 'color_histogram', 'bins': 4})
    ext = weightfree.make_extractor(spec, None)
    r = ext.extract(_batch([{}, {}], [p, os.path.join(d, 'none.png')]))
    self.assertEqual(r.values.shape, (2, 64))
    self.assertEqual(r.values[0, 3 * 16], 1.0)  # All pixels in (3, 0, 0).
    self.assertEqual(list(r.failed), [1])
    self.assertTrue(ext.manifest()['weight_free'])

  def test_unknown_method(self):
    with self.assertRaisesRegex(ValueError, 'method'):
      weightfree.make_extractor(
          ml_collections.ConfigDict({'name': 'x', 'method': 'sift'}), None)


class TfidfTest(absltest.TestCase):

  def test_hand_computed_tfidf(self):
    titles = ['red apple', 'green apple apple', 'red car', '']
    spec = ml_collections.ConfigDict(
        {'name': 't', 'method': 'tfidf', 'fields': ['title']})
    ext = weightfree.make_extractor(spec, _ds(titles))
    self.assertEqual(list(ext.vocab), ['apple', 'car', 'green', 'red'])
    r = ext.extract(_batch([{'title': t} for t in titles]))
    n = 4  # Every item counts as a document, including the empty one.
    idf = {t: math.log((1 + n) / (1 + df)) + 1
           for t, df in (('apple', 2), ('car', 1), ('green', 1), ('red', 2))}
    v = np.array([2 * idf['apple'], 0, idf['green'], 0])
    np.testing.assert_allclose(r.values[1], v / np.linalg.norm(v), rtol=1e-6)
    v0 = np.array([idf['apple'], 0, 0, idf['red']])
    np.testing.assert_allclose(r.values[0], v0 / np.linalg.norm(v0), rtol=1e-6)
    self.assertEqual(list(r.failed), [3])
    self.assertIn('empty text', r.failed[3])

  def test_vocab_cap_min_df_and_oov(self):
    titles = ['a1 bb cc', 'bb cc', 'cc dd', 'zz']
    spec = ml_collections.ConfigDict(
        {'name': 't', 'method': 'tfidf', 'fields': ['title'],
         'max_features': 2, 'min_df': 2})
    ext = weightfree.make_extractor(spec, _ds(titles))
    self.assertEqual(list(ext.vocab), ['bb', 'cc'])
    r = ext.extract(_batch([{'title': 'zz'}, {'title': 'cc'}]))
    self.assertEqual(r.failed, {0: 'no term of the TF-IDF vocabulary'})
    np.testing.assert_allclose(r.values[1], [0, 1])
    self.assertEqual(ext.manifest()['vocab_size'], 2)

  def test_empty_vocabulary_is_an_error(self):
    spec = ml_collections.ConfigDict(
        {'name': 't', 'method': 'tfidf', 'fields': ['title']})
    with self.assertRaisesRegex(ValueError, 'empty TF-IDF vocabulary'):
      weightfree.make_extractor(spec, _ds(['', 'x']))


if __name__ == '__main__':
  absltest.main()
