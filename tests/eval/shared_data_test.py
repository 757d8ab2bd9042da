"""Evaluation on real ratings (MovieLens latest-small from $MMJAX_SHARED_DATA)."""

import os

from absl.testing import absltest
import jax
import ml_collections
import numpy as np
import pytest

from mmjax.data import dataset as dataset_lib
from mmjax.eval import ranking
from tests.testing import fixtures

RATINGS = os.path.join(fixtures.SHARED_DATA, 'movielens-lvlm', 'ratings.tsv')


def load_movielens(seed=0):
  """Ratings with a seeded random 80/10/10 split and contiguous ids."""
  raw = np.loadtxt(RATINGS, delimiter='\t', skiprows=1)
  _, user = np.unique(raw[:, 0].astype(np.int64), return_inverse=True)
  item_raw, item = np.unique(raw[:, 1].astype(np.int64), return_inverse=True)
  rng = np.random.default_rng([seed])
  split = rng.choice(3, len(raw), p=[0.8, 0.1, 0.1]).astype(np.int8)
  return dataset_lib.Dataset(
      user=user.astype(np.int32), item=item.astype(np.int32), split=split,
      user_ids=np.arange(user.max() + 1).astype(str),
      item_ids=item_raw.astype(str), rating=raw[:, 2].astype(np.float32))


def table_score(params, ctx, users):
  """Scores read from a dense [U, I] table."""
  del ctx
  return params[users]


@pytest.mark.shared_data
class MovieLensTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    if not os.path.isdir(fixtures.SHARED_DATA):
      self.skipTest('needs $MMJAX_SHARED_DATA (MovieLens ratings), absent here')

  def test_mostpop_beats_random_with_graded_gains(self):
    ds = load_movielens()
    data = ranking.make_eval_data(ds, dataset_lib.TEST, mask_valid=True,
                                  relevance_threshold=4.0)
    cfg = ml_collections.ConfigDict(dict(
        topk=(20,), batch_users=128, gain='graded', convention='elliot',
        relevance_threshold=4.0, mask_valid_at_test=True,
        user_groups=(0, 20, 100, float('inf'))))
    ev = ranking.Evaluator(data, cfg, None, table_score)
    key = jax.random.key(0)
    # MostPop (every user gets the item popularity: many ties) and random
    # scores, as [U, I] tables of the same shape: one compile.
    shape = (ds.num_users, ds.num_items)
    pop = np.broadcast_to(data.item_pop.astype(np.float32), shape)
    mostpop = ev(jax.device_put(pop), None, key).summary
    rng = np.random.default_rng(1)
    noise = ev(jax.device_put(rng.random(shape, np.float32)), None,
               key).summary
    self.assertEqual(ev.block_fn._cache_size(), 1)
    self.assertGreater(mostpop['num_users'], 500)
    # Random scores: Recall@20 about 20 / 9066 items.
    self.assertLess(noise['recall@20'], 0.02)
    self.assertGreater(mostpop['recall@20'], 5 * noise['recall@20'])
    self.assertGreater(mostpop['ndcg@20'], noise['ndcg@20'])
    # MostPop recommends popular, short-head items: high ARP, low coverage.
    self.assertGreater(mostpop['arp@20'], 10 * noise['arp@20'])
    self.assertLess(mostpop['aplt@20'], noise['aplt@20'])
    self.assertLess(mostpop['coverage@20'], noise['coverage@20'])
    self.assertGreater(mostpop['gini@20'], noise['gini@20'])


if __name__ == '__main__':
  absltest.main()
