"""Tests for mmjax.data.readers: every format on tiny hand-written files."""

import gzip
import json
import os
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import readers

DataError = dataset_lib.DataError


def _tempdir(test: absltest.TestCase) -> str:
  # absl's create_tempdir needs parsed flags, which pytest never parses.
  path = tempfile.mkdtemp(prefix='mmjax_readers_')
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def _write(path: str, text: str, *, encoding: str = 'utf-8') -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'wt', encoding=encoding) as f:
    f.write(text)
  return path


def _triples(raw: dataset_lib.RawData) -> list[tuple[str, str]]:
  return list(zip(raw.users.tolist(), raw.items.tolist()))


class MMRecTest(parameterized.TestCase):

  def _folder(self, inter: str) -> str:
    d = _tempdir(self)
    _write(os.path.join(d, 'baby.inter'), inter)
    return d

  def test_reads_interactions_splits_and_features(self):
    d = self._folder('userID\titemID\trating\ttimestamp\tx_label\n'
                     '0\t1\t5.0\t100\t0\n'
                     '1\t0\t3.0\t200\t1\n'
                     '1\t2\t4.0\t300\t2\n'
                     '1\t2\t4.0\t300\t2\n')
    image = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.save(os.path.join(d, 'image_feat.npy'), image)
    raw = readers.read_mmrec(d)
    # The duplicate line is kept: de-duplication is preprocessing's job.
    self.assertEqual(_triples(raw),
                     [('0', '1'), ('1', '0'), ('1', '2'), ('1', '2')])
    np.testing.assert_array_equal(raw.split, [0, 1, 2, 2])
    np.testing.assert_array_equal(raw.rating, [5, 3, 4, 4])
    np.testing.assert_array_equal(raw.timestamp, [100, 200, 300, 300])
    self.assertEqual(raw.split.dtype, np.int8)
    values, ids = raw.features['image']
    np.testing.assert_array_equal(values, image)
    self.assertEqual(ids.tolist(), ['0', '1', '2'])
    self.assertNotIn('text', raw.features)

  def test_minimal_header_without_rating(self):
    # MMRec itself reads only userID, itemID and x_label.
    d = self._folder('itemID\tuserID\tx_label\n7\t3\t0\n')
    raw = readers.read_mmrec(d, 'baby')
    self.assertEqual(_triples(raw), [('3', '7')])
    self.assertIsNone(raw.rating)
    self.assertIsNone(raw.timestamp)

  @parameterized.named_parameters(
      ('missing_header_field', 'userID\titemID\n0\t1\n', ':1:', 'x_label'),
      ('wrong_column_count', 'userID\titemID\tx_label\n0\t1\t0\n0\t1\n',
       ':3:', 'expected 3'),
      ('bad_label', 'userID\titemID\tx_label\n0\t1\t3\n', ':2:',
       "x_label '3' is not 0, 1 or 2"),
      ('non_numeric_rating',
       'userID\titemID\trating\tx_label\n0\t1\tfive\t0\n', ':2:', 'five'),
      ('empty', '', 'empty', 'empty'),
      ('header_only', 'userID\titemID\tx_label\n', 'no interactions',
       'no interactions'),
  )
  def test_bad_inter(self, text, where, what):
    d = self._folder(text)
    with self.assertRaises(DataError) as cm:
      readers.read_mmrec(d)
    self.assertIn('baby.inter', str(cm.exception))
    self.assertIn(where, str(cm.exception))
    self.assertIn(what, str(cm.exception))

  @parameterized.named_parameters(
      ('nan', np.array([[0.0, np.nan]]), 'NaN'),
      ('inf', np.array([[np.inf, 0.0]]), 'NaN or inf'),
      ('one_dim', np.zeros(3), '2-D'),
  )
  def test_bad_feature_file(self, values, what):
    d = self._folder('userID\titemID\tx_label\n0\t0\t0\n')
    np.save(os.path.join(d, 'text_feat.npy'), values)
    with self.assertRaisesRegex(DataError, f'text_feat.npy.*{what}'):
      readers.read_mmrec(d)

  def test_unreadable_feature_file(self):
    d = self._folder('userID\titemID\tx_label\n0\t0\t0\n')
    np.save(os.path.join(d, 'image_feat.npy'), np.array([['a']]))
    with self.assertRaisesRegex(DataError, 'image_feat.npy: expected a '
                                'numeric array'):
      readers.read_mmrec(d)
    np.save(os.path.join(d, 'image_feat.npy'),
            np.array([[None]], dtype=object))
    with self.assertRaisesRegex(DataError, 'image_feat.npy: cannot read'):
      readers.read_mmrec(d)
    _write(os.path.join(d, 'image_feat.npy'), 'not an array')
    with self.assertRaisesRegex(DataError, 'image_feat.npy: cannot read'):
      readers.read_mmrec(d)

  def test_feature_rows_must_cover_item_ids(self):
    d = self._folder('userID\titemID\tx_label\n0\t0\t0\n0\t3\t2\n')
    np.save(os.path.join(d, 'image_feat.npy'), np.zeros((3, 2)))
    with self.assertRaisesRegex(
        DataError, r'image_feat\.npy: 3 rows, but .*baby\.inter has itemID 3'):
      readers.read_mmrec(d)

  @parameterized.named_parameters(
      ('user_token', 'u12\t1\t0', "userID 'u12' is not an integer"),
      ('item_token', '0\tB00X\t0', "itemID 'B00X' is not an integer"),
      ('negative_user', '-1\t1\t0', "userID '-1' is negative"),
      ('float_item', '0\t1.5\t0', "itemID '1.5' is not an integer"),
  )
  def test_ids_must_be_integers_named_with_line_and_value(self, line, what):
    # MMRec reads ids as integers: a token would become a user it cannot have.
    d = self._folder(f'userID\titemID\tx_label\n0\t0\t0\n{line}\n'
                     '1\t1\t2\n')
    with self.assertRaisesRegex(DataError, rf'baby\.inter:3: {what}'):
      readers.read_mmrec(d)
    raw = readers.read_mmrec(d, on_bad_line='skip')
    self.assertEqual(_triples(raw), [('0', '0'), ('1', '1')])
    self.assertEqual(raw.steps[0]['examples'], [3])

  def test_ids_read_as_integers(self):
    d = self._folder('userID\titemID\tx_label\n007\t01\t0\n7\t1\t0\n')
    np.save(os.path.join(d, 'image_feat.npy'), np.zeros((2, 2)))
    raw = readers.read_mmrec(d)
    self.assertEqual(_triples(raw), [('7', '1'), ('7', '1')])

  def test_skip_bad_lines_is_counted(self):
    lines = ['userID\titemID\tx_label'] + ['0\t1\t0'] * 3
    lines[2] = 'garbage'
    lines.append('1\t1\t9')
    d = self._folder('\n'.join(lines) + '\n')
    raw = readers.read_mmrec(d, on_bad_line='skip')
    self.assertLen(raw, 2)
    (step,) = raw.steps
    self.assertEqual(step['step'], 'reader_skip_bad_lines')
    self.assertEqual(step['removed'], 2)
    self.assertEqual(step['examples'], [3, 5])
    self.assertTrue(step['file'].endswith('baby.inter'))

  def test_batches_and_blank_lines(self):
    # Small parse batches: line numbers and order must survive batch edges.
    lines = ['userID\titemID\trating\tx_label']
    for k in range(20):
      lines.append(f'{k}\t{k % 7}\t{k / 4}\t{k % 3}')
      if k % 5 == 0:
        lines.append('')
    self.assertEqual(lines[18], '14\t0\t3.5\t2')
    lines[18] = '14\t0\tNaN\t2'
    d = self._folder('\n'.join(lines) + '\n')
    with mock.patch.object(readers, '_CHUNK', 4):
      with self.assertRaisesRegex(DataError,
                                  r"baby\.inter:19: rating 'NaN' is not fin"):
        readers.read_mmrec(d)
      raw = readers.read_mmrec(d, on_bad_line='skip')
    kept = [k for k in range(20) if k != 14]
    self.assertEqual(_triples(raw), [(f'{k}', f'{k % 7}') for k in kept])
    np.testing.assert_array_equal(raw.rating, [k / 4 for k in kept])
    np.testing.assert_array_equal(raw.split, [k % 3 for k in kept])
    self.assertEqual(raw.steps[0]['examples'], [19])

  def test_two_inter_files_need_a_name(self):
    d = self._folder('userID\titemID\tx_label\n0\t0\t0\n')
    _write(os.path.join(d, 'other.inter'), 'userID\titemID\tx_label\n')
    with self.assertRaisesRegex(DataError, 'pass name='):
      readers.read_mmrec(d)
    self.assertLen(readers.read_mmrec(d, 'baby'), 1)


class ElliotTest(parameterized.TestCase):

  def test_splits_and_ducho_features(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'train.tsv'), 'u1\ti1\t4\t10\nu2\ti2\t5\t11\n')
    _write(os.path.join(d, 'val.tsv'), 'u1\ti2\t3\t12\n')
    _write(os.path.join(d, 'test.tsv'), 'u2\ti1\t1\t13\n')
    folder = os.path.join(d, 'visual_embeddings', 'torch', 'ResNet50')
    os.makedirs(folder)
    np.save(os.path.join(folder, 'i1.npy'), np.array([[1.0, 2.0]]))
    np.save(os.path.join(folder, 'i2.npy'), np.array([3.0, 4.0]))
    raw = readers.read_elliot(d)
    self.assertEqual(_triples(raw), [('u1', 'i1'), ('u2', 'i2'), ('u1', 'i2'),
                                     ('u2', 'i1')])
    np.testing.assert_array_equal(raw.split, [0, 0, 1, 2])
    np.testing.assert_array_equal(raw.rating, [4, 5, 3, 1])
    np.testing.assert_array_equal(raw.timestamp, [10, 11, 12, 13])
    values, ids = raw.features['visual_embeddings/torch/ResNet50']
    self.assertEqual(ids.tolist(), ['i1', 'i2'])
    np.testing.assert_array_equal(values, [[1, 2], [3, 4]])

  def test_two_columns_and_no_val(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'train.tsv'), 'a\tx\n')
    _write(os.path.join(d, 'test.tsv'), 'b\ty\n')
    raw = readers.read_elliot(d)
    self.assertEqual(_triples(raw), [('a', 'x'), ('b', 'y')])
    self.assertIsNone(raw.rating)
    np.testing.assert_array_equal(raw.split, [0, 2])

  @parameterized.named_parameters(
      ('wrong_count', 'a\tx\t1\nb\ty\n', 'train.tsv:2:', 'expected 3'),
      ('one_column', 'a\n', 'train.tsv:1:', '2 to 4'),
      ('bad_timestamp', 'a\tx\t1\tnoon\n', 'train.tsv:1:', 'noon'),
      ('inf_rating', 'a\tx\tinf\n', 'train.tsv:1:', 'not finite'),
  )
  def test_bad_lines(self, train, where, what):
    d = _tempdir(self)
    _write(os.path.join(d, 'train.tsv'), train)
    _write(os.path.join(d, 'test.tsv'), 'b\ty\t1\n')
    with self.assertRaises(DataError) as cm:
      readers.read_elliot(d)
    self.assertIn(where, str(cm.exception))
    self.assertIn(what, str(cm.exception))

  def test_split_files_need_the_same_columns(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'train.tsv'), 'a\tx\t5\t1\n')
    _write(os.path.join(d, 'test.tsv'), 'b\ty\n')
    with self.assertRaisesRegex(DataError,
                                r'test\.tsv:1: 2 fields .* previous .* 4'):
      readers.read_elliot(d)

  def test_missing_test_file(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'train.tsv'), 'a\tx\n')
    with self.assertRaisesRegex(DataError, 'test.tsv'):
      readers.read_elliot(d)

  def test_feature_dims_must_agree(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'train.tsv'), 'a\tx\n')
    _write(os.path.join(d, 'test.tsv'), 'a\ty\n')
    os.makedirs(os.path.join(d, 'text'))
    np.save(os.path.join(d, 'text', 'x.npy'), np.zeros(3))
    np.save(os.path.join(d, 'text', 'y.npy'), np.zeros(4))
    with self.assertRaisesRegex(DataError, r'y\.npy: dim 4, expected 3'):
      readers.read_elliot(d)


class RecBoleTest(parameterized.TestCase):

  def test_inter_and_item(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'ml.inter'),
           'user_id:token\titem_id:token\trating:float\ttimestamp:float\n'
           '196\t242\t3\t881250949\n186\t302\t3.5\t891717742.0\n')
    _write(os.path.join(d, 'ml.item'),
           'item_id:token\tmovie_title:token_seq\trelease_year:token\t'
           'class:token_seq\n'
           "242\tKolya\t1996\tComedy\n302\tL.A. Confidential\t1997\t"
           'Crime Film-Noir Mystery Thriller\n999\tUnrated\t1990\tDrama\n')
    raw = readers.read_recbole(d)
    self.assertEqual(_triples(raw), [('196', '242'), ('186', '302')])
    np.testing.assert_array_equal(raw.rating, [3.0, 3.5])
    np.testing.assert_array_equal(raw.timestamp, [881250949, 891717742])
    self.assertIsNone(raw.split)
    # Items without interactions stay in the table.
    self.assertEqual(sorted(raw.item_table), ['242', '302', '999'])
    self.assertEqual(raw.item_table['302'], {
        'title': 'L.A. Confidential', 'year': '1997',
        'genres': 'Crime Film-Noir Mystery Thriller'})

  @parameterized.named_parameters(
      ('untyped', 'user_id\titem_id\n1\t2\n', 'name:type'),
      ('unknown_type', 'user_id:token\titem_id:int\n1\t2\n', 'item_id:int'),
      ('no_item', 'user_id:token\trating:float\n1\t2\n', 'lacks item_id'),
  )
  def test_bad_header(self, text, what):
    d = _tempdir(self)
    _write(os.path.join(d, 'x.inter'), text)
    with self.assertRaises(DataError) as cm:
      readers.read_recbole(d)
    self.assertIn('x.inter:1:', str(cm.exception))
    self.assertIn(what, str(cm.exception))

  def test_empty_item_file(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'x.inter'), 'user_id:token\titem_id:token\n1\t2\n')
    _write(os.path.join(d, 'x.item'), '')
    with self.assertRaisesRegex(DataError, r'x\.item: empty'):
      readers.read_recbole(d)


class AmazonTest(parameterized.TestCase):

  def test_2014_reviews_and_literal_meta(self):
    d = _tempdir(self)
    reviews = _write(os.path.join(d, 'reviews_Baby.json.gz'), ''.join(
        json.dumps(r) + '\n' for r in [
            {'reviewerID': 'A1', 'asin': 'B1', 'overall': 5.0,
             'unixReviewTime': 1400000000, 'reviewText': 'nice'},
            {'reviewerID': 'A2', 'asin': 'B1', 'overall': 2.0,
             'unixReviewTime': 1400000001}]))
    # 2014 meta lines are Python literals (single quotes), not JSON.
    meta = _write(os.path.join(d, 'meta_Baby.json.gz'), (
        "{'asin': 'B1', 'title': \"Bottle's cap\", 'imUrl': "
        "'http://x/1.jpg', 'categories': [['Baby', 'Feeding'], ['Kids']], "
        "'description': 'A cap.', 'price': 3.5}\n"
        "{'asin': 'B2', 'brand': 'Acme'}\n"))
    raw = readers.read('amazon2014', reviews, meta=meta)
    self.assertEqual(_triples(raw), [('A1', 'B1'), ('A2', 'B1')])
    np.testing.assert_array_equal(raw.rating, [5, 2])
    np.testing.assert_array_equal(raw.timestamp, [1400000000, 1400000001])
    b1 = raw.item_table['B1']
    self.assertEqual(b1['title'], "Bottle's cap")
    self.assertEqual(b1['image'], 'http://x/1.jpg')
    self.assertEqual(b1['category'], 'Baby > Feeding')
    self.assertEqual(b1['description'], 'A cap.')
    self.assertEqual(b1['price'], '3.5')
    self.assertEqual(raw.item_table['B2']['brand'], 'Acme')
    self.assertIsNone(raw.item_table['B2']['title'])

  def test_2018_meta_fields(self):
    d = _tempdir(self)
    reviews = _write(os.path.join(d, 'Baby.json'), json.dumps(
        {'reviewerID': 'A1', 'asin': 'B1', 'overall': 4.0,
         'unixReviewTime': 1}) + '\n')
    meta = _write(os.path.join(d, 'meta_Baby.json'), json.dumps(
        {'asin': 'B1', 'title': 'T', 'category': ['Baby', 'Bath'],
         'description': ['line one', 'line two'],
         'imageURLHighRes': ['http://x/hi.jpg'], 'image': ['http://x/lo.jpg']})
                 + '\n')
    raw = readers.read('amazon2018', reviews, meta=meta)
    self.assertEqual(raw.item_table['B1'], {
        'title': 'T', 'description': 'line one line two',
        'category': 'Baby > Bath', 'brand': None, 'price': None,
        'image': 'http://x/hi.jpg'})

  def test_2023(self):
    d = _tempdir(self)
    reviews = _write(os.path.join(d, 'Baby.jsonl'), ''.join(
        json.dumps(r) + '\n' for r in [
            {'user_id': 'U1', 'parent_asin': 'P1', 'asin': 'C1',
             'rating': 4.0, 'timestamp': 1588615855070},
            {'user_id': 'U2', 'parent_asin': 'P1', 'asin': 'C2',
             'rating': 1.0, 'timestamp': 1588615856000}]))
    meta = _write(os.path.join(d, 'meta_Baby.jsonl.gz'), json.dumps(
        {'parent_asin': 'P1', 'title': 'Stroller', 'description': ['Folds.'],
         'categories': ['Baby', 'Strollers'], 'features': ['Light', 'Red'],
         'images': [{'thumb': 't.jpg', 'large': 'l.jpg', 'hi_res': None}],
         'main_category': 'Baby', 'store': 'S', 'price': None}) + '\n')
    raw = readers.read_amazon2023(reviews, meta)
    # parent_asin is the item; timestamps go from milliseconds to seconds.
    self.assertEqual(_triples(raw), [('U1', 'P1'), ('U2', 'P1')])
    np.testing.assert_array_equal(raw.timestamp, [1588615855, 1588615856])
    self.assertEqual(raw.item_table['P1'], {
        'title': 'Stroller', 'description': 'Folds.',
        'category': 'Baby > Strollers', 'features': 'Light Red',
        'store': 'S', 'price': None, 'image': 'l.jpg'})

  @parameterized.named_parameters(
      ('not_json', '{"reviewerID": "A", "asin": "B", "overall": 1, '
       '"unixReviewTime": 2}\nnot json\n', ':2:', 'JSON object'),
      ('missing_time', '{"reviewerID": "A", "asin": "B", "overall": 1}\n',
       ':1:', "'unixReviewTime'"),
      ('missing_field', '{"reviewerID": "A"}\n', ':1:', "'asin'"),
      ('bad_rating', '{"reviewerID": "A", "asin": "B", "overall": "x"}\n',
       ':1:', "'x'"),
      # str() would make every null reviewer the one user 'None'.
      ('null_user', '{"reviewerID": null, "asin": "B", "overall": 1, '
       '"unixReviewTime": 2}\n', ':1:', 'reviewerID None is not a string'),
      ('empty_item', '{"reviewerID": "A", "asin": " ", "overall": 1, '
       '"unixReviewTime": 2}\n', ':1:', "asin ' ' is empty"),
      ('bool_rating', '{"reviewerID": "A", "asin": "B", "overall": true, '
       '"unixReviewTime": 2}\n', ':1:', 'overall True is not a number'),
  )
  def test_bad_review_lines(self, text, where, what):
    path = _write(os.path.join(_tempdir(self), 'r.json'),
                  text)
    with self.assertRaises(DataError) as cm:
      readers.read_amazon2014(path)
    self.assertIn(f'r.json{where}', str(cm.exception))
    self.assertIn(what, str(cm.exception))

  def test_skip_bad_review_lines(self):
    path = _write(os.path.join(_tempdir(self), 'r.jsonl'),
                  '{"user_id": "U", "parent_asin": "P", "rating": 5, '
                  '"timestamp": 2000}\n'
                  '[1, 2]\n'
                  '{"user_id": 1}\n'
                  '{"user_id": "V", "parent_asin": "P", "rating": "?", '
                  '"timestamp": 3000}\n'
                  '{"user_id": "V", "parent_asin": "P", "rating": 4, '
                  '"timestamp": 3000}\n')
    raw = readers.read_amazon2023(path, on_bad_line='skip')
    self.assertEqual(_triples(raw), [('U', 'P'), ('V', 'P')])
    np.testing.assert_array_equal(raw.rating, [5, 4])
    np.testing.assert_array_equal(raw.timestamp, [2, 3])
    self.assertEqual(raw.steps[0]['removed'], 3)
    self.assertEqual(raw.steps[0]['examples'], [2, 3, 4])


class MovieLensTest(parameterized.TestCase):

  def test_100k(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'u.data'), '196\t242\t3\t881250949\n'
           '186\t302\t3\t891717742\n')
    flags = ['0'] * 19
    flags[5] = flags[8] = '1'  # Comedy, Drama.
    _write(os.path.join(d, 'u.item'),
           '242|Kolya (1996)|24-Jan-1997||http://imdb/kolya|' + '|'.join(flags)
           + '\n302|Caf\xe9 (1997)|01-Jan-1997||http://imdb/cafe|'
           + '|'.join(['0'] * 19) + '\n', encoding='latin-1')
    raw = readers.read_movielens100k(d)
    self.assertEqual(_triples(raw), [('196', '242'), ('186', '302')])
    self.assertEqual(raw.item_table['242']['genres'], 'Comedy|Drama')
    self.assertEqual(raw.item_table['242']['year'], '1996')
    self.assertEqual(raw.item_table['302']['title'], 'Caf\xe9 (1997)')
    self.assertEqual(raw.item_table['302']['genres'], '')

  def test_100k_bad_item_line(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'u.data'), '1\t2\t3\t4\n')
    _write(os.path.join(d, 'u.item'), '2|Short|x\n')
    with self.assertRaisesRegex(DataError, r'u\.item:1: expected 24'):
      readers.read_movielens100k(d)

  def test_100k_genre_flags_must_be_0_or_1(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'u.data'), '1\t2\t3\t4\n')
    flags = ['0'] * 19
    flags[3] = '2'
    _write(os.path.join(d, 'u.item'), '2|T (1990)|x||u|' + '|'.join(flags)
           + '\n')
    with self.assertRaisesRegex(DataError,
                                r'u\.item:1: genre flags must be 0 or 1'):
      readers.read_movielens100k(d)

  @parameterized.named_parameters(
      # The quote closes at the next title's opening quote: 3 fields, and
      # without strict quoting movie 12 would vanish into movie 11's title.
      ('closed_later', '11,"Heat (1995),Action\n12,"Up (2009)",Animation\n'
       '13,Big (1988),Comedy\n', ':2:', 'expected after'),
      ('never_closed', '11,"Heat (1995),Action\n12,Up (2009),Animation\n',
       ':2:', 'unexpected end of data'),
  )
  def test_latest_unclosed_quote_named_with_file_and_line(self, movies,
                                                          where, what):
    d = _tempdir(self)
    _write(os.path.join(d, 'ratings.csv'),
           'userId,movieId,rating,timestamp\n1,11,4.5,9\n1,12,4,9\n')
    _write(os.path.join(d, 'movies.csv'), 'movieId,title,genres\n' + movies)
    with self.assertRaisesRegex(DataError,
                                f'movies.csv{where} .*{what}.*unclosed quote'):
      readers.read_movielens_latest(d)

  def test_latest_multiline_title_is_a_bad_line(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'ratings.csv'),
           'userId,movieId,rating,timestamp\n1,11,4.5,9\n')
    _write(os.path.join(d, 'movies.csv'),
           'movieId,title,genres\n11,"Heat\n(1995)",Action\n12,Up,Anim\n')
    with self.assertRaisesRegex(DataError, r'movies\.csv:2: .* lines 2-3'):
      readers.read_movielens_latest(d)
    raw = readers.read_movielens_latest(d, on_bad_line='skip')
    self.assertEqual(sorted(raw.item_table), ['12'])
    self.assertEqual(raw.steps[-1]['examples'], [2])
    _write(os.path.join(d, 'movies.csv'), 'id,title\n11,Heat\n')
    with self.assertRaisesRegex(DataError,
                                'movies.csv:1: header lacks movieId'):
      readers.read_movielens_latest(d)

  def test_latest_csv_with_quoted_titles(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'ratings.csv'),
           'userId,movieId,rating,timestamp\n1,11,4.5,964982703\n'
           '2,12,0.5,964982224\n')
    _write(os.path.join(d, 'movies.csv'),
           'movieId,title,genres\n'
           '11,"American President, The (1995)",Comedy|Drama|Romance\n'
           '12,Heat (1995),Action|Crime\n')
    raw = readers.read('movielens_latest', d)
    self.assertEqual(_triples(raw), [('1', '11'), ('2', '12')])
    np.testing.assert_array_equal(raw.rating, [4.5, 0.5])
    self.assertEqual(raw.item_table['11'], {
        'title': 'American President, The (1995)', 'year': '1995',
        'genres': 'Comedy|Drama|Romance'})

  def test_latest_tsv(self):
    d = _tempdir(self)
    _write(os.path.join(d, 'ratings.tsv'),
           'userId\tmovieId\trating\ttimestamp\n1\t1\t2.0\t1260759108\n')
    _write(os.path.join(d, 'movies.tsv'),
           'movieId\ttitle\tyear\tgenres\n1\tToy Story\t1995\tAnimation\n')
    raw = readers.read_movielens_latest(d)
    self.assertEqual(raw.item_table['1'], {
        'title': 'Toy Story', 'year': '1995', 'genres': 'Animation'})

  @parameterized.named_parameters(
      ('wrong_count', 'userId,movieId,rating,timestamp\n1,2,3\n', ':2:',
       'expected 4'),
      ('bad_timestamp', 'userId,movieId,rating,timestamp\n1,2,3,x\n', ':2:',
       "'x'"),
  )
  def test_latest_bad_ratings(self, text, where, what):
    d = _tempdir(self)
    _write(os.path.join(d, 'ratings.csv'), text)
    with self.assertRaises(DataError) as cm:
      readers.read_movielens_latest(d)
    self.assertIn(f'ratings.csv{where}', str(cm.exception))
    self.assertIn(what, str(cm.exception))


class DispatchTest(absltest.TestCase):

  def test_binary_and_corrupt_files(self):
    d = _tempdir(self)
    with open(os.path.join(d, 'u.data'), 'wb') as f:
      f.write(b'1\t2\t3\t4\n' + b'\xff\xfe\x00\n')
    with self.assertRaisesRegex(DataError, r'u\.data: .*not valid utf-8'):
      readers.read_movielens100k(d)
    path = os.path.join(d, 'r.json.gz')
    with open(path, 'wb') as f:
      f.write(b'not gzip at all')
    with self.assertRaisesRegex(DataError, r'r\.json\.gz: cannot read'):
      readers.read_amazon2014(path)

  def test_formats(self):
    self.assertEqual(set(readers.READERS), {
        'mmrec', 'elliot', 'recbole', 'amazon2014', 'amazon2018',
        'amazon2023', 'movielens100k', 'movielens_latest'})

  def test_unknown_format_lists_known_ones(self):
    with self.assertRaisesRegex(DataError, "'csv'.*amazon2014.*recbole"):
      readers.read('csv', '/nonexistent')

  def test_bad_policy(self):
    with self.assertRaisesRegex(ValueError, 'on_bad_line'):
      readers.read_elliot(_tempdir(self), on_bad_line='drop')

  def test_missing_file(self):
    with self.assertRaisesRegex(DataError, 'not found'):
      readers.read_movielens100k(_tempdir(self))

  def test_bad_argument_is_a_data_error_naming_it(self):
    d = _tempdir(self)
    with self.assertRaisesRegex(
        DataError, "'elliot' reader takes no argument 'name'.*on_bad_line"):
      readers.read('elliot', d, name='None')
    with self.assertRaisesRegex(
        DataError, "'recbole' reader's argument 'name' must be a string"):
      readers.read('recbole', d, name=3)
    self.assertEqual(readers.arguments('mmrec'), ('name', 'on_bad_line'))


if __name__ == '__main__':
  absltest.main()
