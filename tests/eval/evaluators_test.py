"""The evaluator kinds of `eval.evaluators` against a numpy ranking.

A hand-built dataset of 4 users x 8 items, where items 6 and 7 have no
training interaction (cold), and a score table of small distinct integers
per user (exact in float32, no ties), so every ranking is unambiguous.
"""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.eval import evaluators
from mmjax.eval import ranking
from mmjax.train import defaults
from mmjax.train import validate

TRAIN, VALID, TEST = dataset_lib.TRAIN, dataset_lib.VALID, dataset_lib.TEST

# user -> (train, valid, test) items. Cold items: 6 and 7.
HISTORY = {
    0: ([0, 1], [2], [6, 3]),
    1: ([2, 3], [7], [4]),        # No cold test item.
    2: ([0, 4, 5], [1], [7]),
    3: ([1], [6], [5, 7, 0]),     # Its validation item 6 is cold.
}
SCORES = np.asarray([[9, 8, 7, 3, 5, 2, 6, 1],
                     [1, 2, 3, 4, 8, 7, 6, 5],
                     [4, 3, 8, 2, 1, 7, 5, 6],
                     [2, 9, 1, 6, 3, 5, 8, 7]], np.float32)
COLD = np.asarray([False] * 6 + [True] * 2)
TOPK = (1, 3)


def make_dataset():
  user, item, split = [], [], []
  for u, parts in HISTORY.items():
    for label, items in zip((TRAIN, VALID, TEST), parts):
      user += [u] * len(items)
      item += items
      split += [label] * len(items)
  return dataset_lib.Dataset(
      user=np.asarray(user, np.int32), item=np.asarray(item, np.int32),
      split=np.asarray(split, np.int8),
      user_ids=np.asarray([f'u{u}' for u in HISTORY]),
      item_ids=np.asarray([f'i{i}' for i in range(8)]), rating=None)


def table_score(params, ctx, users):
  del ctx
  return params[users]


def eval_config(**changes):
  cfg = defaults.base_config().eval
  cfg.topk = TOPK
  cfg.select_metric = 'recall@3'
  cfg.batch_users = 2  # Two blocks of users.
  for key, value in changes.items():
    cfg[key] = value
  return cfg


def build(section, cfg_eval=None):
  ds = make_dataset()
  cfg_eval = cfg_eval or eval_config()

  def data_of(split, mask_valid):
    return ranking.make_eval_data(ds, evaluators.SPLITS[split],
                                  mask_valid=mask_valid,
                                  relevance_threshold=None)

  built = evaluators.build(evaluators.specs(section), data_of, cfg_eval,
                           None, table_score)
  test = ranking.Evaluator(data_of('test', False), cfg_eval, None,
                           table_score)
  return built, test


def reference(candidates, relevant, scores, k):
  """(recall@k, ndcg@k) of ranking `candidates` (bool [I]) by `scores`."""
  order = [i for i in np.argsort(-scores, kind='stable') if candidates[i]]
  top = order[:k]
  hits = [1.0 if i in relevant else 0.0 for i in top]
  dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
  idcg = sum(1 / np.log2(r + 2) for r in range(min(len(relevant), k)))
  return sum(hits) / len(relevant), dcg / idcg


def masked(u, mask_valid):
  train, valid, _ = HISTORY[u]
  out = np.zeros(8, bool)
  out[train] = True
  if mask_valid:
    out[valid] = True
  return out


class EvaluatorsTest(parameterized.TestCase):

  @parameterized.parameters(False, True)
  def test_cold_items_only_against_numpy(self, mask_valid):
    section = {'cold': {'kind': 'cold_items_only', 'split': 'test',
                        'mask_valid_at_test': mask_valid}}
    built, _ = build(section)
    result = built['cold'](SCORES, None, jax.random.key(0))
    # Users with a held-out cold item: 0 (item 6), 2 (7), 3 (7); not 1.
    np.testing.assert_array_equal(result.users, [0, 2, 3])
    warm_above, random = [], {k: [] for k in TOPK}
    for row, u in enumerate([0, 2, 3]):
      cold_test = [i for i in HISTORY[u][2] if COLD[i]]
      candidates = COLD & ~masked(u, mask_valid)
      for k in TOPK:
        recall, ndcg = reference(candidates, cold_test, SCORES[u], k)
        self.assertAlmostEqual(result.per_user[f'recall@{k}'][row], recall,
                               places=6)
        self.assertAlmostEqual(result.per_user[f'ndcg@{k}'][row], ndcg,
                               places=6)
        n = candidates.sum()
        random[k].append(min(k, n) / n)
      best_cold = SCORES[u][candidates].max()
      warm_above.append(int(((SCORES[u] > best_cold) & ~COLD
                             & ~masked(u, mask_valid)).sum()))
    np.testing.assert_array_equal(result.per_user['warm_above'], warm_above)
    self.assertEqual(result.summary['warm_above_median'],
                     float(np.median(warm_above)))
    for k in TOPK:
      self.assertAlmostEqual(result.summary[f'random_recall@{k}'],
                             np.mean(random[k]), places=12)
      self.assertAlmostEqual(result.summary[f'recall@{k}'],
                             np.mean(result.per_user[f'recall@{k}']),
                             places=12)
    self.assertEqual(result.summary['num_users'], 3.0)
    self.assertNotIn('recall@3/cold_items', result.summary)

  def test_cold_items_only_by_hand(self):
    built, _ = build({'cold': {'kind': 'cold_items_only'}})
    result = built['cold'](SCORES, None, jax.random.key(0))
    # User 0: cold candidates 6 (score 6) and 7 (1); item 6 is relevant and
    # first. Warm item 2 (7) scores above it; 0 and 1 are masked.
    # User 2: 7 (6) above 6 (5): a hit at rank 1; warm 2 (8) and 5 (7,
    # masked) -> 1 above. User 3: 6 (8) above 7 (7): a miss at 1, a hit at
    # rank 2; warm 1 (9) is masked -> 0 above.
    np.testing.assert_allclose(result.per_user['recall@1'], [1, 1, 0])
    np.testing.assert_allclose(result.per_user['ndcg@3'],
                               [1, 1, 1 / np.log2(3)], rtol=1e-6)
    np.testing.assert_array_equal(result.per_user['warm_above'], [1, 1, 0])
    # Every user has 2 cold candidates: random Recall@1 = 1/2, @3 = 1.
    self.assertEqual(result.summary['random_recall@1'], 0.5)
    self.assertEqual(result.summary['random_recall@3'], 1.0)

  def test_cold_items_only_refuses_a_split_without_cold_items(self):
    ds = make_dataset()
    ds.split[(ds.item == 6) | (ds.item == 7)] = TRAIN
    spec = evaluators.specs({'c': {'kind': 'cold_items_only'}})

    def data_of(split, mask_valid):
      return ranking.make_eval_data(ds, evaluators.SPLITS[split],
                                    mask_valid=mask_valid,
                                    relevance_threshold=None)

    with self.assertRaisesRegex(ValueError, 'no cold item'):
      evaluators.build(spec, data_of, eval_config(), None, table_score)

  def test_user_groups_regroup_the_split(self):
    section = {'groups': {'kind': 'user_groups', 'split': 'test',
                          'groups': (0, 2, float('inf'))}}
    built, test = build(section)
    key = jax.random.key(0)
    full = test(SCORES, None, key)
    result = built['groups'](SCORES, None, key, full)
    # Training counts: users 0 and 1 have 2, user 2 has 3, user 3 has 1.
    recall3 = {}
    for u in HISTORY:
      recall3[u], _ = reference(~masked(u, False), HISTORY[u][2], SCORES[u],
                                3)
    np.testing.assert_allclose(full.per_user['recall@3'],
                               [recall3[u] for u in range(4)], atol=1e-7)
    self.assertEqual(result.summary['num_users/group=0-2'], 1.0)
    self.assertEqual(result.summary['num_users/group=2-inf'], 3.0)
    self.assertAlmostEqual(result.summary['recall@3/group=0-2'], recall3[3])
    self.assertAlmostEqual(result.summary['recall@3/group=2-inf'],
                           np.mean([recall3[u] for u in (0, 1, 2)]))
    # The same numbers as the split evaluator's own eval.user_groups.
    grouped = ranking.Evaluator(
        test.data, eval_config(user_groups=(0, 2, float('inf'))), None,
        table_score)(SCORES, None, key)
    for name, value in result.summary.items():
      self.assertEqual(grouped.summary[name], value, name)

  def test_ranking_kind_equals_the_split_evaluator(self):
    section = {'again': {'kind': 'ranking', 'split': 'test'},
               'masked': {'kind': 'ranking', 'split': 'test',
                          'mask_valid_at_test': True, 'topk': (3,)}}
    built, test = build(section)
    key = jax.random.key(3)
    self.assertEqual(built['again'](SCORES, None, key).summary,
                     test(SCORES, None, key).summary)
    result = built['masked'](SCORES, None, key)
    self.assertNotIn('recall@1', result.summary)
    for row, u in enumerate(result.users):
      recall, ndcg = reference(~masked(u, True), HISTORY[u][2], SCORES[u], 3)
      self.assertAlmostEqual(result.per_user['recall@3'][row], recall,
                             places=6)
      self.assertAlmostEqual(result.per_user['ndcg@3'][row], ndcg, places=6)

  @parameterized.parameters(
      ({'val': {'kind': 'ranking'}}, 'name'),
      ({'x': {'kind': 'nope'}}, 'kind'),
      ({'x': {'kind': 'ranking', 'groups': (0, 1)}}, 'unknown keys'),
      ({'x': {'kind': 'ranking', 'split': 'train'}}, 'split'),
      ({'x': {'kind': 'ranking', 'every': 'always'}}, 'every'),
  )
  def test_bad_specs_are_refused(self, section, words):
    with self.assertRaisesRegex(ValueError, words):
      evaluators.specs(section)
    cfg = defaults.base_config()
    cfg.eval.evaluators = ml_collections.ConfigDict(section)
    with self.assertRaises(validate.ConfigError):
      validate.check(cfg)

  def test_specs_are_sorted_with_defaults(self):
    got = evaluators.specs({'b': {'kind': 'user_groups', 'groups': (0, 5)},
                            'a': {'kind': 'cold_items_only',
                                  'every': 'best'}})
    self.assertEqual(list(got), ['a', 'b'])
    self.assertEqual((got['a'].split, got['a'].every), ('test', 'best'))
    self.assertEqual(got['b'].options, {'groups': (0, 5)})
    self.assertEqual(evaluators.specs(None), {})

  def test_user_groups_without_groups_is_refused(self):
    cfg = defaults.base_config()
    cfg.eval.evaluators = ml_collections.ConfigDict(
        {'g': {'kind': 'user_groups'}})
    with self.assertRaisesRegex(validate.ConfigError, 'groups'):
      validate.check(cfg)
    cfg.eval.user_groups = (0, 6, float('inf'))
    validate.check(cfg)

  def test_validate_copies_agree(self):
    self.assertEqual(validate.EVALUATOR_KINDS, evaluators.KINDS)
    self.assertEqual(validate.EVALUATOR_EVERY, evaluators.EVERY)
    self.assertEqual(validate.EVALUATOR_COMMON, evaluators.COMMON)
    self.assertEqual(validate.EVALUATOR_OPTIONS, evaluators.OPTIONS)
    self.assertEqual(validate.EVALUATOR_RESERVED, evaluators.RESERVED)


if __name__ == '__main__':
  absltest.main()
