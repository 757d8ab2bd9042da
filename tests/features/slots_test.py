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
from tests import conftest

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


class RealFilesTest(absltest.TestCase):
  """Parse rates over the full real files (needs ../shared/data)."""

  @pytest.mark.shared_data
  def test_parse_rates(self):
    lvlm = os.path.join(conftest.SHARED_DATA, 'movielens-lvlm', 'lvlm')
    if not os.path.isdir(lvlm):
      self.skipTest(f'real LVLM outputs not found at {lvlm} '
                    '(../shared/data is absent in a user clone)')
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
