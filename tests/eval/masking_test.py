"""Test-time masking against hand-computed masks, top-K lists and Recall.

MMRec masks only training items at test (its test loader's additional
dataset is the training set), as the CIKM 2025 protocol does; the default
config must do the same, and `eval.mask_valid_at_test=True` must also mask
validation items.
"""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.eval import ranking
from mmjax.train import defaults

TRAIN, VALID, TEST = dataset_lib.TRAIN, dataset_lib.VALID, dataset_lib.TEST


def make_dataset():
  """2 users x 5 items.

  User 0: train {0}, valid {1}, test {2}.
  User 1: train {3}, valid {4}, test {1}.
  """
  return dataset_lib.Dataset(
      user=np.asarray([0, 0, 0, 1, 1, 1], np.int32),
      item=np.asarray([0, 1, 2, 3, 4, 1], np.int32),
      split=np.asarray([TRAIN, VALID, TEST, TRAIN, VALID, TEST], np.int8),
      user_ids=np.asarray(['u0', 'u1']),
      item_ids=np.asarray([f'i{i}' for i in range(5)]),
      rating=None,
  )


# Small integers: exact in float32, distinct within each row (no ties).
# Each user's training item scores highest, the validation item second.
SCORES = np.asarray([[5, 4, 3, 2, 1],
                     [1, 2, 3, 5, 4]], np.float32)


def table_score(params, ctx, users):
  del ctx
  return params[users]


def evaluate(cfg_eval):
  data = ranking.make_eval_data(
      make_dataset(), TEST, mask_valid=bool(cfg_eval.mask_valid_at_test),
      relevance_threshold=cfg_eval.relevance_threshold)
  result = ranking.Evaluator(data, cfg_eval, None, table_score)(
      SCORES, None, jax.random.key(0))
  return data, result


def masked_items(data, u):
  lo, hi = data.mask_indptr[u], data.mask_indptr[u + 1]
  return sorted(data.mask_indices[lo:hi].tolist())


class MaskingTest(parameterized.TestCase):

  def test_default_masks_training_items_only(self):
    cfg = defaults.base_config()
    self.assertFalse(cfg.eval.mask_valid_at_test)
    self.assertEqual(cfg.eval.convention, 'mmrec')
    cfg.eval.topk = (1, 2)
    data, result = evaluate(cfg.eval)
    self.assertEqual(masked_items(data, 0), [0])
    self.assertEqual(masked_items(data, 1), [3])
    # User 0 ranks 1 (4), 2 (3), 3 (2), 4 (1): its validation item 1 tops
    # the list. User 1 ranks 4 (4), 2 (3), 1 (2), 0 (1).
    np.testing.assert_array_equal(result.users, [0, 1])
    np.testing.assert_array_equal(result.top_items, [[1, 2], [4, 2]])
    # Recall@1: 0 and 0. Recall@2: user 0 finds 2 (1), user 1 misses 1 (0).
    np.testing.assert_allclose(result.per_user['recall@1'], [0.0, 0.0],
                               atol=1e-7)
    np.testing.assert_allclose(result.per_user['recall@2'], [1.0, 0.0],
                               atol=1e-7)
    np.testing.assert_allclose(result.summary['recall@1'], 0.0, atol=1e-7)
    np.testing.assert_allclose(result.summary['recall@2'], 0.5, atol=1e-7)

  def test_mask_valid_at_test_also_masks_validation_items(self):
    cfg = defaults.base_config()
    cfg.eval.topk = (1, 2)
    cfg.eval.mask_valid_at_test = True
    data, result = evaluate(cfg.eval)
    self.assertEqual(masked_items(data, 0), [0, 1])
    self.assertEqual(masked_items(data, 1), [3, 4])
    # User 0 ranks 2 (3), 3 (2), 4 (1); user 1 ranks 2 (3), 1 (2), 0 (1).
    np.testing.assert_array_equal(result.top_items, [[2, 3], [2, 1]])
    # Recall@1: 1 and 0. Recall@2: 1 and 1.
    np.testing.assert_allclose(result.per_user['recall@1'], [1.0, 0.0],
                               atol=1e-7)
    np.testing.assert_allclose(result.per_user['recall@2'], [1.0, 1.0],
                               atol=1e-7)
    np.testing.assert_allclose(result.summary['recall@1'], 0.5, atol=1e-7)
    np.testing.assert_allclose(result.summary['recall@2'], 1.0, atol=1e-7)

  @parameterized.parameters(True, False)
  def test_training_items_never_in_top_k(self, mask_valid):
    cfg = defaults.base_config()
    cfg.eval.topk = (3,)  # no more than the 3 items never masked
    cfg.eval.mask_valid_at_test = mask_valid
    _, result = evaluate(cfg.eval)
    for u, train_item, valid_item in ((0, 0, 1), (1, 3, 4)):
      top = result.top_items[u].tolist()
      self.assertNotIn(train_item, top)
      self.assertEqual(valid_item in top, not mask_valid, msg=f'user {u}')

  def test_config_and_eval_data_must_agree(self):
    cfg = defaults.base_config()
    cfg.eval.topk = (1, 2)
    data = ranking.make_eval_data(make_dataset(), TEST, mask_valid=True,
                                  relevance_threshold=None)
    with self.assertRaisesRegex(ValueError, 'mask_valid_at_test'):
      ranking.Evaluator(data, cfg.eval, None, table_score)


if __name__ == '__main__':
  absltest.main()
