"""Full-ranking Evaluator: numpy reference, masks, ties, sharding, compiles."""

import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.eval import ranking
from mmjax.graph import kernel
from tests.testing import references

NUM_USERS, NUM_ITEMS = 37, 30


def make_dataset(seed=0, n=500, num_users=NUM_USERS, num_items=NUM_ITEMS,
                 cold=3):
  """Random interactions; the last `cold` items occur only in valid/test."""
  rng = np.random.default_rng([seed])
  user = rng.integers(0, num_users, n).astype(np.int32)
  item = rng.integers(0, num_items, n).astype(np.int32)
  split = rng.choice(3, n, p=[0.6, 0.2, 0.2]).astype(np.int8)
  split[(item >= num_items - cold) & (split == 0)] = dataset_lib.TEST
  return dataset_lib.Dataset(
      user=user, item=item, split=split,
      user_ids=np.asarray([f'u{i}' for i in range(num_users)]),
      item_ids=np.asarray([f'i{i}' for i in range(num_items)]),
      rating=rng.integers(1, 6, n).astype(np.float32),
  )


def make_cfg(**kw):
  cfg = dict(topk=(1, 5, 10), batch_users=8, gain='binary',
             convention='mmrec', relevance_threshold=None,
             mask_valid_at_test=True, user_groups=(0, 8, 12, float('inf')))
  cfg.update(kw)
  return ml_collections.ConfigDict(cfg)


def table_score(params, ctx, users):
  """Scores read from a dense [U, I] table (the test's 'model')."""
  del ctx
  return params[users]


def make_mesh():
  return jax.make_mesh((8,), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,))


def reference(ds, split, table, cfg, mask_valid, item_filter=None):
  """Per-user metrics from sorted numpy scores (distinct scores: no ties).

  `item_filter` (bool [I]) restricts the relevant items, e.g. to cold items.
  """
  masked = ds.split == dataset_lib.TRAIN
  if split == dataset_lib.TEST and mask_valid:
    masked |= ds.split == dataset_lib.VALID
  t = cfg.relevance_threshold
  out, users = {}, []
  for u in range(ds.num_users):
    sel = (ds.user == u) & (ds.split == split)
    if t is not None:
      sel &= ds.rating >= t
    if item_filter is not None:
      sel &= item_filter[ds.item]
    if not sel.any():
      continue
    rel = {}
    for i, r in zip(ds.item[sel], ds.rating[sel]):
      g = 2.0 ** (r - t + 1) - 1 if cfg.gain == 'graded' else 1.0
      rel[int(i)] = max(rel.get(int(i), 0.0), g)
    s = table[u].astype(np.float64).copy()
    s[ds.item[masked & (ds.user == u)]] = -np.inf
    ranked = np.argsort(-s, kind='stable')
    users.append(u)
    for k in cfg.topk:
      for name, v in references.ranking_metrics(
          ranked, rel, k, cfg.convention).items():
        out.setdefault(name, []).append(v)
  return np.asarray(users), {k: np.asarray(v) for k, v in out.items()}


def distinct_table(seed):
  rng = np.random.default_rng([seed, 1])
  rows = [rng.permutation(NUM_ITEMS) for _ in range(NUM_USERS)]
  return np.stack(rows).astype(np.float32)


class ReferenceTest(parameterized.TestCase):

  @parameterized.parameters(
      (dataset_lib.VALID, 'mmrec', 'binary', None, True),
      (dataset_lib.TEST, 'mmrec', 'binary', None, True),
      (dataset_lib.TEST, 'elliot', 'binary', None, False),
      (dataset_lib.TEST, 'elliot', 'graded', 3.0, False),
  )
  def test_matches_numpy(self, split, convention, gain, t, mask_valid):
    ds = make_dataset()
    cfg = make_cfg(convention=convention, gain=gain, relevance_threshold=t,
                   mask_valid_at_test=mask_valid)
    data = ranking.make_eval_data(ds, split, mask_valid=mask_valid,
                                  relevance_threshold=t)
    table = distinct_table(0)
    result = ranking.Evaluator(data, cfg, None, table_score)(
        table, None, jax.random.key(0))
    users, want = reference(ds, split, table, cfg, mask_valid)
    np.testing.assert_array_equal(result.users, users)
    for name, v in want.items():
      np.testing.assert_allclose(result.per_user[name], v, rtol=1e-5,
                                 atol=1e-7, err_msg=name)
      self.assertAlmostEqual(result.summary[name], v.mean(), places=6)


class TopKTest(parameterized.TestCase):

  def _order(self, n_items, n_users, seed=3):
    perm, rank = ranking._item_order(jax.random.key(seed), n_items)
    np.testing.assert_array_equal(np.asarray(perm)[np.asarray(rank)],
                                  np.arange(n_items))
    shift = np.random.default_rng(seed).integers(0, n_items, n_users)
    return perm, rank, jnp.asarray(shift, jnp.int32)

  def test_exact_only_reorders_ties(self):
    rng = np.random.default_rng(0)
    perm, _, shift = self._order(40, 6)
    top_k = jax.jit(ranking._top_k_exact, static_argnums=1)
    distinct = rng.normal(size=(6, 40)).astype(np.float32)
    want_s, want_i = jax.lax.top_k(distinct, 7)
    got_s, got_i = top_k(distinct, 7, perm, shift)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_s, want_s)
    tied = np.round(distinct, 0)  # Few distinct values: many ties.
    got_s, got_i = top_k(tied, 7, perm, shift)
    np.testing.assert_array_equal(got_s, jax.lax.top_k(tied, 7)[0])
    np.testing.assert_array_equal(np.take_along_axis(tied, np.asarray(got_i),
                                                     1), got_s)
    for row in np.asarray(got_i):
      self.assertLen(set(row.tolist()), 7)

  @parameterized.parameters(0.0, 0.5, 2.0, 100.0)
  def test_fast_equals_exact_where_it_says_so(self, scale):
    """Rounding to 1/scale plants ties of every extent; 0 = all equal."""
    n_users, n_items, k = 64, 300, 10
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    scores = np.round(scores * scale) / max(scale, 1.0)
    perm, rank, shift = self._order(n_items, n_users)
    want_s, want_i = ranking._top_k_exact(scores, k, perm, shift)
    got_s, got_i, ok = jax.jit(ranking._top_k_fast, static_argnums=1)(
        scores, k, rank, shift)
    ok = np.asarray(ok)
    # numpy reference of "no tie crosses the C = k + k // 8 + 1 candidates".
    desc = -np.sort(-scores, axis=1)
    np.testing.assert_array_equal(ok, desc[:, k + k // 8] < desc[:, k - 1])
    if scale in (0.0, 0.5):
      self.assertFalse(ok.any())
    if scale == 100.0:
      self.assertGreater(ok.mean(), 0.8)
    np.testing.assert_array_equal(np.asarray(got_i)[ok],
                                  np.asarray(want_i)[ok])
    np.testing.assert_array_equal(np.asarray(got_s)[ok],
                                  np.asarray(want_s)[ok])

  def test_gains_of_by_binary_search(self):
    rng = np.random.default_rng(2)
    n_items, width = 50, 8
    held = np.full((5, width), n_items, np.int32)
    gains = np.zeros((5, width), np.float32)
    for u, count in enumerate([0, 1, 3, 8, 5]):
      held[u, :count] = np.sort(rng.choice(n_items, count, replace=False))
      gains[u, :count] = rng.uniform(1, 3, count)
    top = np.stack([rng.choice(n_items, 12, replace=False) for _ in range(5)])
    top[3, :4] = held[3, [7, 0, 3, 5]]  # Hits at the row's ends too.
    want = np.zeros(top.shape, np.float32)
    for u in range(5):
      for r, item in enumerate(top[u]):
        hit = np.flatnonzero(held[u] == item)
        want[u, r] = gains[u, hit[0]] if len(hit) else 0.0
    self.assertGreater((want > 0).sum(), 4)
    got = ranking._gains_of(jnp.asarray(top), jnp.asarray(held),
                            jnp.asarray(gains))
    np.testing.assert_array_equal(got, want)


class EvaluatorTest(parameterized.TestCase):

  def test_mesh_of_8_equals_one_device(self):
    ds = make_dataset(1)
    data = ranking.make_eval_data(ds, dataset_lib.TEST, mask_valid=True,
                                  relevance_threshold=None)
    rng = np.random.default_rng(3)
    # Many ties, so the tie-break order is compared too. Users are halves
    # and items small integers: every product and partial sum is exact in
    # float32, so the scores have the same bits whatever order a device
    # count or CPU model sums them in (one-ulp differences between the
    # sharded and unsharded matmul reordered near-ties of multiples of 0.1
    # on Intel CPUs), and the top items can be compared exactly.
    emb = ((np.round(2 * rng.normal(size=(NUM_USERS, 4))) / 2
            ).astype(np.float32),
           np.round(rng.normal(size=(NUM_ITEMS, 4))).astype(np.float32))
    key = jax.random.key(5)
    one = ranking.Evaluator(data, make_cfg(), None, ranking.embedding_score)
    eight = ranking.Evaluator(data, make_cfg(), make_mesh(),
                              ranking.embedding_score)
    self.assertEqual(eight.block % 8, 0)
    r1, r8 = one(emb, None, key), eight(emb, None, key)
    np.testing.assert_array_equal(r1.top_items, r8.top_items)
    self.assertEqual(set(r1.per_user), set(r8.per_user))
    for name in r1.per_user:
      np.testing.assert_allclose(r1.per_user[name], r8.per_user[name],
                                 atol=1e-6, err_msg=name)
    for name in r1.summary:
      np.testing.assert_allclose(r1.summary[name], r8.summary[name],
                                 atol=1e-6, err_msg=name)

  @parameterized.parameters(True, False)
  def test_masked_items_never_in_top_k(self, mask_valid):
    ds = make_dataset(2)
    data = ranking.make_eval_data(ds, dataset_lib.TEST, mask_valid=mask_valid,
                                  relevance_threshold=None)
    # The 'model' scores every training and validation item highest.
    table = np.zeros((NUM_USERS, NUM_ITEMS), np.float32)
    seen = ds.split != dataset_lib.TEST
    table[ds.user[seen], ds.item[seen]] = 100.0
    cfg = make_cfg(mask_valid_at_test=mask_valid)
    result = ranking.Evaluator(data, cfg, make_mesh(), table_score)(
        table, None, jax.random.key(0))
    valid_hit = False
    for u, top in zip(result.users, result.top_items):
      for s, forbidden in ((dataset_lib.TRAIN, True),
                           (dataset_lib.VALID, mask_valid)):
        items = set(ds.item[(ds.user == u) & (ds.split == s)].tolist())
        if forbidden:
          self.assertEmpty(items & set(top.tolist()), msg=f'user {u}')
        elif items - set(ds.item[(ds.user == u) & ~seen]):
          valid_hit |= bool(items & set(top.tolist()))
    # Unmasked validation items, scored highest, do reach the top K.
    self.assertEqual(valid_hit, not mask_valid)

  def test_all_equal_scores_recall_near_k_over_i(self):
    n_users, n_items, k = 256, 100, 10
    rng = np.random.default_rng(0)
    # One held-out item per user, all among the highest ids: top_k without a
    # tie-break (lowest ids first) would give recall 0.
    ds = dataset_lib.Dataset(
        user=np.arange(n_users, dtype=np.int32),
        item=rng.integers(n_items // 2, n_items, n_users).astype(np.int32),
        split=np.full(n_users, dataset_lib.TEST, np.int8),
        user_ids=np.arange(n_users).astype(str),
        item_ids=np.arange(n_items).astype(str),
    )
    data = ranking.make_eval_data(ds, dataset_lib.TEST, mask_valid=True,
                                  relevance_threshold=None)
    cfg = make_cfg(topk=(k,), batch_users=64, user_groups=None)
    ev = ranking.Evaluator(data, cfg, None, table_score)
    table = np.zeros((n_users, n_items), np.float32)
    recalls = [ev(table, None, jax.random.key(s)).summary[f'recall@{k}']
               for s in range(4)]
    # Mean of 1024 Bernoulli(0.1) draws: sd ~ 0.0094.
    self.assertAlmostEqual(np.mean(recalls), k / n_items, delta=0.035)
    # Tied users get different items, so the catalogue is covered.
    result = ev(table, None, jax.random.key(0))
    self.assertGreater(result.summary[f'coverage@{k}'], 0.9)

  @parameterized.parameters((0, False), (2, True), (0, True))
  def test_fast_path_falls_back_to_exact_per_block(self, tied_block, mesh):
    """Blocks with ties across the candidates are redone by the exact path.

    Tied block 0 sends every block to the exact path; a later tied block is
    redone alone. Either way the result equals the exact path's everywhere.
    The XLA paths only: the top-K kernel, where loaded, is exact everywhere
    and never falls back (tests/graph/topk_kernel_test.py).
    """
    self.enter_context(kernel.configured('reference'))
    ds = make_dataset(5)
    data = ranking.make_eval_data(ds, dataset_lib.VALID, mask_valid=True,
                                  relevance_threshold=None)
    cfg = make_cfg(batch_users=8, topk=(1, 5))
    ev = ranking.Evaluator(data, cfg, make_mesh() if mesh else None,
                           table_score)
    table = distinct_table(5)
    block_users = data.users[tied_block * ev.block:(tied_block + 1) * ev.block]
    table[block_users] = np.round(table[block_users] / NUM_ITEMS)  # 0 or 1
    key = jax.random.key(7)
    got = ev(table, None, key)
    forced = ranking.Evaluator(data, cfg, make_mesh() if mesh else None,
                               table_score)
    forced.block_fn = forced.exact_block_fn
    want = forced(table, None, key)
    np.testing.assert_array_equal(got.top_items, want.top_items)
    for name, v in want.per_user.items():
      np.testing.assert_array_equal(got.per_user[name], v, err_msg=name)
    self.assertGreater(len(data.users), 2 * ev.block)
    self.assertEqual(ev.exact_block_fn._cache_size(), 1)  # It was used.

  def test_compiles_once_and_is_deterministic(self):
    ds = make_dataset(3)
    data = ranking.make_eval_data(ds, dataset_lib.VALID, mask_valid=True,
                                  relevance_threshold=None)
    ev = ranking.Evaluator(data, make_cfg(batch_users=8), make_mesh(),
                           table_score)
    self.assertGreater(len(data.users), 2 * ev.block)  # Several blocks.
    self.assertNotEqual(len(data.users) % ev.block, 0)  # A padded block.
    tables = {s: jax.device_put(distinct_table(s)) for s in (0, 1)}
    keys = {s: jax.random.key(s) for s in (0, 1)}
    # Every host-to-device transfer of an evaluation is explicit.
    with jax.transfer_guard('disallow'):
      results = [ev(tables[s], None, keys[s]) for s in (0, 1, 0)]
    self.assertEqual(ev.block_fn._cache_size(), 1)
    np.testing.assert_array_equal(results[0].top_items, results[2].top_items)
    self.assertFalse(np.array_equal(results[0].top_items,
                                    results[1].top_items))

  def test_cold_items_and_groups(self):
    ds = make_dataset(4, cold=5)
    data = ranking.make_eval_data(ds, dataset_lib.TEST, mask_valid=True,
                                  relevance_threshold=None)
    cold = data.cold_items
    self.assertTrue(cold[-5:].all())
    table = distinct_table(4)
    cfg = make_cfg()
    result = ranking.Evaluator(data, cfg, None, table_score)(
        table, None, jax.random.key(0))
    users, want = reference(ds, dataset_lib.TEST, table, cfg, True,
                            item_filter=cold)
    self.assertNotEmpty(users)
    has = np.isin(result.users, users)
    self.assertEqual(result.summary['num_users/cold_items'], len(users))
    self.assertTrue(
        np.isnan(result.per_user['recall@5/cold_items'][~has]).all())
    for name, v in want.items():
      np.testing.assert_allclose(result.per_user[name + '/cold_items'][has],
                                 v, rtol=1e-5, atol=1e-7, err_msg=name)
      self.assertAlmostEqual(result.summary[name + '/cold_items'], v.mean())
    counts = data.user_train_counts[result.users]
    sel = (counts >= 8) & (counts < 12)
    self.assertEqual(result.summary['num_users/group=8-12'], sel.sum())
    self.assertAlmostEqual(result.summary['recall@10/group=8-12'],
                           result.per_user['recall@10'][sel].mean())

  def test_bad_config_and_data(self):
    ds = make_dataset()
    ds.rating = None
    with self.assertRaisesRegex(dataset_lib.DataError, 'needs ratings'):
      ranking.make_eval_data(ds, dataset_lib.TEST, mask_valid=True,
                             relevance_threshold=3.0)
    ds = make_dataset()
    ds.rating[np.flatnonzero(ds.split == dataset_lib.TEST)[0]] = np.nan
    with self.assertRaisesRegex(dataset_lib.DataError, 'has no rating'):
      ranking.make_eval_data(ds, dataset_lib.TEST, mask_valid=True,
                             relevance_threshold=3.0)
    data = ranking.make_eval_data(make_dataset(), dataset_lib.TEST,
                                  mask_valid=True, relevance_threshold=3.0)
    with self.assertRaisesRegex(ValueError, 'convention'):
      ranking.Evaluator(data, make_cfg(gain='graded', relevance_threshold=3.0),
                        None, table_score)
    with self.assertRaisesRegex(ValueError, 'relevance_threshold'):
      ranking.Evaluator(data, make_cfg(), None, table_score)
    with self.assertRaisesRegex(ValueError, 'split must be'):
      ranking.make_eval_data(make_dataset(), dataset_lib.TRAIN,
                             mask_valid=True, relevance_threshold=None)

  def test_save_and_load_per_user(self):
    ds = make_dataset()
    data = ranking.make_eval_data(ds, dataset_lib.VALID, mask_valid=True,
                                  relevance_threshold=None)
    result = ranking.Evaluator(data, make_cfg(), None, table_score)(
        distinct_table(0), None, jax.random.key(0))
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'per_user_valid.npz')
      ranking.save_per_user(result, path, split_hash=data.split_hash,
                            split='valid', name='bpr')
      back = ranking.load_per_user(path)
    self.assertEqual(back['split_hash'], dataset_lib.split_hash(ds))
    self.assertEqual((back['split'], back['name']), ('valid', 'bpr'))
    np.testing.assert_array_equal(back['users'], result.users)
    self.assertEqual(set(back['per_user']), set(result.per_user))
    for name, v in result.per_user.items():
      np.testing.assert_array_equal(back['per_user'][name], v)


if __name__ == '__main__':
  absltest.main()
