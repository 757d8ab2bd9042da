"""Tests of degree-sensitive pruning and edge dropout (static shapes)."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.graph import edges
from mmjax.graph import sparse


def _bipartite(num_users=30, num_items=20, n=150, seed=0):
  rng = np.random.default_rng([seed])
  users = rng.integers(0, num_users, n)
  items = rng.integers(0, num_items, n)
  return sparse.sym_normalize(
      sparse.bipartite(users, items, num_users, num_items)
  )


def _sym_reference(g, keep):
  """Dense D^-1/2 A D^-1/2 of the kept structure (FREEDOM's renormalisation)."""
  kept = sparse.from_edges(
      np.asarray(g.senders)[keep], np.asarray(g.receivers)[keep], None,
      g.num_nodes,
  )
  return sparse.to_dense(sparse.sym_normalize(kept))


class ReverseEdgesTest(absltest.TestCase):

  def test_pairs_each_edge_with_its_reverse(self):
    g = _bipartite()
    rev = edges.reverse_edges(g)
    np.testing.assert_array_equal(rev[rev], np.arange(g.num_edges))
    np.testing.assert_array_equal(g.senders[rev], g.receivers)
    np.testing.assert_array_equal(g.receivers[rev], g.senders)

  def test_jittable_version_agrees(self):
    for seed in range(3):
      g = _bipartite(seed=seed)
      np.testing.assert_array_equal(
          np.asarray(jax.jit(edges.reverse_edges_sorted)(g)),
          edges.reverse_edges(g),
      )

  def test_rejects_asymmetric_graph(self):
    g = sparse.from_edges(np.array([0, 1]), np.array([1, 2]), None, 3)
    with self.assertRaisesRegex(ValueError, 'no reverse'):
      edges.reverse_edges(g)

  def test_rejects_self_loop(self):
    g = sparse.from_edges(np.array([0, 1]), np.array([0, 0]), None, 2)
    with self.assertRaisesRegex(ValueError, 'self-loop'):
      edges.reverse_edges(g)


class PruneTest(parameterized.TestCase):

  @parameterized.parameters(0.8, 0.5, 0.1)
  def test_keeps_count_symmetric_and_renormalised(self, drop_ratio):
    g = _bipartite()
    rev = edges.reverse_edges(g)
    pruned = edges.degree_sensitive_prune(
        jax.random.key(0), g, rev, drop_ratio
    )
    w = np.asarray(pruned.weights)
    self.assertEqual(w.shape, (g.num_edges,))
    keep = w != 0
    num_pairs = g.num_edges // 2
    self.assertEqual(keep.sum(), 2 * int(num_pairs * (1.0 - drop_ratio)))
    np.testing.assert_array_equal(keep, keep[rev])
    np.testing.assert_allclose(
        sparse.to_dense(pruned), _sym_reference(g, keep), rtol=1e-5
    )

  def test_no_drop_is_sym_normalisation(self):
    g = _bipartite()
    pruned = edges.degree_sensitive_prune(
        jax.random.key(0), g, edges.reverse_edges(g), 0.0
    )
    np.testing.assert_allclose(
        np.asarray(pruned.weights), np.asarray(g.weights), rtol=1e-6
    )

  def test_single_draw_follows_inverse_sqrt_degree(self):
    # Keeping one edge is one multinomial draw: P(e) ~ 1/sqrt(d_u d_i).
    users = np.array([0, 0, 0, 1, 2])
    items = np.array([0, 1, 2, 0, 0])
    g = sparse.bipartite(users, items, 3, 3)
    rev = edges.reverse_edges(g)
    drop = 0.8 - 1e-9  # int(5 * (1 - drop)) == 1

    def kept_pair(key):
      w = edges.degree_sensitive_prune(key, g, rev, drop).weights
      return jnp.argmax(jnp.where(jnp.arange(w.shape[0]) < rev, w, 0))

    keys = jax.random.split(jax.random.key(1), 4000)
    hits = np.bincount(np.asarray(jax.vmap(kept_pair)(keys)), minlength=10)
    deg = sparse.degrees(g)
    s, r = np.asarray(g.senders), np.asarray(g.receivers)
    p = 1 / np.sqrt(deg[s] * deg[r])
    p = np.where(np.arange(10) < rev, p, 0)
    p /= p.sum()
    # Standard error of a frequency is <= 0.008 at 4000 draws.
    np.testing.assert_allclose(hits / 4000, p, atol=0.03)
    # The edge between the two degree-3 nodes is the rarest.
    rare = np.flatnonzero((s == 0) & (r == 3))[0]
    self.assertEqual(np.argmin(np.where(p > 0, p, 1)), min(rare, rev[rare]))

  @parameterized.parameters(0.8, 0.3)
  def test_compact_is_the_kept_edges_and_propagates_the_same(self, drop):
    g = _bipartite()
    rev = edges.reverse_edges(g)
    key = jax.random.key(3)
    full = edges.degree_sensitive_prune(key, g, rev, drop)
    small = edges.degree_sensitive_prune(key, g, rev, drop, compact=True)
    w = np.asarray(full.weights)
    kept = w != 0
    self.assertEqual(small.num_edges, kept.sum())
    self.assertEqual(small.num_edges, 2 * int(g.num_edges // 2 * (1 - drop)))
    # The kept edges and their transpose, as from_edges lays them out.
    ref = sparse.from_edges(np.asarray(g.senders)[kept],
                            np.asarray(g.receivers)[kept], w[kept],
                            g.num_nodes)
    for field in ('senders', 'receivers', 'weights', 'indptr', 't_indptr',
                  't_cols', 't_perm'):
      np.testing.assert_array_equal(getattr(small, field),
                                    getattr(ref, field), field)
    # Padded past the kept count: weight-0 self-loops on the last node, last
    # in both orders, as from_edges lays out the kept edges plus those three.
    last = g.num_nodes - 1
    padded = sparse.keep_edges(full, kept, int(kept.sum()) + 3)
    ref = sparse.from_edges(
        np.r_[np.asarray(g.senders)[kept], [last] * 3],
        np.r_[np.asarray(g.receivers)[kept], [last] * 3],
        np.r_[w[kept], [0.0] * 3], g.num_nodes)
    for field in ('senders', 'receivers', 'weights', 'indptr', 't_indptr',
                  't_cols', 't_perm'):
      np.testing.assert_array_equal(getattr(padded, field),
                                    getattr(ref, field), field)
    # Sized below the kept count: the first kept edges in g's order, the
    # same ones in the transpose (every index in range).
    first = np.flatnonzero(kept)[:7]
    short = sparse.keep_edges(full, kept, 7)
    ref = sparse.from_edges(np.asarray(g.senders)[first],
                            np.asarray(g.receivers)[first], w[first],
                            g.num_nodes)
    for field in ('senders', 'receivers', 'indptr', 't_indptr', 't_cols',
                  't_perm'):
      np.testing.assert_array_equal(getattr(short, field),
                                    getattr(ref, field), field)
    # The same sums, forward and backward (in x and in the edge weights,
    # which runs the transpose pattern's scatter).
    rng = np.random.default_rng(4)
    x = rng.standard_normal((g.num_nodes, 5)).astype(np.float32)
    dy = rng.standard_normal((g.num_nodes, 5)).astype(np.float32)

    def run(graph):
      def f(x, weights):
        return sparse.propagate(graph.with_weights(weights), x)
      y, vjp = jax.vjp(f, x, graph.weights)
      dx, dweights = vjp(dy)
      return y, dx, dweights

    y, dx, dweights = run(full)
    for graph in (small, padded):
      y_k, dx_k, dweights_k = run(graph)
      np.testing.assert_allclose(y_k, y, rtol=1e-6, atol=1e-7)
      np.testing.assert_allclose(dx_k, dx, rtol=1e-6, atol=1e-7)
      # Each kept edge's weight gradient is the full graph's at that edge.
      np.testing.assert_allclose(dweights_k[:small.num_edges],
                                 np.asarray(dweights)[kept], rtol=1e-6,
                                 atol=1e-7)

  def test_jit_compiles_once(self):
    g = _bipartite()
    rev = jnp.asarray(edges.reverse_edges(g))
    before = edges.degree_sensitive_prune._cache_size()
    for seed in range(3):
      edges.degree_sensitive_prune(jax.random.key(seed), g, rev, 0.7)
    self.assertEqual(edges.degree_sensitive_prune._cache_size() - before, 1)


class EdgeDropoutTest(parameterized.TestCase):

  def test_fraction_and_pairs(self):
    g = _bipartite(200, 100, 3000, seed=1)
    rev = edges.reverse_edges(g)
    out = edges.edge_dropout(jax.random.key(2), g, 0.3, rev)
    keep = np.asarray(out.weights) != 0
    np.testing.assert_array_equal(keep, keep[rev])
    # ~1500 undirected edges: the kept share is 0.7 +- 3 standard errors.
    self.assertAlmostEqual(keep.mean(), 0.7, delta=3 * np.sqrt(0.21 / 1500))
    np.testing.assert_allclose(
        np.asarray(out.weights)[keep], np.asarray(g.weights)[keep]
    )

  def test_directed_dropout_is_independent(self):
    g = _bipartite(200, 100, 3000, seed=1)
    rev = edges.reverse_edges(g)
    keep = np.asarray(
        edges.edge_dropout(jax.random.key(3), g, 0.5).weights
    ) != 0
    self.assertFalse(np.array_equal(keep, keep[rev]))

  def test_scale_keeps_expectation(self):
    g = _bipartite()
    keys = jax.random.split(jax.random.key(4), 2000)
    w = jax.vmap(
        lambda k: edges.edge_dropout(k, g, 0.4, renormalize='scale').weights
    )(keys)
    mean = np.asarray(w).mean(0)
    np.testing.assert_allclose(mean, np.asarray(g.weights), rtol=0.15)

  @parameterized.parameters('sym', 'row')
  def test_renormalised_matches_reference(self, mode):
    g = _bipartite()
    rev = edges.reverse_edges(g)
    out = edges.edge_dropout(jax.random.key(5), g, 0.5, rev, renormalize=mode)
    keep = np.asarray(out.weights) != 0
    if mode == 'sym':
      ref = _sym_reference(g, keep)
    else:
      kept = sparse.from_edges(
          np.asarray(g.senders)[keep], np.asarray(g.receivers)[keep], None,
          g.num_nodes,
      )
      ref = sparse.to_dense(sparse.row_normalize(kept))
    np.testing.assert_allclose(sparse.to_dense(out), ref, rtol=1e-5)

  def test_already_dropped_edges_stay_dropped(self):
    g = _bipartite()
    w = np.asarray(g.weights).copy()
    w[:10] = 0.0
    out = edges.edge_dropout(jax.random.key(6), g.with_weights(w), 0.1)
    np.testing.assert_array_equal(np.asarray(out.weights)[:10], 0.0)

  def test_bad_arguments(self):
    g = _bipartite()
    with self.assertRaisesRegex(ValueError, 'renormalize'):
      edges.edge_dropout(jax.random.key(0), g, 0.1, renormalize='mean')
    with self.assertRaisesRegex(ValueError, 'rate'):
      edges.edge_dropout(jax.random.key(0), g, 1.0)

  def test_jit_compiles_once(self):
    g = _bipartite()
    step = jax.jit(
        lambda key, g: edges.edge_dropout(key, g, 0.2, renormalize='sym')
    )
    for seed in range(3):
      step(jax.random.key(seed), g)
    self.assertEqual(step._cache_size(), 1)


if __name__ == '__main__':
  absltest.main()
