"""The shuffle's radix sort (csrc/sort.cc) against JAX and numpy, bitwise.

`shuffle.permutation` must return exactly `jax.random.permutation`: the
epoch order of every training run depends on it, and runs made before the
kernel must reproduce. So it is checked for sizes on both sides of the
one-to-two-round boundary (n = 1,625 / 1,626), ML-100K's training size,
odd and larger ones, typed, raw and non-counter-based keys, eagerly, inside
`jit` and `vmap`, and under an 8-device mesh with replicated inputs as the
epoch program runs it. The sort itself is checked against
`np.argsort(kind='stable')` with many equal keys, keys that differ in one
radix digit only, and negative values. Kernel tests skip when the kernel
cannot be built here (no compiler); the fallback test runs everywhere.
"""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.graph import kernel
from mmjax.graph.kernel import shuffle
from mmjax.train import sampler

P = jax.sharding.PartitionSpec

# One jitted function each, so that the keys of one size compile once. The
# kernel settings are read at trace time: `_kernel_perm` is only called in
# mode 'kernel'.
_jax_perm = jax.jit(jax.random.permutation, static_argnums=1)
_kernel_perm = jax.jit(shuffle.permutation, static_argnums=1)
_kernel_sort = jax.jit(shuffle.sort_key_val)


def _assert_same(test, got, want):
  test.assertEqual(got.dtype, want.dtype)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@absltest.skipUnless(kernel.available(), 'kernel not built: ' +
                     str(kernel.status()['reason']))
class SortKernelTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(kernel.configured('kernel'))

  def test_dispatches_to_kernel(self):
    self.assertTrue(shuffle.in_use())
    jaxpr = str(jax.make_jaxpr(lambda k: shuffle.permutation(k, 4096))(
        jax.random.key(0)))
    self.assertEqual(jaxpr.count('mmjax_sort_key_val'), 2)  # Two rounds.
    self.assertNotIn('sort[', jaxpr)

  # Odd sizes too: they draw one bit more and drop it (`shuffle._bits`).
  @parameterized.parameters(1, 2, 17, 1625, 1626, 4096, 43854, 122723, 200000)
  def test_permutation_equals_jax(self, n):
    self.assertEqual(shuffle.num_rounds(n), {1: 0, 2: 1, 17: 1, 1625: 1}.get(
        n, 2))
    for seed in (0, 11):
      key = jax.random.key(seed)
      _assert_same(self, _kernel_perm(key, n), _jax_perm(key, n))

  def test_eager_raw_key_and_empty(self):
    key = jax.random.key(5)
    _assert_same(self, shuffle.permutation(key, 300),
                 jax.random.permutation(key, 300))
    raw = jax.random.PRNGKey(6)  # A legacy uint32 key, as callers may hold.
    _assert_same(self, shuffle.permutation(raw, 300),
                 jax.random.permutation(raw, 300))
    _assert_same(self, shuffle.permutation(key, 0),
                 jax.random.permutation(key, 0))

  def test_bits_not_counter_based(self):
    """Keys whose bits for n + 1 do not start with those for n draw n (odd
    sizes, where `shuffle._bits` would otherwise draw one more)."""
    def check(key):
      self.assertFalse(shuffle._counter_based(key))
      both = jax.jit(lambda k: (shuffle.permutation(k, 301),
                                jax.random.permutation(k, 301)))
      _assert_same(self, *both(key))

    check(jax.random.key(3, impl='rbg'))
    with jax.threefry_partitionable(False):
      check(jax.random.key(3))

  def test_vmap(self):
    keys = jax.random.split(jax.random.key(2), 3)
    both = jax.jit(jax.vmap(lambda k: (shuffle.permutation(k, 77),
                                       jax.random.permutation(k, 77))))
    _assert_same(self, *both(keys))

  def test_replicated_over_8_devices(self):
    """As `make_epoch_fn` runs it: jitted with replicated in and out
    shardings under the mesh; every device holds the whole permutation."""
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    repl = jax.sharding.NamedSharding(mesh, P())
    n = 43854
    fn = lambda f: jax.jit(  # noqa: E731
        lambda k, e: f(jax.random.fold_in(k, e), n),
        in_shardings=repl, out_shardings=repl)
    key = jax.random.key(4)
    want = fn(jax.random.permutation)(key, 3)
    with jax.set_mesh(mesh):
      got = fn(shuffle.permutation)(key, 3)
    _assert_same(self, got, want)
    self.assertEqual(len(got.addressable_shards), 8)
    for shard in got.addressable_shards:
      np.testing.assert_array_equal(np.asarray(shard.data), np.asarray(want))

  def test_epoch_order_uses_kernel_and_is_unchanged(self):
    n, batch = 1000, 64
    td = sampler.TrainData(
        users=jnp.zeros(n, jnp.int32), items=jnp.zeros(n, jnp.int32),
        indptr=jnp.zeros(2, jnp.int32), shifted=jnp.zeros(0, jnp.int32),
        candidates=jnp.zeros(1, jnp.int32), num_items=1, search_steps=1)
    key = jax.random.key(9)
    with mock.patch.object(shuffle, 'permutation',
                           wraps=shuffle.permutation) as spy:
      index, mask = sampler.epoch_order(td, key, batch)
    spy.assert_called_once()
    want = np.asarray(jax.random.permutation(key, n))
    np.testing.assert_array_equal(np.asarray(index).ravel()[:n], want)
    np.testing.assert_array_equal(np.asarray(index).ravel()[n:], 0)
    self.assertEqual(float(np.asarray(mask).sum()), n)

  @parameterized.named_parameters(
      ('few_keys', 10000, lambda r, n: r.integers(0, 5, n)),
      # Keys that differ only in the top, middle or bottom radix digit: the
      # other passes are skipped.
      ('top_digit', 3000, lambda r, n: r.integers(0, 1024, n) << 22),
      ('middle_digit', 3000, lambda r, n: r.integers(0, 2048, n) << 11 | 5),
      ('bottom_digit', 3000, lambda r, n: r.integers(0, 2048, n)),
      ('all_equal', 999, lambda r, n: np.full(n, 2**32 - 1)),
      ('full_range', 70000, lambda r, n: np.concatenate(
          [[0, 2**32 - 1, 2**31], r.integers(0, 2**32, n - 3)])),
      ('one', 1, lambda r, n: r.integers(0, 2**32, n)),
  )
  def test_sort_is_stable_argsort(self, n, draw):
    rng = np.random.default_rng(n)
    keys = draw(rng, n).astype(np.uint32)
    # Values with every bit pattern, negative ones included.
    values = rng.integers(-2**31, 2**31, n).astype(np.int32)
    got = _kernel_sort(keys, values)
    want = values[np.argsort(keys, kind='stable')]
    _assert_same(self, got, want)
    _assert_same(self, got, jax.lax.sort_key_val(keys, values)[1])

  def test_sort_rejects_mismatched_shapes(self):
    with self.assertRaisesRegex(ValueError, 'one \\[n\\]'):
      shuffle.sort_key_val(np.zeros(3, np.uint32), np.zeros(4, np.int32))


class FallbackTest(absltest.TestCase):

  def test_reference_mode_uses_jax(self):
    key = jax.random.key(1)
    with kernel.configured('reference'):
      self.assertFalse(shuffle.in_use())
      fn = lambda k: shuffle.permutation(k, 1700)  # noqa: E731
      self.assertNotIn('mmjax_sort_key_val', str(jax.make_jaxpr(fn)(key)))
      got = jax.jit(fn)(key)
      keys = np.asarray([3, 1, 3, 0], np.uint32)
      sorted_values = shuffle.sort_key_val(keys, np.arange(4, dtype=np.int32))
    _assert_same(self, got, jax.random.permutation(key, 1700))
    np.testing.assert_array_equal(sorted_values, [3, 1, 0, 2])


if __name__ == '__main__':
  absltest.main()
