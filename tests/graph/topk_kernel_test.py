"""The top-K kernel (csrc/topk.cc) against the exact XLA path, bitwise.

The exact path (`ranking._top_k_exact`, i.e. `topk.reference`, after the
evaluation's `where(scores == 0, 0.0, scores)`) defines the evaluation's
lists: scores in IEEE total order, -0.0 as 0.0, ties by the seeded position.
The kernel must give the same values (bits) and items for every row, ties,
masks, NaN, -0.0 and K = N included. Kernel tests skip when the kernel cannot be
built here (no compiler); the fallback test runs everywhere.
"""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.eval import ranking
from mmjax.graph import kernel
from mmjax.graph.kernel import topk

P = jax.sharding.PartitionSpec


def _scores(seed, rows, n, levels=4, masked=0.3):
  """Scores on a few levels (many ties), part of them masked with -inf and
  some zeros negative; row 0 keeps two finite scores and row 1 none, so
  they have fewer than K."""
  rng = np.random.default_rng([seed, rows, n])
  s = rng.integers(0, levels, (rows, n)).astype(np.float32) - levels // 2
  s[(s == 0) & (rng.random((rows, n)) < 0.5)] = -0.0
  s[rng.random((rows, n)) < masked] = -np.inf
  s[0, 2:] = -np.inf
  if rows > 1:
    s[1] = -np.inf
  return s


def _order(seed, rows, n):
  """A random item order, its inverse and per-row shifts (numpy: no eager
  JAX ops to compile)."""
  rng = np.random.default_rng([seed, rows, n, 1])
  perm = rng.permutation(n).astype(np.int32)
  rank = np.argsort(perm).astype(np.int32)
  return perm, rank, rng.integers(0, n, rows).astype(np.int32)


# One jitted function each, so that cases of one shape compile once. The
# kernel settings are read at trace time: `_kernel` is only called in mode
# 'kernel' (the fallback test traces a function of its own).
_exact_xla = jax.jit(ranking._top_k_exact, static_argnums=1)
_kernel = jax.jit(topk.top_k, static_argnums=1, static_argnames='mesh')


def _exact(scores, k, perm, shift):
  """The exact path on the scores as the evaluation hands them over."""
  return _exact_xla(np.where(scores == 0, np.float32(0), scores), k, perm,
                    shift)
def _assert_same(test, got, want):
  np.testing.assert_array_equal(np.asarray(got[1]), np.asarray(want[1]))
  # Bits, so NaN payloads and the sign of zero count too.
  np.testing.assert_array_equal(np.asarray(got[0]).view(np.uint32),
                                np.asarray(want[0]).view(np.uint32))
  test.assertEqual(got[1].dtype, jnp.int32)


@absltest.skipUnless(kernel.available(), 'kernel not built: ' +
                     str(kernel.status()['reason']))
class TopKKernelTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(kernel.configured('kernel'))

  def test_dispatches_to_kernel(self):
    s = _scores(0, 4, 10)
    perm, rank, shift = _order(0, 4, 10)
    jaxpr = str(jax.make_jaxpr(
        lambda *a: topk.top_k(a[0], 3, *a[1:]))(s, perm, rank, shift))
    self.assertIn('mmjax_top_k', jaxpr)

  @parameterized.named_parameters(
      # (rows, items, k): K up to N, N prime or odd, K past N / 16 (no bound
      # from the block maxima), many blocks.
      ('k_small', 9, 97, 5),
      ('k_equals_n', 5, 13, 13),
      ('n_one', 3, 1, 1),
      ('k_past_blocks', 6, 40, 35),
      ('many_blocks', 17, 1001, 50),
  )
  def test_equals_exact_path(self, rows, n, k):
    # Levels: every score tied, a few levels, distinct almost everywhere.
    for seed, levels in enumerate((1, 2, 5, 1 << 20)):
      s = _scores(seed, rows, n, levels)
      perm, rank, shift = _order(seed, rows, n)
      _assert_same(self, _kernel(s, k, perm, rank, shift),
                   _exact(s, k, perm, shift))

  def test_special_values_ordered_as_top_k(self):
    # lax.top_k on XLA:CPU orders by IEEE total order: -NaN < -inf < -0.0 <
    # 0.0 < inf < NaN, NaNs by payload; the evaluation maps -0.0 to 0.0
    # (the kernel does so itself).
    n, rows = 37, 6
    rng = np.random.default_rng(4)
    s = rng.choice(np.float32([1, 0, -0.0, np.inf, -np.inf, np.nan, -np.nan]),
                   (rows, n))
    s[0, 5] = np.uint32(0x7FC00001).view(np.float32)  # Another NaN payload.
    s[1, 7] = np.uint32(0xFFC00001).view(np.float32)
    perm, rank, shift = _order(4, rows, n)
    for k in (1, 10, n):
      _assert_same(self, _kernel(s, k, perm, rank, shift),
                   _exact(s, k, perm, shift))

  def test_shift_taken_mod_n(self):
    # Negative and large shifts wrap as the exact path's floor `%` does.
    s = _scores(5, 4, 29)
    perm, rank, _ = _order(5, 4, 29)
    shift = jnp.asarray([-1, 29, 60, -31], jnp.int32)
    _assert_same(self, _kernel(s, 7, perm, rank, shift),
                 _exact(s, 7, perm, shift))

  def test_rows_split_over_8_devices(self):
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    rows, n, k = 24, 203, 10
    s = _scores(6, rows, n)
    perm, rank, shift = _order(6, rows, n)
    want = _exact(s, k, perm, shift)
    rows_sharding = jax.sharding.NamedSharding(mesh, P('data'))
    s_dev, shift_dev = jax.device_put((s, shift), rows_sharding)
    got = _kernel(s_dev, k, perm, rank, shift_dev, mesh=mesh)
    _assert_same(self, got, want)
    # Each device selects its own 3 rows: nothing gathers the scores.
    hlo = _kernel.lower(s_dev, k, perm, rank, shift_dev,
                        mesh=mesh).compile().as_text()
    self.assertNotIn('all-gather', hlo)
    self.assertEqual(got[1].sharding.spec, P('data'))
    # Rows not a multiple of the devices are padded, then dropped.
    got = _kernel(s[:21], k, perm, rank, shift[:21], mesh=mesh)
    _assert_same(self, got, (want[0][:21], want[1][:21]))

  def test_evaluation_equals_xla_path(self):
    """Summary, per-user metrics and top items unchanged by the kernel (on a
    mesh of 8) against the exact XLA path (one device), with distinct scores
    and ties across the fast path's candidates."""
    num_users, num_items = 40, 33
    rng = np.random.default_rng(7)
    user = rng.integers(0, num_users, 600).astype(np.int32)
    item = rng.integers(0, num_items, 600).astype(np.int32)
    ds = dataset_lib.Dataset(
        user=user, item=item,
        split=rng.choice(3, 600, p=[0.6, 0.2, 0.2]).astype(np.int8),
        user_ids=np.arange(num_users).astype(str),
        item_ids=np.arange(num_items).astype(str))
    data = ranking.make_eval_data(ds, dataset_lib.TEST, mask_valid=True,
                                  relevance_threshold=None)
    table = rng.permuted(np.tile(np.arange(num_items, dtype=np.float32),
                                 (num_users, 1)), axis=1)
    table[::3] = np.round(table[::3] / num_items)  # Ties: 0 or 1.
    # Negative zeros, which the XLA path maps to 0.0 and the kernel reads so.
    table[(table == 0) & (np.arange(num_users)[:, None] % 2 == 0)] = -0.0
    # Few metrics: the block programs compile faster.
    cfg = ml_collections.ConfigDict(dict(
        topk=(5,), batch_users=16, gain='binary', convention='mmrec',
        relevance_threshold=None, mask_valid_at_test=True,
        user_groups=(0, 8, float('inf'))))
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    key = jax.random.key(3)

    def score(params, ctx, users):
      del ctx
      return params[users]

    with kernel.configured('reference'):
      exact = ranking.Evaluator(data, cfg, None, score)
      exact.block_fn = exact.exact_block_fn
      want = exact(table, None, key)
    ev = ranking.Evaluator(data, cfg, mesh, score)
    with mock.patch.object(topk, 'top_k', wraps=topk.top_k) as spy:
      got = ev(table, None, key)
    spy.assert_called_once()  # One trace, the kernel's.
    self.assertEqual(ev.exact_block_fn._cache_size(), 0)  # No fallback.
    np.testing.assert_array_equal(got.top_items, want.top_items)
    self.assertEqual(got.summary.keys(), want.summary.keys())
    for name, v in want.summary.items():
      np.testing.assert_array_equal(got.summary[name], v, err_msg=name)
    for name, v in want.per_user.items():
      np.testing.assert_array_equal(got.per_user[name], v, err_msg=name)


class FallbackTest(absltest.TestCase):

  def test_reference_mode_uses_xla(self):
    s = _scores(8, 5, 23)
    perm, rank, shift = _order(8, 5, 23)
    with kernel.configured('reference'):
      self.assertFalse(topk.in_use())
      fn = lambda *a: topk.top_k(a[0], 4, *a[1:])  # noqa: E731
      self.assertNotIn('mmjax_top_k',
                       str(jax.make_jaxpr(fn)(s, perm, rank, shift)))
      got = jax.jit(fn)(s, perm, rank, shift)
    _assert_same(self, got, _exact(s, 4, perm, shift))


if __name__ == '__main__':
  absltest.main()
