"""The Flax layers against numpy, and each model's layer parameters against
the layout and shapes of the module's own `init`."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from mmjax import models
from mmjax.graph import sparse
from mmjax.models import context
from mmjax.models import layers
from mmjax.models import options

NUM_USERS, NUM_ITEMS, D, F_V, F_T = 6, 5, 4, 3, 2


def _ctx():
  rng = np.random.default_rng(0)
  users = np.repeat(np.arange(NUM_USERS, dtype=np.int32), 2)
  items = np.asarray(rng.integers(0, NUM_ITEMS, 2 * NUM_USERS), np.int32)
  graph = sparse.sym_normalize(
      sparse.bipartite(users, items, NUM_USERS, NUM_ITEMS))
  features = {
      'textual': rng.standard_normal((NUM_ITEMS, F_T)).astype(np.float32),
      'visual': rng.standard_normal((NUM_ITEMS, F_V)).astype(np.float32)}
  return context.ModelContext(
      graph=graph, features=features,
      masks={m: np.ones(NUM_ITEMS, bool) for m in features},
      item_popularity=np.ones(NUM_ITEMS, np.float32), extras={},
      num_users=NUM_USERS, num_items=NUM_ITEMS)


def _cfg(name):
  """The model's declared options, with the sizes below where it has them."""
  sizes = {'embed_dim': D, 'content_dim': 3, 'num_layers': 2,
           'weight_size': 5, 'hyper_num': 3, 'train_features': True}
  declared = options.declared(name)
  return options.section(
      name, **{k: v for k, v in sizes.items() if k in declared})


def _shapes(tree):
  return jax.tree.map(lambda a: (a.shape, a.dtype), tree)


def _linear(features, use_bias=True):
  return layers.Linear(features, use_bias=use_bias)


# Per model: (module, its parameters in the model's params, the inputs'
# last dims). Modalities come in sorted order: textual (F_T), visual (F_V).
CASES = {
    'vbpr': lambda p: [
        (_linear(D), {'w': p['proj_w'], 'b': p['proj_b']}, [F_T + F_V])],
    'bm3': lambda p: [(_linear(D), p['predictor'], [D])] + [
        (_linear(D), p['proj'][m], [f]) for m, f in enumerate((F_T, F_V))],
    'freedom': lambda p: [
        (_linear(D), p['proj'][m], [f]) for m, f in enumerate((F_T, F_V))],
    'lattice': lambda p: [
        (_linear(D), p['proj'][m], [f]) for m, f in enumerate((F_T, F_V))],
    'mgcn': lambda p: [(layers.AttentionScore(D), p['query'], [D])] + [
        (_linear(D), p['trs'][m], [f]) for m, f in enumerate((F_T, F_V))] + [
            (_linear(D), p[name][m], [D]) for name in ('gate', 'prefer')
            for m in range(2)],
    'grcn': lambda p: [
        (_linear(3), p['mlp'][m], [f]) for m, f in enumerate((F_T, F_V))],
    'ngcf': lambda p: [(layers.BiInteraction(5), p['layer_0'], [D, D]),
                       (layers.BiInteraction(5), p['layer_1'], [5, 5])],
    'ngcf_m': lambda p: [
        (layers.BiInteraction(5), p['layer_0'], [D, D]),
        (_linear(D), {'w': p['proj_w'], 'b': p['proj_b']}, [F_T + F_V])],
    'lgmrec': lambda p: [
        (_linear(n, use_bias=False), {'w': p[name][m]}, [f])
        for name, n in (('trs', D), ('hyper', 3))
        for m, f in enumerate((F_T, F_V))],
}


class LayersTest(parameterized.TestCase):

  def test_linear_is_xw_plus_b_with_torch_default_init(self):
    x = np.random.default_rng(1).standard_normal((7, 9)).astype(np.float32)
    module = layers.Linear(4)
    params = module.init(jax.random.key(0), x)['params']
    np.testing.assert_allclose(
        module.apply({'params': params}, x),
        x.astype(np.float64) @ params['w'] + params['b'], rtol=1e-5,
        atol=1e-6)
    for leaf in (params['w'], params['b']):  # U(-1/sqrt(9), 1/sqrt(9))
      self.assertLessEqual(float(np.abs(leaf).max()), 1 / 3)
      self.assertLess(float(leaf.min()), 0.0)
    no_bias = layers.Linear(4, use_bias=False).init(jax.random.key(0), x)
    self.assertEqual(list(no_bias['params']), ['w'])

  def test_bi_interaction_and_attention_score_against_numpy(self):
    rng = np.random.default_rng(2)
    first, inter = (rng.standard_normal((6, 4)).astype(np.float32)
                    for _ in range(2))
    p = layers.BiInteraction(3).init(jax.random.key(1), first,
                                     inter)['params']
    z = first @ p['w1'] + p['b1'] + inter @ p['w2'] + p['b2']
    np.testing.assert_allclose(
        layers.apply(layers.BiInteraction(3), p, first, inter),
        np.where(z > 0, z, 0.2 * z), rtol=1e-5, atol=1e-6)
    q = layers.AttentionScore(5).init(jax.random.key(2), first)['params']
    np.testing.assert_allclose(
        layers.apply(layers.AttentionScore(5), q, first),
        np.tanh(first @ q['w'] + q['b']) @ q['v'], rtol=1e-5, atol=1e-6)

  @parameterized.parameters((7, 3), (3, 7))
  def test_matmul_value_and_gradients_against_numpy(self, f, d):
    # matmul computes the weight's gradient as (g^T x)^T where x is the
    # wider operand (f >= d), as x^T g otherwise: both must equal x^T g
    # (and g w^T for x), also for inputs with leading dims.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, f)).astype(np.float32)
    w = rng.standard_normal((f, d)).astype(np.float32)
    g = rng.standard_normal((2, 5, d)).astype(np.float32)
    y, vjp = jax.vjp(layers.matmul, x, w)
    dx, dw = vjp(g)
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    np.testing.assert_allclose(y, x64 @ w64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, g64 @ w64.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        dw, x64.reshape(-1, f).T @ g64.reshape(-1, d), rtol=1e-5, atol=1e-5)
    # The rewrite is taken exactly where it is meant to be (jax < 0.12 on
    # CPU, x the wider operand): its barriers show in the gradient's program.
    jaxpr = jax.make_jaxpr(
        lambda x, w, g: jax.vjp(layers.matmul, x, w)[1](g))(x, w, g)
    slow_dot = layers._SLOW_TRANSPOSED_DOT  # pylint: disable=protected-access
    rewritten = slow_dot and f >= d and jax.default_backend() == 'cpu'
    self.assertEqual('optimization_barrier' in str(jaxpr), rewritten)

  def test_pairwise_dots_value_and_gradients_against_numpy(self):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((6, 3)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    g = rng.standard_normal((6, 4)).astype(np.float32)
    y, vjp = jax.vjp(layers.pairwise_dots, a, b)
    da, db = vjp(g)
    a64, b64, g64 = (x.astype(np.float64) for x in (a, b, g))
    np.testing.assert_allclose(y, a64 @ b64.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(da, g64 @ b64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, g64.T @ a64, rtol=1e-5, atol=1e-5)
    # b's gradient goes through the barrier exactly where the rewrite is
    # meant to apply (jax < 0.12 on CPU).
    jaxpr = jax.make_jaxpr(
        lambda a, b, g: jax.vjp(layers.pairwise_dots, a, b)[1](g))(a, b, g)
    slow_dot = layers._SLOW_TRANSPOSED_DOT  # pylint: disable=protected-access
    self.assertEqual('optimization_barrier' in str(jaxpr),
                     slow_dot and jax.default_backend() == 'cpu')

  @parameterized.parameters(*sorted(CASES))
  def test_model_layer_params_have_the_module_layout(self, name):
    params = models.get_model(name).init(jax.random.key(0), _ctx(),
                                         _cfg(name))
    for module, ours, dims in CASES[name](params):
      inputs = [jax.ShapeDtypeStruct((2, d), np.float32) for d in dims]
      expected = jax.eval_shape(module.init, jax.random.key(0), *inputs)
      self.assertEqual(_shapes(ours), _shapes(expected['params']),
                       (name, module))


if __name__ == '__main__':
  absltest.main()
