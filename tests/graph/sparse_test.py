"""Graph construction, normalisation and `propagate` against dense oracles."""

from absl.testing import absltest
from absl.testing import parameterized
from jax.experimental import sparse as jsparse
import jax.numpy as jnp
import numpy as np

from mmjax.graph import sparse


def _random_graph(seed, n, e, weighted=True):
  rng = np.random.default_rng([seed, n, e])
  w = rng.random(e).astype(np.float32) + 0.1 if weighted else None
  return sparse.from_edges(rng.integers(0, n, e), rng.integers(0, n, e), w, n)


class FromEdgesTest(parameterized.TestCase):

  def test_sorted_with_csr_pointer(self):
    g = _random_graph(0, 30, 200)
    r, s = np.asarray(g.receivers), np.asarray(g.senders)
    self.assertTrue(np.all(np.diff(r) >= 0))
    np.testing.assert_array_equal(
        np.asarray(g.indptr), np.searchsorted(r, np.arange(31))
    )
    # Within a row, senders ascend (lexsort by receiver then sender).
    code = r.astype(np.int64) * 30 + s
    self.assertTrue(np.all(np.diff(code) >= 0))

  def test_transposed_csr(self):
    g = _random_graph(1, 25, 150)
    s, r = np.asarray(g.senders), np.asarray(g.receivers)
    perm = np.asarray(g.t_perm)
    np.testing.assert_array_equal(np.sort(perm), np.arange(150))
    self.assertTrue(np.all(np.diff(s[perm].astype(np.int64) * 25 + r[perm])
                           >= 0))
    np.testing.assert_array_equal(np.asarray(g.t_cols), r[perm])
    np.testing.assert_array_equal(
        np.asarray(g.t_indptr), np.searchsorted(s[perm], np.arange(26))
    )

  def test_duplicates_add_up(self):
    g = sparse.from_edges(np.array([1, 1, 0]), np.array([0, 0, 1]),
                          np.array([2.0, 3.0, 1.0]), 2)
    np.testing.assert_array_equal(sparse.to_dense(g), [[0, 5], [1, 0]])

  @parameterized.named_parameters(
      ('negative', [-1], [0]), ('too_large', [0], [3])
  )
  def test_out_of_range(self, senders, receivers):
    with self.assertRaisesRegex(ValueError, r'outside \[0, 3\)'):
      sparse.from_edges(np.array(senders), np.array(receivers), None, 3)

  def test_length_mismatch(self):
    with self.assertRaisesRegex(ValueError, 'differ in length'):
      sparse.from_edges(np.array([0, 1]), np.array([0]), None, 3)


class BipartiteTest(absltest.TestCase):

  def test_structure(self):
    users = np.array([0, 0, 1, 2, 0])
    items = np.array([1, 0, 1, 1, 1])  # (0, 1) twice: merged
    g = sparse.bipartite(users, items, num_users=3, num_items=2)
    self.assertEqual(g.num_nodes, 5)
    self.assertEqual(g.num_edges, 8)
    a = sparse.to_dense(g)
    expected = np.zeros((5, 5), np.float32)
    for u, i in {(0, 1), (0, 0), (1, 1), (2, 1)}:
      expected[u, 3 + i] = expected[3 + i, u] = 1.0
    np.testing.assert_array_equal(a, expected)
    np.testing.assert_array_equal(sparse.degrees(g), expected.sum(1))


class NormalizeTest(absltest.TestCase):

  def test_sym_normalize(self):
    g = sparse.bipartite(np.array([0, 0, 1, 3]), np.array([0, 1, 1, 0]), 4, 3)
    a = sparse.to_dense(g)
    deg = np.maximum(a.sum(1), 1.0)  # user 2 is isolated: stays finite
    expected = a / np.sqrt(deg)[:, None] / np.sqrt(deg)[None, :]
    np.testing.assert_allclose(
        sparse.to_dense(sparse.sym_normalize(g)), expected, rtol=1e-6
    )

  def test_row_normalize(self):
    g = _random_graph(2, 12, 60)
    a = sparse.to_dense(g)
    deg = a.sum(1, keepdims=True)
    expected = np.where(deg > 0, a / np.maximum(deg, 1e-12), 0.0)
    got = sparse.to_dense(sparse.row_normalize(g))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    nonempty = deg[:, 0] > 0
    np.testing.assert_allclose(got.sum(1)[nonempty], 1.0, rtol=1e-6)


class PropagateTest(parameterized.TestCase):

  @parameterized.parameters((1, 1, 4), (7, 30, 3), (40, 300, 16), (64, 0, 5))
  def test_matches_dense_and_bcoo(self, n, e, d):
    g = _random_graph(3, n, e)
    x = np.random.default_rng([4, n]).standard_normal((n, d)).astype(
        np.float32
    )
    a = sparse.to_dense(g)
    got = np.asarray(sparse.propagate(g, x))
    np.testing.assert_allclose(got, a @ x, rtol=1e-5, atol=1e-5)
    bcoo = jsparse.BCOO(
        (jnp.asarray(g.weights),
         jnp.stack([jnp.asarray(g.receivers), jnp.asarray(g.senders)], 1)),
        shape=(n, n),
    )
    np.testing.assert_allclose(got, np.asarray(bcoo @ x), rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(sparse.propagate_reference(g, x)), a @ x, rtol=1e-5,
        atol=1e-5,
    )


if __name__ == '__main__':
  absltest.main()
