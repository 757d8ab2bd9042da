"""Tests for the FITB slot parser: gold set, perturbations, failures."""

import collections
import csv
import glob
import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import pytest

from mmjax.features import prompts
from mmjax.features import slots
from tests.testing import fixtures

GOLD = os.path.join(os.path.dirname(__file__), 'gold')
MOVIE_SLOTS = prompts.slots_of('movies')
VALUES = {'Genre': 'Horror Comedy', 'Audience': 'Adults',
          'Visual Format': 'Live Action', 'Mood': 'Witty',
          'Setting': 'Haunted House'}


def _gold_rows():
  out = {}
  for path in sorted(glob.glob(os.path.join(GOLD, '*.jsonl'))):
    with open(path, encoding='utf-8') as f:
      out[os.path.basename(path)] = [json.loads(line) for line in f]
  return out


class GoldSetTest(absltest.TestCase):

  def test_gold_set_covers_every_keyword_file(self):
    rows = _gold_rows()
    keyword_files = [n for n in rows if n.endswith('_keywords.jsonl')]
    self.assertLen(keyword_files, 8)
    for name in keyword_files:
      self.assertGreaterEqual(len(rows[name]), 30, name)

  def test_exact_slot_accuracy_on_gold(self):
    parser = slots.SlotParser(MOVIE_SLOTS)
    total = correct = 0
    wrong = []
    for name, rows in _gold_rows().items():
      for r in rows:
        p = parser.parse(r['raw'])
        got = p.slots if p.parsed else None
        total += 1
        if got == r['expected']:
          correct += 1
        else:
          wrong.append((name, r['asin'], got, r['expected']))
    self.assertGreaterEqual(total, 240)
    self.assertGreaterEqual(correct / total, 0.98, wrong[:5])

  def test_refusals_are_unparsed_not_guessed(self):
    parser = slots.SlotParser(MOVIE_SLOTS)
    rows = _gold_rows()['refusals.jsonl']
    reasons = collections.Counter(parser.parse(r['raw']).reason for r in rows)
    self.assertNotIn(None, reasons)
    self.assertGreater(reasons['refusal'], 0)


class PerturbationTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.parser = slots.SlotParser(MOVIE_SLOTS)

  def _check(self, text, expected=None):
    p = self.parser.parse(text)
    self.assertEqual(p.status, slots.OK, (text, p))
    self.assertEqual(p.slots, expected or VALUES)

  def test_canonical(self):
    self._check(', '.join(f'[{k}] {{{v}}}' for k, v in VALUES.items()))

  @parameterized.parameters('\n', ', ', '; ')
  def test_key_value_lines(self, sep):
    self._check(sep.join(f'{k}: {v}' for k, v in VALUES.items()))

  def test_markdown_bullets_and_case(self):
    text = '\n'.join(f'- **{k.lower()}:** {v}' for k, v in VALUES.items())
    self._check(text)

  def test_numbered_and_underscored_keys(self):
    text = '\n'.join(f'{i + 1}. {k.replace(" ", "_")}: {v}'
                     for i, (k, v) in enumerate(VALUES.items()))
    self._check(text)

  def test_missing_braces(self):
    self._check(', '.join(f'[{k}] {v}' for k, v in VALUES.items()))

  def test_shuffled_order(self):
    keys = ['Mood', 'Setting', 'Genre', 'Visual Format', 'Audience']
    self._check(', '.join(f'[{k}] {{{VALUES[k]}}}' for k in keys))

  def test_extra_prose_before_and_after(self):
    body = ', '.join(f'[{k}] {{{v}}}' for k, v in VALUES.items())
    self._check(f'Sure! Here are the keywords for this poster:\n{body}.\n'
                'Let me know if you need anything else.')
    lines = '\n'.join(f'{k}: {v}' for k, v in VALUES.items())
    self._check(f'Here is the metadata.\n\n{lines}\n\nHope this helps!')

  def test_list_literal_wrapper_and_odd_closers(self):
    body = ', '.join(f'[{k}] {{{v}]' for k, v in VALUES.items())
    self._check(repr([body + '.']))

  def test_title_in_place_of_one_key(self):
    text = ('[Beetlejuice] {Horror Comedy}, ' + ', '.join(
        f'[{k}] {{{v}}}' for k, v in VALUES.items() if k != 'Genre'))
    self._check(text)

  def test_partial(self):
    p = self.parser.parse('[Genre] {Drama}, [Mood] {Tense}, [Setting] {Urban}')
    self.assertEqual(p.status, slots.PARTIAL)
    self.assertEqual(p.slots, {'Genre': 'Drama', 'Mood': 'Tense',
                               'Setting': 'Urban'})
    self.assertEqual(p.rejected, {})

  def test_rejected_values_are_reported(self):
    prose = ' '.join(f'w{i}' for i in range(slots.MAX_VALUE_WORDS + 1))
    p = self.parser.parse(
        f'[Genre] {{Drama}}, [Audience] {{{prose}}}, [Visual Format] '
        '{Film Film Film Film Film}, [Mood] {Tense}, [Setting] {Urban}')
    self.assertEqual(p.status, slots.PARTIAL)
    self.assertEqual(p.rejected, {'Audience': 'too long',
                                  'Visual Format': 'degenerate'})
    self.assertNotIn('Audience', p.slots)

  @parameterized.named_parameters(
      ('empty', '   ', 'empty'),
      ('refusal', "I'm sorry, but I cannot help with that request.",
       'refusal'),
      ('degenerate_text', 'the poster the poster the poster the poster '
       'the poster the poster', 'degenerate'),
      ('repeated_keys', '[Genre] {Drama}, ' * 6, 'degenerate'),
      ('degenerate_values', '[Genre] {Drama Drama Drama Drama Drama}, '
       '[Mood] {Sad sad sad sad sad}', 'degenerate'),
      ('conflict', '[Genre] {Drama}, [Genre] {Comedy}, [Audience] {Adults}, '
       '[Mood] {Sad}, [Setting] {Urban}, [Visual Format] {Film}', 'conflict'),
      ('bare_list', '[Titanic], [Adults], [Poster], [Romantic], [Ocean]',
       'too few slots'),
      ('prose', 'A movie poster showing a man in a hat.', 'too few slots'),
  )
  def test_unparsed(self, text, reason):
    p = self.parser.parse(text)
    self.assertEqual(p.status, slots.UNPARSED)
    self.assertEqual(p.reason, reason)
    self.assertEqual(p.slots, {})

  def test_parse_many_counts(self):
    _, counts = self.parser.parse_many(
        ['[Genre] {A}, [Audience] {B}, [Visual Format] {C}, [Mood] {D}, '
         '[Setting] {E}', 'sorry, I cannot', None])
    self.assertEqual(counts['ok'], 1)
    self.assertEqual(counts['unparsed'], 2)
    self.assertEqual(counts['unparsed:refusal'], 1)
    self.assertEqual(counts['unparsed:empty'], 1)

  def test_other_domain_slots(self):
    parser = slots.SlotParser(prompts.slots_of('baby'))
    p = parser.parse('Category: Stroller\nAge Group: Infants\nPurpose: '
                     'Transport\nMaterial: Aluminium\nUsage Context: Outdoor')
    self.assertEqual(p.status, slots.OK)
    self.assertEqual(p.slots['Age Group'], 'Infants')


BABY = prompts.slots_of('baby')
RECIPES = prompts.slots_of('recipes')
TOYS = {'Category': 'Toys', 'Age Group': 'Toddler', 'Purpose': 'Play',
        'Material': 'Plastic', 'Usage Context': 'Home'}


class UnseenFormatsTest(parameterized.TestCase):
  """Answer forms seen in the study's published outputs (rows written here)."""

  def _check(self, domain_slots, text, expected, repaired=()):
    p = slots.SlotParser(domain_slots).parse(text)
    self.assertEqual(p.status, slots.OK, (text, p))
    self.assertEqual(p.slots, expected, text)
    self.assertEqual(p.repaired, repaired, text)

  @parameterized.named_parameters(
      ('single_quotes', "['Category'] {Toys}, ['Age Group'] {Toddler}, "
       "['Purpose'] {Play}, ['Material'] {Plastic}, ['Usage Context'] {Home}"),
      ('double_quotes_period', '["Category"] {Toys}, ["Age Group"] '
       '{Toddler}, ["Purpose"] {Play}, ["Material"] {Plastic}, '
       '["Usage Context"] {Home}.'),
      ('quoted_with_colons', "['Category']: Toys\n['Age Group']: Toddler\n"
       "['Purpose']: Play\n['Material']: Plastic\n['Usage Context']: Home"),
      ('quoted_and_plain_mixed', "['Category'] {Toys} [Age Group] {Toddler} "
       "['Purpose'] {Play} [Material] {Plastic} ['usage context'] {Home}"),
  )
  def test_quoted_keys(self, text):
    self._check(BABY, text, TOYS)

  @parameterized.named_parameters(
      ('spaces', 'Dish Type {Soup} Cuisine {Thai} Primary Ingredient '
       '{Coconut Milk} Flavor Profile {Spicy} Meal Type {Dinner}'),
      ('commas_period', 'Dish Type {Soup}, Cuisine {Thai}, Primary '
       'Ingredient {Coconut Milk}, Flavor Profile {Spicy}, Meal Type '
       '{Dinner}.'),
      ('lines', 'Dish Type {Soup}\nCuisine {Thai}\nPrimary Ingredient '
       '{Coconut Milk}\nFlavor Profile {Spicy}\nMeal Type {Dinner}'),
      ('bare_first_key', 'Dish Type {Soup} [Cuisine] {Thai} [Primary '
       'Ingredient] {Coconut Milk} [Flavor Profile] {Spicy} [Meal Type] '
       '{Dinner}.'),
      ('bare_keys_inside', '[Dish Type] {Soup}, Cuisine {Thai}, [Primary '
       'Ingredient] {Coconut Milk}, Flavor Profile {Spicy}, [Meal Type] '
       '{Dinner}'),
  )
  def test_bare_keys(self, text):
    self._check(RECIPES, text, {
        'Dish Type': 'Soup', 'Cuisine': 'Thai',
        'Primary Ingredient': 'Coconut Milk', 'Flavor Profile': 'Spicy',
        'Meal Type': 'Dinner'})

  @parameterized.named_parameters(
      ('colon_keys', 'Category: [Toys], Age Group: [Toddler], Purpose: '
       '[Play], Material: [Plastic], Usage Context: [Home]'),
      ('bracket_keys', '[Category] [Toys] [Age Group] [Toddler] [Purpose] '
       '[Play] [Material] [Plastic] [Usage Context] [Home]'),
  )
  def test_bracketed_value_right_after_its_key(self, text):
    self._check(BABY, text, TOYS)

  @parameterized.named_parameters(
      ('two_at_start', '[Dessert] {French} [Primary Ingredient] {Apple} '
       '[Flavor Profile] {Sweet} [Meal Type] {Dessert}',
       {'Dish Type': 'Dessert', 'Cuisine': 'French'}),
      ('two_in_middle', '[Dish Type] {Curry}, [Thai] {Chicken}, [Flavor '
       'Profile] {Spicy}, [Meal Type] {Dinner}',
       {'Cuisine': 'Thai', 'Primary Ingredient': 'Chicken'}),
      ('two_titles', '[Ratatouille] {Stew} [Cuisine] {French} [Vegetables] '
       '{Eggplant} [Flavor Profile] {Herby} [Meal Type] {Dinner}',
       {'Dish Type': 'Stew', 'Primary Ingredient': 'Eggplant'}),
      ('one_title_lines', '[Beef Wellington] {Roast}\nCuisine: British\n'
       'Primary Ingredient: Beef\nFlavor Profile: Savory\nMeal Type: Dinner',
       {'Dish Type': 'Roast'}),
  )
  def test_slot_names_replaced_by_values(self, text, filled):
    p = slots.SlotParser(RECIPES).parse(text)
    self.assertEqual(p.status, slots.OK, (text, p))
    self.assertEqual(p.repaired, tuple(x for x in RECIPES if x in filled))
    self.assertEqual({x: p.slots[x] for x in filled}, filled)
    self.assertIsNone(p.unrepaired)

  def test_two_replaced_names_in_baby(self):
    self._check(
        BABY, '[Fitted Sheet] {Infant}, [Purpose] {Sleeping}, [Material] '
        '{Cotton}, [Usage Context] {Crib}',
        {'Category': 'Fitted Sheet', 'Age Group': 'Infant',
         'Purpose': 'Sleeping', 'Material': 'Cotton', 'Usage Context': 'Crib'},
        repaired=('Category', 'Age Group'))

  @parameterized.named_parameters(
      ('lines', 'Category: Toys\nAge Group: Toddler\nPurpose: Play\n'
       'Material: Plastic\nUsage Context: Home\n\n(Category: Toys\nAge '
       'Group: Toddler\nPurpose: Play\nMaterial: Plastic\nUsage Context: '
       'Home)'),
      ('one_line', 'Category: Toys, Age Group: Toddler, Purpose: Play, '
       'Material: Plastic, Usage Context: Home (Category: Toys, Age Group: '
       'Toddler, Purpose: Play, Material: Plastic, Usage Context: Home).'),
      ('bullets', '- Category: Toys\n- Age Group: Toddler\n- Purpose: Play\n'
       '- Material: Plastic\n- Usage Context: Home\n\n(- Category: Toys\n- '
       'Age Group: Toddler\n- Purpose: Play\n- Material: Plastic\n- Usage '
       'Context: Home)'),
      ('braced', '[Category] {Toys}, [Age Group] {Toddler}, [Purpose] {Play}, '
       '[Material] {Plastic}, [Usage Context] {Home}\n([Category] {Toys}, '
       '[Age Group] {Toddler}, [Purpose] {Play}, [Material] {Plastic}, '
       '[Usage Context] {Home})'),
  )
  def test_answer_repeated_in_parentheses(self, text):
    self._check(BABY, text, TOYS)

  def test_parentheses_inside_a_value_are_kept(self):
    p = slots.SlotParser(BABY).parse(
        'Category: Bath Toy (Duck)\nAge Group: Infant (0-12 months)\n'
        'Purpose: Play\nMaterial: Rubber\nUsage Context: Bathroom (Tub)')
    self.assertEqual(p.status, slots.OK)
    self.assertEqual(p.slots['Category'], 'Bath Toy (Duck)')
    self.assertEqual(p.slots['Age Group'], 'Infant (0-12 months)')
    self.assertEqual(p.slots['Usage Context'], 'Bathroom (Tub)')

  # What is still refused, and the reason it is refused for.

  def test_repeat_with_another_value_is_a_conflict(self):
    p = slots.SlotParser(BABY).parse(
        'Category: Toys\nAge Group: Toddler\nPurpose: Play\nMaterial: '
        'Plastic\nUsage Context: Home\n\n(Category: Toys\nAge Group: Infant\n'
        'Purpose: Play\nMaterial: Plastic\nUsage Context: Home)')
    self.assertEqual((p.status, p.reason), (slots.UNPARSED, 'conflict'))
    self.assertEqual(p.slots, {})

  @parameterized.named_parameters(
      # The unknown token stands after the keyed slots, not where
      # [Visual Format] belongs.
      ('not_at_position', MOVIE_SLOTS, 3,
       '[Genre] {Drama}, [Audience] {Adults}, [Mood] {Sad}, [Setting] '
       '{Urban}, [Director] {Nolan}', 'not at the missing positions',
       {'Genre', 'Audience', 'Mood', 'Setting'}),
      # An extra keyless token: six units for five slots.
      ('extra_token', BABY, 3,
       '[Crib] {Infant}, [Purpose] {Sleeping}, [Material] {Wood}, [Usage '
       'Context] {Nursery}, [Style] {Modern}', 'not at the missing positions',
       {'Purpose', 'Material', 'Usage Context'}),
      # Title and genre in brackets without braces: which is which?
      ('unbraced', MOVIE_SLOTS, 3,
       '[Jaws], [Thriller], [Visual Format] {Live Action}, [Mood] '
       '{Suspenseful}, [Setting] {Ocean}', 'unbraced token',
       {'Visual Format', 'Mood', 'Setting'}),
      # Two readings fit: (Dessert | French, Tart) or (Dessert, French | Tart).
      ('ambiguous', RECIPES, 2,
       '[Dessert] {French} [Tart] {Apple} [Flavor Profile] {Sweet} '
       '[Meal Type] {Dessert}', 'ambiguous',
       {'Flavor Profile', 'Meal Type'}),
  )
  def test_position_repair_refused(self, names, min_slots, text, why, kept):
    p = slots.SlotParser(names, min_slots).parse(text)
    self.assertEqual(p.status, slots.PARTIAL, (text, p))
    self.assertEqual(p.unrepaired, why)
    self.assertEqual(set(p.slots), kept)
    self.assertEqual(p.repaired, ())

  def test_repair_needs_min_slots_keyed(self):
    p = slots.SlotParser(RECIPES).parse(
        '[Hot Dog] {American} [Sausage] {Smoky} [Meal Type] {Snack}')
    self.assertEqual((p.status, p.reason), (slots.UNPARSED, 'too few slots'))
    self.assertEqual(p.unrepaired, 'too few keyed slots')

  @parameterized.named_parameters(
      # A phrase without brackets before a braced value: the phrase or the
      # braced word may be the dish type; neither is guessed.
      ('unbracketed_phrase', 'Trifle {Dessert} [Cuisine] {British} [Primary '
       'Ingredient] {Custard} [Flavor Profile] {Sweet} [Meal Type] '
       '{Dessert}', {'Cuisine', 'Primary Ingredient', 'Flavor Profile',
                     'Meal Type'}),
      # A slot name inside braces is a value, not a key.
      ('key_in_braces', 'Mashed Potatoes {Dish Type} {Side Dish} [Primary '
       'Ingredient] {Potatoes} [Flavor Profile] {Buttery} [Meal Type] '
       '{Dinner}', {'Primary Ingredient', 'Flavor Profile', 'Meal Type'}),
  )
  def test_keyless_first_value_stays_missing(self, text, kept):
    p = slots.SlotParser(RECIPES).parse(text)
    self.assertEqual(p.status, slots.PARTIAL, (text, p))
    self.assertEqual(set(p.slots), kept)
    self.assertIsNone(p.unrepaired)

  @parameterized.named_parameters(
      ('braced_list', 'Lemon Tart {Dessert} {French} {Lemon} {Tangy} '
       '{Dessert}'),
      ('comma_list', 'Lemon Tart, French, Lemon, Tangy, Dessert'),
      ('bracket_list', '[Lemon Tart] [French] [Lemon] [Tangy] [Dessert]'),
  )
  def test_keyless_lists_are_unparsed(self, text):
    p = slots.SlotParser(RECIPES).parse(text)
    self.assertEqual((p.status, p.reason), (slots.UNPARSED, 'too few slots'))

  def test_parse_many_counts_repairs(self):
    _, counts = slots.SlotParser(RECIPES).parse_many([
        '[Dessert] {French} [Primary Ingredient] {Apple} [Flavor Profile] '
        '{Sweet} [Meal Type] {Dessert}',
        '[Dish Type] {Soup}, [Cuisine] {Thai}, [Flavor Profile] {Spicy}, '
        '[Meal Type] {Dinner}, [Chef] {Somchai}'])
    self.assertEqual(counts['repaired'], 1)
    self.assertEqual(counts['unrepaired:not at the missing positions'], 1)
    self.assertEqual((counts['ok'], counts['partial']), (1, 1))


class RealFilesTest(absltest.TestCase):
  """Parse rates over the full real files (needs $MMJAX_SHARED_DATA)."""

  @pytest.mark.shared_data
  def test_parse_rates(self):
    lvlm = os.path.join(fixtures.SHARED_DATA, 'movielens-lvlm', 'lvlm')
    if not os.path.isdir(lvlm):
      self.skipTest(f'real LVLM outputs not found at {lvlm} '
                    '($MMJAX_SHARED_DATA is absent in a user clone)')
    parser = slots.SlotParser(MOVIE_SLOTS)
    rates = {}
    for path in sorted(glob.glob(os.path.join(lvlm, '*.csv'))):
      with open(path, newline='', encoding='utf-8') as f:
        texts = [r['result'] for r in csv.DictReader(f)]
      results, _ = parser.parse_many(texts)
      rates[os.path.basename(path)] = sum(
          p.status == slots.OK for p in results) / len(results)
    print('full-parse rate per file:', json.dumps(rates, indent=1))
    for name, rate in rates.items():
      if name.endswith('_keywords.csv'):
        self.assertGreaterEqual(rate, 0.99, name)
      else:
        # Descriptions and the misaligned control have no slots.
        self.assertLess(rate, 0.01, name)


if __name__ == '__main__':
  absltest.main()
