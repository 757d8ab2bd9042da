"""Tests for the structured LVLM prompt families."""

import re

from absl.testing import absltest
from absl.testing import parameterized

from mmjax.features import prompts
from mmjax.features import slots

# The study's MovieLens FITB prompt, character for character as published
# (typographic apostrophe included).
MOVIES_FITB = (
    'Imagine you’re creating metadata for an image database of movie '
    'posters. Your task is to select five keywords that best represent the '
    'image content. Fill in the blanks: [Genre], [Audience], [Visual Format], '
    '[Mood], [Setting]. For example, your answer will be: [Genre] {Comedy}, '
    '[Audience] {Adults}, [Visual Format] {Live Action}, [Mood] {Witty}, '
    '[Setting] {Urban}.'
)
# The slots of the study's published FITB prompts, per domain.
PUBLISHED_SLOTS = {
    'movies': ('Genre', 'Audience', 'Visual Format', 'Mood', 'Setting'),
    'baby': ('Category', 'Age Group', 'Purpose', 'Material', 'Usage Context'),
    'pets': ('Category', 'Pet Type', 'Purpose', 'Material', 'Usage Context'),
    'clothing': ('Type', 'Color', 'Wear Location', 'Material', 'Style'),
    'recipes': ('Dish Type', 'Cuisine', 'Primary Ingredient',
                'Flavor Profile', 'Meal Type'),
}


class PromptsTest(parameterized.TestCase):

  def test_movies_fitb_is_the_study_prompt(self):
    p = prompts.get_prompt('movies', 'fitb')
    self.assertEqual(p.text, MOVIES_FITB)
    self.assertEqual(p.slots, PUBLISHED_SLOTS['movies'])

  def test_misaligned_is_the_study_prompt(self):
    self.assertEqual(
        prompts.get_prompt('movies', 'misaligned').text,
        'You are a computer scientist. Describe in fewer than 30 words how '
        'you can use this instrument for building a rocket.')

  @parameterized.parameters(*PUBLISHED_SLOTS)
  def test_study_domains_use_the_published_slots(self, domain):
    self.assertEqual(prompts.slots_of(domain), PUBLISHED_SLOTS[domain])
    self.assertIn('Pomo et al., CIKM 2025', prompts.source_of(domain))

  def test_every_domain_says_where_its_slots_come_from(self):
    self.assertEqual(set(prompts.DOMAINS) - set(PUBLISHED_SLOTS),
                     {'products'})
    self.assertIn("mmjax's own choice, not from a published study",
                  prompts.source_of('products'))
    with self.assertRaisesRegex(ValueError, 'unknown prompt domain'):
      prompts.source_of('cars')

  def test_recipes_prompt_is_the_published_one(self):
    text = prompts.get_prompt('recipes', 'fitb').text
    self.assertIn('metadata for a recipe recommendation system. Select five '
                  'keywords that best represent the dish shown', text)
    # The published example separates slots by spaces only.
    self.assertTrue(text.endswith(
        '[Dish Type] {Pasta} [Cuisine] {Italian} [Primary Ingredient] '
        '{Cheese} [Flavor Profile] {Savory} [Meal Type] {Dinner}.'))

  @parameterized.parameters(*prompts.DOMAINS)
  def test_fitb_text_names_the_slots_in_order(self, domain):
    text = prompts.get_prompt(domain, 'fitb').text
    blanks = re.search(r'Fill in the blanks: (.*?)\. For example', text)
    self.assertIsNotNone(blanks, text)
    self.assertEqual(tuple(re.findall(r'\[([^\]]+)\]', blanks.group(1))),
                     prompts.slots_of(domain))

  @parameterized.parameters(*prompts.DOMAINS)
  def test_example_answer_parses_fully_in_its_domain(self, domain):
    # The answer a prompt shows the model is the format its outputs follow.
    text = prompts.get_prompt(domain, 'fitb').text
    example = text.split('your answer will be: ', 1)[1]
    got = slots.SlotParser(prompts.slots_of(domain)).parse(example)
    self.assertEqual(got.status, slots.OK, (example, got))
    want = dict(re.findall(r'\[([^\]]+)\] \{([^}]+)\}', example))
    self.assertEqual(got.slots, want)

  @parameterized.product(domain=prompts.DOMAINS, kind=prompts.KINDS)
  def test_every_prompt_is_well_formed(self, domain, kind):
    p = prompts.get_prompt(domain, kind)
    self.assertEqual(len(p.sha256), 64)
    # Stable: the same text hashes the same on every call.
    self.assertEqual(p.sha256, prompts.get_prompt(domain, kind).sha256)
    if kind == 'fitb':
      self.assertLen(p.slots, 5)
      for s in p.slots:
        self.assertIn(f'[{s}] {{', p.text)
    else:
      self.assertEqual(p.slots, ())
    if kind == 'description':
      self.assertIn('30 words', p.text)
    m = p.manifest()
    self.assertEqual(m['prompt_sha256'], p.sha256)
    self.assertEqual(m['prompt'], p.text)

  def test_hashes_differ_across_prompts(self):
    hashes = {prompts.get_prompt(d, k).sha256
              for d in prompts.DOMAINS for k in ('fitb', 'description')}
    self.assertLen(hashes, 2 * len(prompts.DOMAINS))

  def test_unknown_domain_or_kind(self):
    with self.assertRaisesRegex(ValueError, 'unknown prompt domain'):
      prompts.get_prompt('cars', 'fitb')
    with self.assertRaisesRegex(ValueError, 'unknown prompt kind'):
      prompts.get_prompt('movies', 'haiku')


if __name__ == '__main__':
  absltest.main()
