"""Tests of the blockwise kNN graph against a dense brute-force reference."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.graph import knn
from mmjax.graph import sparse
from mmjax.graph.kernel import ops
from tests.testing import numerics


def _features(num_items, dim, seed):
  # Continuous random features: no two similarities tie exactly, but float32
  # similarities on device and the float64 reference differ by a few ulps,
  # so neighbour ids are compared through `numerics` (exactly wherever the
  # reference has no near-tie).
  return np.random.default_rng([seed, num_items, dim]).normal(
      size=(num_items, dim)
  ).astype(np.float32)


def _dense_topk(x, k, valid, exclude_self):
  """MMRec's dense path: full cosine matrix, then top-k per row."""
  norm = np.linalg.norm(x, axis=1, keepdims=True)
  xn = np.where(valid[:, None], x / np.where(norm > 0, norm, 1), 0)
  sim = xn @ xn.T
  sim[:, ~valid] = -np.inf
  if exclude_self:
    np.fill_diagonal(sim, -np.inf)
  idx = np.argsort(-sim, axis=1, kind='stable')[:, :k]
  val = np.take_along_axis(sim, idx, axis=1)
  val[~valid] = -np.inf
  return idx, val, sim


def _assert_neighbours(test, idx, sim, rows, min_fixed):
  """Ids equal the reference's up to near-ties, on >= min_fixed of rows."""
  fixed = numerics.assert_same_ranking(np.asarray(idx)[rows], sim[rows],
                                       atol=1e-5)
  test.assertGreaterEqual(fixed.mean(), min_fixed)


def _dense_laplacian(idx, val, weighted):
  """MMRec build_knn_neighbourhood + compute_normalized_laplacian."""
  n = idx.shape[0]
  a = np.zeros((n, n))
  ok = np.isfinite(val)
  rows = np.repeat(np.arange(n), idx.shape[1])
  w = np.where(ok, val, 0) if weighted else ok.astype(float)
  np.add.at(a, (rows, idx.reshape(-1)), w.reshape(-1))
  d = a.sum(1)
  inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
  return inv[:, None] * a * inv[None, :]


class CosineTopkTest(parameterized.TestCase):

  @parameterized.product(exclude_self=[False, True], block_size=[7, 64, 512])
  def test_matches_dense_reference(self, exclude_self, block_size):
    x = _features(300, 16, 0)
    idx, val = knn.cosine_topk(
        x, 5, exclude_self=exclude_self, block_size=block_size
    )
    _, ref_val, sim = _dense_topk(x.astype(np.float64), 5,
                                  np.ones(300, bool), exclude_self)
    _assert_neighbours(self, idx, sim, slice(None), 0.95)
    np.testing.assert_allclose(np.asarray(val), ref_val, rtol=1e-5, atol=1e-6)
    self.assertEqual(idx.dtype, np.int32)
    if not exclude_self:  # MMRec: each item is its own nearest neighbour.
      np.testing.assert_array_equal(np.asarray(idx)[:, 0], np.arange(300))

  @parameterized.parameters(False, True)
  def test_masked_and_zero_items(self, exclude_self):
    x = _features(120, 8, 1)
    x[[3, 50]] = 0.0  # failed items: zero rows in the store
    mask = np.ones(120, bool)
    mask[[7, 80, 81]] = False
    idx, val = knn.cosine_topk(x, 4, mask, block_size=32,
                               exclude_self=exclude_self)
    idx, val = np.asarray(idx), np.asarray(val)
    invalid = np.array([3, 50, 7, 80, 81])
    self.assertFalse(np.isnan(val).any())
    np.testing.assert_array_equal(val[invalid], -np.inf)
    valid = np.ones(120, bool)
    valid[invalid] = False
    # No valid row picks an invalid neighbour.
    self.assertFalse(np.isin(idx[valid], invalid).any())
    _, ref_val, sim = _dense_topk(x.astype(np.float64), 4, valid,
                                  exclude_self)
    _assert_neighbours(self, idx, sim, valid, 0.95)
    np.testing.assert_allclose(val[valid], ref_val[valid], rtol=1e-5)

  def test_fewer_valid_candidates_than_k(self):
    x = _features(10, 4, 2)
    mask = np.zeros(10, bool)
    mask[[1, 4, 6]] = True
    _, val = knn.cosine_topk(x, 5, mask)
    val = np.asarray(val)
    np.testing.assert_array_equal(np.isfinite(val[1]), [1, 1, 1, 0, 0])
    g = knn.to_graph(*knn.cosine_topk(x, 5, mask))
    w = knn.normalize(*knn.cosine_topk(x, 5, mask), weighted=False)
    self.assertTrue(np.isfinite(np.asarray(w)).all())
    self.assertEqual(g.num_edges, 50)

  @parameterized.parameters(False, True)
  def test_gradient_matches_dense_autodiff(self, exclude_self):
    # The custom JVP (gathered pairs only) against autodiff through MMRec's
    # dense path: the full cosine matrix read at the same neighbours.
    x = _features(70, 6, 7)
    x[9] = 0.0
    mask = np.ones(70, bool)
    mask[[2, 40]] = False
    w = _features(70, 5, 8)  # cotangent weights for the [I, k] values
    idx, _ = knn.cosine_topk(x, 5, mask, exclude_self=exclude_self,
                             block_size=16)
    valid = jnp.asarray(mask & (np.abs(x).sum(1) > 0))

    def ours(x):
      _, val = knn.cosine_topk(x, 5, mask, exclude_self=exclude_self,
                               block_size=16)
      return jnp.sum(jnp.where(jnp.isfinite(val), val * w, 0.0))

    def dense(x):
      sq = jnp.sum(x * x, 1, keepdims=True)  # no sqrt at 0: NaN gradient
      xn = jnp.where(valid[:, None], x / jnp.sqrt(jnp.where(sq > 0, sq, 1.0)),
                     0.0)
      val = jnp.take_along_axis(xn @ xn.T, idx, axis=1)
      ok = valid[:, None] & valid[idx]
      return jnp.sum(jnp.where(ok, val * w, 0.0))

    np.testing.assert_allclose(ours(x), dense(x), rtol=1e-5)
    got = jax.jit(jax.grad(ours))(x)
    np.testing.assert_allclose(got, jax.grad(dense)(x), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_array_equal(np.asarray(got)[[2, 9, 40]], 0.0)

  def test_bad_k(self):
    with self.assertRaisesRegex(ValueError, 'k=11'):
      knn.cosine_topk(_features(10, 4, 0), 11)


class KnnGraphTest(parameterized.TestCase):

  @parameterized.parameters(True, False)
  def test_sym_graph_matches_mmrec_dense(self, weighted):
    x = _features(90, 12, 3)
    x[5] = 0.0
    g = knn.knn_graph(x, 6, weighted=weighted, block_size=16)
    valid = np.ones(90, bool)
    valid[5] = False
    ref_idx, ref_val, sim = _dense_topk(x.astype(np.float64), 6, valid,
                                        False)
    # The dense graphs are compared whole: the test's data leaves no
    # near-tie at any row's k-th neighbour, so no CPU picks another.
    self.assertGreater(
        numerics.topk_margin(sim[valid], 6, ordered=False).min(), 1e-4)
    ref = _dense_laplacian(ref_idx, ref_val, weighted)
    np.testing.assert_allclose(sparse.to_dense(g), ref, rtol=1e-5, atol=1e-6)
    self.assertEqual(g.num_edges, 90 * 6)
    self.assertTrue(np.all(np.diff(np.asarray(g.receivers)) >= 0))

  def test_freedom_weights_are_one_over_k(self):
    g = knn.knn_graph(_features(40, 5, 4), 10, weighted=False)
    np.testing.assert_allclose(np.asarray(g.weights), 0.1, rtol=1e-6)

  def test_row_normalization_and_layout(self):
    x = _features(50, 6, 5)
    g = knn.knn_graph(x, 3, weighted=True, normalization='row')
    dense = sparse.to_dense(g)
    np.testing.assert_allclose(dense.sum(1), 1.0, rtol=1e-5)
    idx, val = knn.cosine_topk(x, 3)
    ref = sparse.from_edges(
        np.asarray(idx).reshape(-1), np.repeat(np.arange(50), 3),
        np.asarray(val).reshape(-1), 50,
    )
    # Same edge order as the host constructor.
    np.testing.assert_array_equal(np.asarray(g.senders), ref.senders)
    np.testing.assert_array_equal(np.asarray(g.indptr), ref.indptr)
    # propagate(g, h) is MMRec's torch.sparse.mm(adj, h).
    h = _features(50, 2, 6)
    np.testing.assert_allclose(
        np.asarray(sparse.propagate(g, h)), dense @ h, rtol=1e-5, atol=1e-6
    )

  @parameterized.parameters((30, 4), (50, 9))
  def test_to_graph_carries_the_transpose_pattern(self, n, k):
    # Duplicate neighbours in a row (two top-k matrices concatenated) and
    # unsorted rows: the layout of sparse.from_edges, and the transpose
    # pattern the kernel would otherwise sort on every call.
    rng = np.random.default_rng([n, k])
    idx = rng.integers(0, n, (n, k)).astype(np.int32)
    idx[:, 1] = idx[:, 0]
    w = rng.random((n, k)).astype(np.float32)
    g = jax.jit(knn.to_graph)(idx, w)
    ref = sparse.from_edges(idx.reshape(-1), np.repeat(np.arange(n), k),
                            w.reshape(-1), n)
    for field in ('senders', 'receivers', 'indptr', 't_indptr', 't_cols',
                  't_perm'):
      np.testing.assert_array_equal(getattr(g, field), getattr(ref, field),
                                    field)
    np.testing.assert_array_equal(g.weights, ref.weights)
    t_indptr, t_cols, t_perm = ops.transpose_pattern(g.indptr, g.senders,
                                                     g.receivers)
    np.testing.assert_array_equal(g.t_indptr, t_indptr)
    np.testing.assert_array_equal(g.t_cols, t_cols)
    np.testing.assert_array_equal(g.t_perm, t_perm)
    # A^T g through the carried pattern is the dense transpose product.
    h = _features(n, 3, 9)
    grad = jax.grad(lambda x: jnp.sum(sparse.propagate(g, x) * h))(
        jnp.zeros((n, 3)))
    np.testing.assert_allclose(grad, sparse.to_dense(g).T @ h, rtol=1e-5,
                               atol=1e-6)

  @parameterized.parameters(2**10, 2**31 - 1)
  def test_stable_argsort_packed_and_fallback(self, bound):
    # 2**10 * 33 fits one uint32 key; 2**31 * 33 takes the argsort path.
    rng = np.random.default_rng([bound % 97])
    keys = rng.integers(0, min(bound, 6), (5, 33)).astype(np.int32)
    keys[0, -1] = bound - 1  # the largest key is still ordered right
    got = knn._stable_argsort(jnp.asarray(keys), bound)
    np.testing.assert_array_equal(
        got, np.argsort(keys, axis=1, kind='stable'))
    self.assertEqual(got.dtype, np.int32)

  def test_bad_normalization(self):
    with self.assertRaisesRegex(ValueError, 'normalization'):
      knn.knn_graph(_features(5, 2, 0), 2, normalization='laplace')

  def test_jit_compiles_once(self):
    build = jax.jit(lambda x: knn.knn_graph(x, 4, block_size=8))
    for seed in range(3):
      g = build(_features(33, 5, seed))
      self.assertTrue(np.isfinite(np.asarray(g.weights)).all())
    self.assertEqual(build._cache_size(), 1)


if __name__ == '__main__':
  absltest.main()
