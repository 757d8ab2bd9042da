"""Tests for the structured LVLM prompt families."""

from absl.testing import absltest
from absl.testing import parameterized

from mmjax.features import prompts

# The study's FITB prompt, word for word (../shared/data/README.md).
MOVIES_FITB = (
    "Imagine you're creating metadata for an image database of movie posters. "
    'Your task is to select five keywords that best represent the image '
    'content. Fill in the blanks: [Genre], [Audience], [Visual Format], '
    '[Mood], [Setting]. For example, your answer will be: [Genre] {Comedy}, '
    '[Audience] {Adults}, [Visual Format] {Live Action}, [Mood] {Witty}, '
    '[Setting] {Urban}.'
)


class PromptsTest(parameterized.TestCase):

  def test_movies_fitb_is_the_study_prompt(self):
    p = prompts.get_prompt('movies', 'fitb')
    self.assertEqual(p.text, MOVIES_FITB)
    self.assertEqual(
        p.slots, ('Genre', 'Audience', 'Visual Format', 'Mood', 'Setting'))

  def test_misaligned_is_the_study_prompt(self):
    self.assertEqual(
        prompts.get_prompt('movies', 'misaligned').text,
        'You are a computer scientist. Describe in fewer than 30 words how '
        'you can use this instrument for building a rocket.')

  def test_baby_slots(self):
    self.assertEqual(
        prompts.slots_of('baby'),
        ('Category', 'Age Group', 'Purpose', 'Material', 'Usage Context'))

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
