"""The compiled propagation kernel against the segment_sum reference.

Kernel tests skip when the kernel cannot be built here (no compiler); the
fallback tests run everywhere.
"""

import os
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
from jax import test_util as jtu
import jax.numpy as jnp
import numpy as np

from mmjax.graph import kernel
from mmjax.graph import sparse
from mmjax.graph.kernel import ops


def _graph(seed, n, e, symmetric=False):
  rng = np.random.default_rng([seed, n, e])
  s, r = rng.integers(0, n, e), rng.integers(0, n, e)
  w = (rng.random(e) + 0.1).astype(np.float32)
  if symmetric:
    s, r, w = np.concatenate([s, r]), np.concatenate([r, s]), np.tile(w, 2)
  return sparse.from_edges(s, r, w, n)


def _power_law_graph(seed, n, e):
  """Some rows hold most edges, many rows none."""
  rng = np.random.default_rng([seed, n, e])
  p = 1.0 / np.arange(1, n + 1) ** 1.2
  r = rng.choice(n, size=e, p=p / p.sum())
  s = rng.integers(0, n, e)
  return sparse.from_edges(s, r, rng.random(e).astype(np.float32), n)


def _x(seed, n, d, dtype=np.float32):
  return np.random.default_rng([seed, n, d]).standard_normal((n, d)).astype(
      dtype
  )


def _uses_kernel(fn, *args):
  # A fresh function each time: traces are cached per function, and the
  # kernel settings are read at trace time.
  return 'mmjax_spmm' in str(jax.make_jaxpr(lambda *a: fn(*a))(*args))


@absltest.skipUnless(kernel.available(), 'kernel not built: ' +
                     str(kernel.status()['reason']))
class KernelTest(parameterized.TestCase):

  def test_status(self):
    st = kernel.status()
    self.assertTrue(st['built'] and st['loaded'] and st['in_use'], st)
    self.assertGreaterEqual(st['threads'], 1)
    self.assertTrue(os.path.exists(st['path']))

  def test_propagate_dispatches_to_kernel(self):
    g = _graph(0, 10, 30)
    self.assertTrue(_uses_kernel(sparse.propagate, g, _x(0, 10, 4)))
    # float64 inputs take the reference.
    with jax.enable_x64(True):
      self.assertFalse(
          _uses_kernel(sparse.propagate, g, _x(0, 10, 4, np.float64))
      )

  @parameterized.named_parameters(
      ('random', 0, 50, 400, 16),
      ('d1', 1, 33, 200, 1),
      ('d_odd', 2, 33, 200, 23),
      ('d_tails', 3, 40, 300, 64 + 32 + 16 + 8 + 3),
      ('d1024', 4, 20, 120, 1024),
      ('single_node', 5, 1, 3, 8),
      ('no_edges', 6, 9, 0, 8),
      ('empty_rows', 7, 200, 30, 8),
      ('power_law', 8, 500, 20000, 32),
  )
  def test_forward_matches_reference(self, seed, n, e, d):
    g = _power_law_graph(seed, n, e) if seed == 8 else _graph(seed, n, e)
    x = _x(seed, n, d)
    got = np.asarray(jax.jit(sparse.propagate)(g, x))
    want = np.asarray(sparse.propagate_reference(g, x))
    a = sparse.to_dense(g).astype(np.float64)
    # float32 sums in different orders differ by about eps * sum |a_k x_k|.
    scale = np.abs(a) @ np.abs(x.astype(np.float64)) + 1e-6
    self.assertLess(np.max(np.abs(got - want) / scale), 1e-5)
    self.assertLess(np.max(np.abs(got - a @ x) / scale), 1e-5)

  @parameterized.named_parameters(
      ('non_symmetric', False, 40, 250, 12),
      ('symmetric', True, 30, 120, 64),
      ('power_law', None, 300, 6000, 20),
      ('d_tails', False, 30, 200, 64 + 32 + 16 + 8 + 3),
  )
  def test_gradients_match_reference(self, symmetric, n, e, d):
    g = (_power_law_graph(9, n, e) if symmetric is None
         else _graph(10, n, e, symmetric))
    x = _x(11, n, d)
    c = _x(12, n, d)  # cotangent weights of a linear loss

    def loss(prop, w, x):
      return jnp.sum(c * jnp.tanh(prop(g.with_weights(w), x)))

    got = jax.jit(jax.grad(lambda w, x: loss(sparse.propagate, w, x),
                           (0, 1)))(g.weights, x)
    want = jax.grad(lambda w, x: loss(sparse.propagate_reference, w, x),
                    (0, 1))(g.weights, x)
    for a, b in zip(got, want):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4,
                                 atol=1e-5)

  def test_backward_computes_what_is_needed(self):
    g = _graph(30, 12, 40)
    x = jnp.asarray(_x(30, 12, 8))

    def loss(w, x):
      return jnp.sum(sparse.propagate(g.with_weights(w), x) ** 2)

    def calls(argnums):
      jaxpr = str(jax.make_jaxpr(jax.grad(loss, argnums))(g.weights, x))
      return {t for t in ('mmjax_spmm_t_dw', 'mmjax_edge_dot')
              if t in jaxpr}

    # x only: A^T g alone; with the weights: one fused sweep over A^T.
    self.assertEqual(calls(1), set())
    self.assertEqual(calls((0, 1)), {'mmjax_spmm_t_dw'})
    self.assertEqual(calls(0), {'mmjax_spmm_t_dw'})

  def test_gradients_float64_formula(self):
    # loss = sum(c * A x): dx = A^T c, dw[e] = <c[r_e], x[s_e]>, in float64.
    g = _graph(13, 25, 160)
    x, c = _x(14, 25, 7), _x(15, 25, 7)
    dw, dx = jax.grad(
        lambda w, x: jnp.sum(c * sparse.propagate(g.with_weights(w), x)),
        (0, 1),
    )(g.weights, x)
    a = sparse.to_dense(g).astype(np.float64)
    np.testing.assert_allclose(dx, a.T @ c.astype(np.float64), rtol=1e-5,
                               atol=1e-5)
    s, r = np.asarray(g.senders), np.asarray(g.receivers)
    want_dw = np.einsum('ed,ed->e', c[r].astype(np.float64),
                        x[s].astype(np.float64))
    np.testing.assert_allclose(dw, want_dw, rtol=1e-5, atol=1e-5)

  def test_finite_differences(self):
    g = _graph(16, 12, 50)
    x = _x(17, 12, 5)

    def f(w, x):
      return jnp.sin(sparse.propagate(g.with_weights(w), x))

    jtu.check_grads(f, (jnp.asarray(g.weights), jnp.asarray(x)), order=1,
                    modes=['rev'], eps=1e-2, atol=2e-2, rtol=2e-2)

  def test_graph_built_on_device_without_transpose(self):
    # knn.to_graph-style: a Graph made under jit has no t_ fields.
    n, k = 30, 4
    rng = np.random.default_rng(18)
    idx = jnp.asarray(rng.integers(0, n, (n, k)), jnp.int32)
    val = jnp.asarray(rng.random((n, k)), jnp.float32)
    x = jnp.asarray(_x(19, n, 6))

    def make(val):
      return sparse.Graph(
          senders=idx.reshape(-1),
          receivers=jnp.repeat(jnp.arange(n, dtype=jnp.int32), k),
          weights=val.reshape(-1),
          indptr=jnp.arange(0, n * k + 1, k, dtype=jnp.int32),
          num_nodes=n,
      )

    def loss(prop, val, x):
      return jnp.sum(jnp.cos(prop(make(val), x)))

    got = jax.jit(jax.grad(lambda v, x: loss(sparse.propagate, v, x),
                           (0, 1)))(val, x)
    want = jax.grad(lambda v, x: loss(sparse.propagate_reference, v, x),
                    (0, 1))(val, x)
    for a, b in zip(got, want):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

  def test_vmap(self):
    g = _graph(20, 15, 60)
    xs = np.stack([_x(21 + i, 15, 9) for i in range(3)])
    got = jax.vmap(lambda x: sparse.propagate(g, x))(xs)
    want = np.stack([sparse.to_dense(g) @ x for x in xs])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

  def test_result_independent_of_threads(self):
    g = _power_law_graph(22, 400, 30000)
    x = _x(23, 400, 40)
    prop = jax.jit(sparse.propagate)
    before = np.asarray(prop(g, x))
    try:
      kernel.set_num_threads(1)
      self.assertEqual(kernel.num_threads(), 1)
      one = np.asarray(jax.jit(sparse.propagate)(g, x + 0))
    finally:
      kernel.set_num_threads(0)
    # Each row's sum runs in one thread in a fixed order: bitwise equal.
    np.testing.assert_array_equal(before, one)

  def test_disabled_by_configure_not_by_env_at_trace_time(self):
    g = _graph(24, 10, 30)
    x = _x(24, 10, 4)
    with kernel.configured('reference'):
      self.assertFalse(_uses_kernel(sparse.propagate, g, x))
      st = kernel.status()
      self.assertFalse(st['in_use'])
      self.assertEqual((st['mode'], st['settings_from']),
                       ('reference', 'configure'))
    self.assertTrue(_uses_kernel(sparse.propagate, g, x))
    # The environment was read once, at the first use: changing it later
    # changes nothing.
    with mock.patch.dict(os.environ, {'MMJAX_KERNEL': '0'}):
      self.assertTrue(_uses_kernel(sparse.propagate, g, x))

  def test_records_the_path_taken(self):
    g = _graph(31, 20, 60, symmetric=True)
    x = jnp.asarray(_x(31, 20, 4))

    def step():
      # A fresh function per trace: jit caches traces per function, and
      # the settings are not part of its cache key.
      def grads(w, x):
        return jax.grad(lambda w, x: jnp.sum(
            sparse.propagate(g.with_weights(w), x) ** 2), (0, 1))(w, x)
      return jax.jit(grads)(g.weights, x)

    with sparse.recording_paths() as one:
      step()
    self.assertEqual(one, {sparse.KERNEL})
    mesh = jax.make_mesh((8,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,))
    with sparse.recording_paths() as split, jax.set_mesh(mesh):
      step()
    self.assertEqual(split, {'kernel_row_split(data=8)'})
    with kernel.configured('reference'), sparse.recording_paths() as ref:
      step()
    self.assertEqual(ref, {sparse.REFERENCE})
    step()  # Traced outside a block: recorded nowhere.
    self.assertEqual((one, ref), ({sparse.KERNEL}, {sparse.REFERENCE}))
    record = sparse.run_record(split | one)
    self.assertEqual(record['paths'], ['kernel', 'kernel_row_split(data=8)'])
    self.assertTrue(record['kernel']['in_use'])
    self.assertEqual(record['kernel']['mode'], kernel.settings().mode)

  def test_row_blocks_pad_with_zeros(self):
    # Blocks past N (devices beyond the last row) are zeros, not garbage.
    g = _graph(25, 10, 40)
    x = jnp.asarray(_x(25, 10, 8))
    p = (jnp.asarray(g.indptr), jnp.asarray(g.senders),
         jnp.asarray(g.weights), jnp.zeros((0,), jnp.int32), x)
    full = sparse.to_dense(g) @ np.asarray(x)
    block = ops._spmm_call(*p, jnp.int32(8), 4)
    np.testing.assert_allclose(block[:2], full[8:], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(block[2:], 0.0)
    dots = ops._edge_dot_call(p[0], p[1], x, x, jnp.int32(36), 8)
    s, r = np.asarray(g.senders), np.asarray(g.receivers)
    want = np.einsum('ed,ed->e', np.asarray(x)[r[36:]], np.asarray(x)[s[36:]])
    np.testing.assert_allclose(dots[:4], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(dots[4:], 0.0)


@absltest.skipUnless(kernel.available(), 'kernel not built')
class ShardedTest(parameterized.TestCase):

  @parameterized.parameters((8, 61, 500, 24), (4, 10, 30, 8))
  def test_row_split_equals_one_device(self, devices, n, e, d):
    mesh = jax.make_mesh((devices,), ('data',),
                         axis_types=(jax.sharding.AxisType.Auto,),
                         devices=jax.devices()[:devices])
    g = _graph(26, n, e, symmetric=True)
    x = jnp.asarray(_x(27, n, d))
    c = jnp.asarray(_x(28, n, d))

    def step(w, x):
      def loss(w, x):
        return jnp.sum(c * jnp.tanh(sparse.propagate(g.with_weights(w), x)))
      return jax.value_and_grad(loss, (0, 1))(w, x)

    one = jax.jit(step)(g.weights, x)
    with jax.set_mesh(mesh):
      rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
      w8, x8 = jax.device_put((g.weights, x), rep)
      sharded = jax.jit(step)
      text = sharded.lower(w8, x8).as_text()
      many = sharded(w8, x8)
    # Rows split then gathered: the kernel sees a block of ceil(N / P) rows.
    self.assertIn('all_gather', text)
    self.assertIn(f'tensor<{-(-n // devices)}x{d}xf32>', text)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(many)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


class FallbackTest(absltest.TestCase):

  def test_reference_when_disabled(self):
    g = _graph(29, 20, 80)
    x = _x(29, 20, 5)
    with kernel.configured('reference'):
      self.assertFalse(kernel.available())
      got = sparse.propagate(g, x)
      dx = jax.grad(lambda x: jnp.sum(sparse.propagate(g, x) ** 2))(x)
    a = sparse.to_dense(g)
    np.testing.assert_allclose(got, a @ x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, 2 * a.T @ (a @ x), rtol=1e-4, atol=1e-4)

  def test_settings_from_env(self):
    for value, mode in (('1', 'auto'), ('0', 'reference'),
                        ('kernel', 'kernel'), (' Reference ', 'reference')):
      with mock.patch.dict(os.environ, {'MMJAX_KERNEL': value,
                                        'MMJAX_KERNEL_BUILD': '0'}):
        self.assertEqual(kernel.from_env(),
                         kernel.Settings(mode, False, 'environment'))
    with mock.patch.dict(os.environ, {'MMJAX_KERNEL': 'off'}):
      with self.assertRaisesRegex(ValueError, "MMJAX_KERNEL='off': expected"):
        kernel.from_env()
    with self.assertRaisesRegex(ValueError, "mode 'fast': expected"):
      kernel.configure('fast')

  def test_configure_returns_and_configured_restores(self):
    before = kernel.settings()
    old = kernel.configure('reference', build=False)
    try:
      self.assertEqual(old, before)
      self.assertEqual(kernel.settings(),
                       kernel.Settings('reference', False, 'configure'))
      with kernel.configured('auto'):
        self.assertEqual(kernel.settings().mode, 'auto')
        self.assertFalse(kernel.settings().build)
      self.assertEqual(kernel.settings().mode, 'reference')
    finally:
      kernel.configure(old.mode, build=old.build)
    self.assertEqual((kernel.settings().mode, kernel.settings().build),
                     (before.mode, before.build))

  def test_missing_library_falls_back_with_one_warning(self):
    # A fresh process with no library and building forbidden: the reference
    # serves propagate, status says why, and the warning comes once.
    script = textwrap.dedent("""
        import numpy as np
        from mmjax.graph import kernel, sparse
        g = sparse.from_edges(np.array([0, 1]), np.array([1, 1]), None, 2)
        x = np.array([[1.0], [2.0]], np.float32)
        y1 = sparse.propagate(g, x)
        y2 = sparse.propagate(g, 2 * x)
        st = kernel.status()
        assert not st['in_use'] and not st['built'], st
        assert 'MMJAX_KERNEL_BUILD=0' in st['reason'], st
        assert np.allclose(y1, [[0.0], [3.0]]), y1
        assert np.allclose(y2, [[0.0], [6.0]]), y2
        # Mode 'kernel' asks for the kernel or an error, never a fallback.
        kernel.configure('kernel')
        try:
          sparse.propagate(g, 3 * x)
          raise AssertionError('no error in mode kernel')
        except RuntimeError as e:
          assert 'MMJAX_KERNEL_BUILD=0' in str(e), e
        print('ok')
    """)
    with tempfile.TemporaryDirectory() as tmp:
      env = dict(os.environ, MMJAX_KERNEL_DIR=tmp, MMJAX_KERNEL_BUILD='0',
                 JAX_PLATFORMS='cpu')
      env.pop('MMJAX_KERNEL', None)
      proc = subprocess.run([sys.executable, '-c', script], env=env,
                            capture_output=True, text=True, check=False,
                            cwd=os.path.dirname(os.path.dirname(
                                os.path.dirname(os.path.abspath(__file__)))))
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertIn('ok', proc.stdout)
    self.assertEqual(proc.stderr.count('kernel unavailable'), 1, proc.stderr)


if __name__ == '__main__':
  absltest.main()
