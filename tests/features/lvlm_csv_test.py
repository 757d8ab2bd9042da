"""Tests for reading LVLM output files: headers, columns, recipe slots.

Every file is written by the test, in the forms LVLM output files take:
`asin,result` with the header repeated between batches, the study's own
`Image Name,Keywords` header, and the recipe prompt's space-separated slots.
"""

import csv
import os

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.features import base
from mmjax.features import descriptions
from mmjax.features import prompts
from mmjax.features import slots
from tests.testing import extraction
from tests.testing import fixtures

DISHES = [('Soup', 'Thai', 'Coconut Milk', 'Spicy', 'Dinner'),
          ('Pancakes', 'American', 'Flour', 'Sweet', 'Breakfast'),
          ('Risotto', 'Italian', 'Rice', 'Creamy', 'Dinner'),
          ('Tacos', 'Mexican', 'Beef', 'Savory', 'Lunch')]


def _recipe_answer(i: int) -> str:
  # The published recipe prompt's format: no commas between the slots.
  values = DISHES[i % len(DISHES)]
  return ' '.join(f'[{k}] {{{v}}}'
                  for k, v in zip(prompts.slots_of('recipes'), values))


def _write_rows(path: str, rows) -> None:
  with open(path, 'w', newline='', encoding='utf-8') as f:
    csv.writer(f).writerows(rows)


class CsvHeaderTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = fixtures.new_tempdir(self)
    self.ids = np.array([f'r{i}' for i in range(6)])

  def test_repeated_header_lines_are_headers_not_rows(self):
    path = os.path.join(self.dir, 'qwen_keywords.csv')
    rows = [('asin', 'result')]
    for i in range(5):  # r5 has no answer; 'x9' is not an item.
      rows += [(f'r{i}', f'answer {i}\nsecond line'), ('asin', 'result')]
    rows += [('x9', 'stray'), ('r0', 'answer 0\nsecond line')]
    _write_rows(path, rows)
    with self.assertLogs(level='WARNING') as logs:
      texts, problems, counts = base.join_csv_column(path, self.ids)
    self.assertEqual(counts, {'rows': 7, 'not_in_dataset': 1,
                              'duplicate_rows': 1, 'repeated_headers': 5})
    self.assertEqual(texts[:5], [f'answer {i}\nsecond line' for i in range(5)])
    self.assertEqual(problems, {5: 'not in qwen_keywords.csv'})
    self.assertIn('5 lines repeat the header asin,result', logs.output[0])

  def test_no_repeated_header_key_in_a_clean_file(self):
    path = os.path.join(self.dir, 'clean.csv')
    _write_rows(path, [('asin', 'result'), ('r0', 'a'), ('r1', 'b')])
    _, _, counts = base.join_csv_column(path, self.ids)
    self.assertEqual(counts, {'rows': 2, 'not_in_dataset': 0,
                              'duplicate_rows': 0})

  def test_other_header_names_the_file_the_options_and_the_pair(self):
    # The study's own format: `Image Name,Keywords`.
    path = os.path.join(self.dir, 'baby_keywords.csv')
    _write_rows(path, [('Image Name', 'Keywords')] +
                [(f'r{i}', f'[Category] {{Toy {i}}}') for i in range(4)] +
                [('B0NOTANITEM', '[Category] {Bottle}')])
    with self.assertRaises(dataset_lib.DataError) as e:
      base.join_csv_column(path, self.ids)
    msg = str(e.exception)
    self.assertIn(path, msg)
    self.assertIn("the header line is ['Image Name', 'Keywords']", msg)
    self.assertIn("no 'asin' and no 'result' column", msg)
    self.assertIn("csv.key (now 'asin')", msg)
    self.assertIn("csv.column (now 'result')", msg)
    self.assertIn("suggests csv.key='Image Name' (4 of its 5 rows name an "
                  "item of the dataset) and csv.column='Keywords'", msg)
    # The suggested options read the file.
    texts, _, counts = base.join_csv_column(path, self.ids, key='Image Name',
                                            column='Keywords')
    self.assertEqual(texts[3], '[Category] {Toy 3}')
    self.assertEqual(counts['not_in_dataset'], 1)

  def test_the_text_column_suggested_is_the_long_one(self):
    path = os.path.join(self.dir, 'three.csv')
    _write_rows(path, [('model', 'item', 'output')] +
                [('qwen', f'r{i}', f'[Genre] {{Drama}}, [Mood] {{Sad {i}}}')
                 for i in range(3)])
    with self.assertRaisesRegex(
        dataset_lib.DataError,
        "no 'asin' and no 'result' column.*suggests csv.key='item' "
        r"\(3 of its 3 rows.*csv.column='output'"):
      base.join_csv_column(path, self.ids)

  def test_only_the_text_column_differs(self):
    path = os.path.join(self.dir, 'half.csv')
    _write_rows(path, [('asin', 'Keywords'), ('r0', 'a'), ('r1', 'b')])
    with self.assertRaisesRegex(
        dataset_lib.DataError,
        r"\['asin', 'Keywords'\], which has no 'result' column.*"
        "suggests csv.key='asin'.*csv.column='Keywords'"):
      base.join_csv_column(path, self.ids)

  def test_no_header_line(self):
    path = os.path.join(self.dir, 'headless.csv')
    _write_rows(path, [('r0', '[Genre] {Drama}'), ('r1', '[Genre] {Horror}')])
    with self.assertRaisesRegex(
        dataset_lib.DataError,
        "first line holds the item id 'r0', so the file seems to have no "
        'header line: add one'):
      base.join_csv_column(path, self.ids)

  def test_no_column_holds_item_ids(self):
    path = os.path.join(self.dir, 'foreign.csv')
    _write_rows(path, [('Title', 'Text'), ('Heat', 'a heist'),
                       ('Alien', 'a ship')])
    with self.assertRaisesRegex(
        dataset_lib.DataError,
        "which has no 'asin' and no 'result' column.*No column of this file "
        "holds the dataset's item ids"):
      base.join_csv_column(path, self.ids)

  def test_empty_file(self):
    path = os.path.join(self.dir, 'empty.csv')
    open(path, 'w').close()
    with self.assertRaisesRegex(dataset_lib.DataError,
                                'empty file; expected a header line'):
      base.join_csv_column(path, self.ids)


class DescriptionsCsvTest(absltest.TestCase):
  """The same files through a keyword representation (no merging model)."""

  def setUp(self):
    super().setUp()
    self.dir = fixtures.new_tempdir(self)
    self.ds = extraction.make_dataset(self.dir, num_items=8,
                                        with_images=False)

  def _spec(self, path, **kw):
    return ml_collections.ConfigDict(dict(
        {'name': 'kw_recipes', 'extractor': 'descriptions',
         'method': 'keywords', 'merge': False, 'csv': {'path': path},
         'prompt': {'domain': 'recipes'}}, **kw))

  def test_recipe_file_with_repeated_headers(self):
    path = os.path.join(self.dir, 'recipes_keywords.csv')
    rows = []
    for i, rid in enumerate(self.ds.item_ids):
      rows += [('asin', 'result'), (str(rid), _recipe_answer(i))]
    # Item 7: the dish type written where [Dish Type] belongs, the cuisine
    # as its braced value (repaired by position).
    rows[-1] = (str(self.ds.item_ids[7]),
                '[Dessert] {French} [Primary Ingredient] {Apple} '
                '[Flavor Profile] {Sweet} [Meal Type] {Dessert}')
    _write_rows(path, rows)
    spec = self._spec(path)
    descriptions.check_spec(spec, self.ds)
    ex = descriptions.make_extractor(spec, self.ds)
    m = ex.manifest()
    self.assertEqual(m['slots'], list(prompts.slots_of('recipes')))
    self.assertEqual(m['source_counts']['repeated_headers'], 7)
    self.assertEqual(m['source_counts']['duplicate_rows'], 0)
    self.assertEqual(m['source_counts']['rows'], 8)
    self.assertEqual(m['parse_counts']['ok'], 8)
    self.assertEqual(m['parse_counts']['repaired'], 1)
    self.assertEqual(ex.failed, {})
    # Every item has one value per slot in the one-hot matrix.
    np.testing.assert_array_equal(ex.matrix.sum(1), 5.0)
    self.assertIn('dessert', m['vocabulary']['columns']['Dish Type'])

  def test_other_header_is_refused_before_any_work(self):
    path = os.path.join(self.dir, 'recipes_keywords.csv')
    _write_rows(path, [('Image Name', 'Keywords')] +
                [(str(r), _recipe_answer(i))
                 for i, r in enumerate(self.ds.item_ids)])
    with self.assertRaisesRegex(
        dataset_lib.DataError,
        f"^kw_recipes: {path}: the header line is.*csv.key='Image Name'"):
      descriptions.check_spec(self._spec(path), self.ds)
    fixed = self._spec(path, csv={'path': path, 'key': 'Image Name',
                                  'column': 'Keywords'})
    descriptions.check_spec(fixed, self.ds)
    self.assertEqual(
        descriptions.make_extractor(fixed, self.ds).parse_counts['ok'], 8)


class PublishedRecipeFormatTest(parameterized.TestCase):
  """Answers in the published recipe prompt's format, recipes domain."""

  @parameterized.named_parameters(
      ('as_prompted', '[Dish Type] {Lasagna} [Cuisine] {Italian} [Primary '
       'Ingredient] {Ground Beef} [Flavor Profile] {Rich} [Meal Type] '
       '{Dinner}'),
      ('trailing_period', '[Dish Type] {Lasagna} [Cuisine] {Italian} '
       '[Primary Ingredient] {Ground Beef} [Flavor Profile] {Rich} [Meal '
       'Type] {Dinner}.'),
      ('list_literal', "['[Dish Type] {Lasagna} [Cuisine] {Italian} "
       '[Primary Ingredient] {Ground Beef} [Flavor Profile] {Rich} '
       "[Meal Type] {Dinner}']"),
      ('commas', '[Dish Type] {Lasagna}, [Cuisine] {Italian}, [Primary '
       'Ingredient] {Ground Beef}, [Flavor Profile] {Rich}, [Meal Type] '
       '{Dinner}'),
  )
  def test_parses_fully(self, text):
    parser = slots.SlotParser(descriptions.slot_names(
        ml_collections.ConfigDict({'prompt': {'domain': 'recipes'}})))
    p = parser.parse(text)
    self.assertEqual(p.status, slots.OK, p)
    self.assertEqual(p.slots, {
        'Dish Type': 'Lasagna', 'Cuisine': 'Italian',
        'Primary Ingredient': 'Ground Beef', 'Flavor Profile': 'Rich',
        'Meal Type': 'Dinner'})


if __name__ == '__main__':
  absltest.main()
