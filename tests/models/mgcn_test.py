"""MGCN: shapes, finite gradients, masked items, the docstring equations."""

import dataclasses
import functools

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.graph import sparse
from mmjax.models import mgcn
from mmjax.models import options
from tests.testing import fixtures
from tests.testing import numerics

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name='mgcn', embed_dim=4, num_layers=2, num_mm_layers=1, knn_k=3,
      reg_weight=0.3, cl_weight=0.7, temperature=0.2, train_features=True))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def _np_knn_weighted(x, mask, k):
  """Dense weighted top-k cosine graph (self included), D^-1/2 S D^-1/2."""
  n = len(x)
  norm = np.linalg.norm(x, axis=1)
  valid = mask & (norm > 0)
  xn = np.where(valid[:, None], x / np.where(norm > 0, norm, 1)[:, None], 0)
  sim = xn @ xn.T
  sim[:, ~valid] = -np.inf
  # The float32 graph on device (error < 1e-6 here) and this float64 one
  # pick the same neighbours on any CPU only if no row has a near-tie at
  # its k-th.
  assert numerics.topk_margin(sim[valid], k, ordered=False).min() > 1e-5, (
      'near-tied k-th neighbour: choose other test data')
  a = np.zeros((n, n))
  for i in np.flatnonzero(valid):
    nb = np.argsort(-sim[i], kind='stable')[:k]
    nb = nb[np.isfinite(sim[i, nb])]
    a[i, nb] = sim[i, nb]
  d = a.sum(1)
  inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
  return inv[:, None] * a * inv[None, :]


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _np_info_nce(a, b, w, tau):
  # F.normalize: x / max(|x|, 1e-12), so a zero row (an item lacking its
  # only modality has side = 0) stays zero.
  a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
  b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
  real = w > 0
  a, b = a[real], b[real]
  pos = np.exp(np.sum(a * b, 1) / tau)
  ttl = np.exp(a @ b.T / tau).sum(1)
  return np.mean(-np.log(pos / ttl))


def _np_mgcn(p, ctx, cfg, batch):
  """(loss, users [U, D], items [I, D]) from the module doc, in numpy."""
  m_cfg = cfg.model
  names = list(ctx.features)
  masks = [np.asarray(ctx.masks[n]) for n in names]
  a = sparse.to_dense(ctx.graph).astype(np.float64)
  r = a[:NUM_USERS, NUM_USERS:]
  e = np.concatenate([p['user'], p['item']])
  layers = [e]
  for _ in range(m_cfg.num_layers):
    layers.append(a @ layers[-1])
  content = np.mean(layers, axis=0)
  views = []
  for m, (name, mk) in enumerate(zip(names, masks)):
    s = _np_knn_weighted(np.asarray(ctx.features[name], np.float64), mk,
                         m_cfg.knn_k)
    x = p['features'][m] * mk[:, None]
    t = x @ p['trs'][m]['w'] + p['trs'][m]['b']
    h = p['item'] * _sigmoid(t @ p['gate'][m]['w'] + p['gate'][m]['b'])
    h = h * mk[:, None]
    for _ in range(m_cfg.num_mm_layers):
      h = s @ h
    views.append(np.concatenate([r @ h, h]))
  q = p['query']
  att = np.stack([(np.tanh(v @ q['w'] + q['b']) @ q['v'])[:, 0]
                  for v in views], axis=1)
  alpha = np.exp(att - att.max(1, keepdims=True))
  alpha /= alpha.sum(1, keepdims=True)
  common = sum(alpha[:, m:m + 1] * v for m, v in enumerate(views))
  side = common.copy()
  for m, v in enumerate(views):
    prefer = _sigmoid(content @ p['prefer'][m]['w'] + p['prefer'][m]['b'])
    side += prefer * (v - common)
  side /= len(views) + 1
  full = content + side
  u_all, i_all = full[:NUM_USERS], full[NUM_USERS:]

  uu, ii = np.asarray(batch['users']), np.asarray(batch['pos'])
  jj = np.asarray(batch['neg'])
  jj = jj[:, None] if jj.ndim == 1 else jj
  w = np.asarray(batch['mask'], np.float64)
  u = u_all[uu]
  s_pos = np.sum(u * i_all[ii], 1)
  s_neg = np.einsum('bd,bkd->bk', u, i_all[jj])
  logsig = -np.logaddexp(0, -(s_pos[:, None] - s_neg))
  mf = -np.sum(w * logsig.mean(1)) / w.sum()
  sq = (np.sum(u ** 2, 1) + np.sum(i_all[ii] ** 2, 1)
        + np.mean(np.sum(i_all[jj] ** 2, 2), 1))
  reg = 0.5 * np.sum(w * sq) / w.sum()
  cl = (_np_info_nce(side[NUM_USERS:][ii], content[NUM_USERS:][ii], w,
                     m_cfg.temperature)
        + _np_info_nce(side[:NUM_USERS][uu], content[:NUM_USERS][uu], w,
                       m_cfg.temperature))
  total = mf + m_cfg.reg_weight * reg + m_cfg.cl_weight * cl
  return total, u_all, i_all


def _perturbed_params(ctx, cfg, seed):
  """init's parameters with every bias set to non-zero hand-drawn values."""
  params = mgcn.init(jax.random.key(seed), ctx, cfg.model)
  rng = np.random.default_rng([seed, 1])

  def perturb(path, x):
    if getattr(path[-1], 'key', None) == 'b':
      return x + jnp.asarray(rng.uniform(-0.5, 0.5, x.shape), x.dtype)
    return x

  return jax.tree_util.tree_map_with_path(perturb, params)


class MgcnTest(parameterized.TestCase):

  @parameterized.parameters(1, 2, 3)
  def test_shapes_and_finite_grads(self, num_modalities):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config()
    params = mgcn.init(jax.random.key(0), ctx, cfg.model)
    self.assertLen(params['trs'], num_modalities)
    self.assertLen(params['gate'], num_modalities)
    self.assertLen(params['prefer'], num_modalities)
    self.assertEqual(params['query']['v'].shape, (4, 1))
    users, items = jax.jit(lambda p, c: mgcn.embed(p, c, cfg.model))(
        params, ctx)
    self.assertEqual(users.shape, (NUM_USERS, 4))
    self.assertEqual(items.shape, (NUM_ITEMS, 4))
    batch = fixtures.make_batch(num_negatives=2)
    (value, aux), grads = jax.jit(jax.value_and_grad(
        lambda p, c: mgcn.loss(p, batch, c, jax.random.key(1), cfg.model),
        has_aux=True))(params, ctx)
    self.assertEqual(value.shape, ())
    self.assertEqual(set(aux), {'bpr', 'reg', 'cl'})
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    # Every parameter is used: each gets a non-zero gradient somewhere,
    # except, with one modality, the fuser's (alpha = 1, sep_1 = 0).
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
      top = path[0].key
      if num_modalities == 1 and top in ('query', 'prefer'):
        self.assertEqual(float(jnp.abs(g).max()), 0.0, path)
      else:
        self.assertGreater(float(jnp.abs(g).max()), 0.0, path)
    # Masked feature rows get no gradient: they stay zero.
    for m, mask in enumerate(ctx.masks.values()):
      np.testing.assert_array_equal(
          np.asarray(grads['features'][m])[~np.asarray(mask)], 0.0)

  # A batch of 24 rows is larger than both tables (12 users, 20 items): the
  # InfoNCE terms take their per-table-row path.
  @parameterized.parameters(
      (1, 1, None, 8), (2, 1, None, 8), (3, 2, 2, 8), (2, 0, 3, 8),
      (2, 1, None, 24),
  )
  def test_equations(self, num_modalities, num_mm_layers, num_negatives,
                     batch_size):
    ctx = fixtures.make_context(num_modalities, seed=7)
    cfg = make_config(num_mm_layers=num_mm_layers)
    params = _perturbed_params(ctx, cfg, seed=2)
    batch = fixtures.make_batch(seed=5, size=batch_size,
                                num_negatives=num_negatives)
    got, _ = mgcn.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    got_u, got_i = mgcn.embed(params, ctx, cfg.model)
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    ref, ref_u, ref_i = _np_mgcn(p, ctx, cfg, batch)
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got_u), ref_u, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), ref_i, rtol=1e-5,
                               atol=1e-6)

  def test_frozen_features_variant(self):
    ctx = fixtures.make_context(2, seed=3)
    cfg = make_config(train_features=False)
    params = mgcn.init(jax.random.key(4), ctx, cfg.model)
    self.assertNotIn('features', params)
    batch = fixtures.make_batch(seed=1)
    got, _ = mgcn.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    # The same as the trainable variant at its initial (= context) values.
    cfg_t = make_config(train_features=True)
    params_t = dict(params, features=[
        jnp.where(m[:, None], x, 0.0)
        for x, m in zip(ctx.features.values(), ctx.masks.values())])
    want, _ = mgcn.loss(params_t, batch, ctx, jax.random.key(0), cfg_t.model)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)

  def test_info_nce_leaves_padded_rows_out(self):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 3)).astype(np.float32)
    b = rng.normal(size=(6, 3)).astype(np.float32)
    w = np.array([1, 1, 0, 1, 1, 0], np.float32)
    rows = jnp.arange(6)
    # 0.5 takes the shifted-exp path, 0.03 the logsumexp one.
    for tau in (0.5, 0.03):
      got = mgcn.info_nce(jnp.asarray(a), jnp.asarray(b), rows,
                          jnp.asarray(w), tau)
      np.testing.assert_allclose(float(got), _np_info_nce(a, b, w, tau),
                                 rtol=1e-5)
    # A batch with no real row gives 0 and finite gradients.
    value, grad = jax.value_and_grad(lambda x: mgcn.info_nce(
        x, jnp.asarray(b), rows, jnp.zeros(6), 0.5))(jnp.asarray(a))
    self.assertEqual(float(value), 0.0)
    self.assertTrue(np.isfinite(np.asarray(grad)).all())
    # Hand-computed: two identical unit rows; the positive is 1 of 2 terms.
    e = jnp.asarray([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(
        float(mgcn.info_nce(e, e, jnp.arange(2), jnp.ones(2), 1.0)),
        np.log(2.0), rtol=1e-6)

  def test_info_nce_over_a_table_smaller_than_the_batch(self):
    # 12 batch rows drawn from a 5-row table (duplicates; row 4 only on a
    # padded row, row 0 on real rows and a padded one): the table path
    # weighs each row by its count among the real rows.
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 4)).astype(np.float32)
    b = rng.normal(size=(5, 4)).astype(np.float32)
    rows = np.array([0, 1, 1, 2, 0, 3, 3, 3, 1, 0, 4, 2])
    w = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1], np.float32)
    # The same rows in a table of 12 (zero rows appended) take the batch
    # path: gather, then the [B, B] block.
    pad = np.zeros((7, 4), np.float32)

    @functools.partial(jax.jit, static_argnames='tau')
    def table_path(a, b, tau, w=w):
      return mgcn.info_nce(a, b, jnp.asarray(rows), jnp.asarray(w), tau)

    @functools.partial(jax.jit, static_argnames='tau')
    def batch_path(a, b, tau, w=w):
      return mgcn.info_nce(jnp.concatenate([a, pad]),
                           jnp.concatenate([b, pad]), jnp.asarray(rows),
                           jnp.asarray(w), tau)

    a, b = jnp.asarray(a), jnp.asarray(b)
    for tau in (0.5, 0.03):
      want = _np_info_nce(np.asarray(a)[rows], np.asarray(b)[rows], w, tau)
      for fn in (table_path, batch_path):
        np.testing.assert_allclose(float(fn(a, b, tau)), want, rtol=1e-5)
      got = jax.grad(table_path, argnums=(0, 1))(a, b, tau)
      ref = jax.grad(batch_path, argnums=(0, 1))(a, b, tau)
      for g, r in zip(got, ref):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4,
                                   atol=1e-6)
      # Row 4 sits on a padded row only: no gradient reaches it.
      self.assertEqual(float(jnp.abs(got[0][4]).sum()), 0.0)
      self.assertEqual(float(jnp.abs(got[1][4]).sum()), 0.0)
      # A batch with no real row: 0 and finite gradients on either path.
      for fn in (table_path, batch_path):
        value, grads = jax.value_and_grad(fn, argnums=(0, 1))(
            a, b, tau, np.zeros(12, np.float32))
        self.assertEqual(float(value), 0.0)
        for g in grads:
          self.assertTrue(np.isfinite(np.asarray(g)).all())

  def test_masked_items_ignore_their_feature_rows(self):
    ctx = fixtures.make_context(2, masked_share=0.2, seed=4)
    cfg = make_config(train_features=False, num_mm_layers=0)
    params = _perturbed_params(ctx, cfg, seed=6)
    batch = fixtures.make_batch(seed=2)
    # Garbage in the rows of items lacking a modality changes nothing.
    rng = np.random.default_rng(3)
    noisy = {n: jnp.where(ctx.masks[n][:, None], x,
                          jnp.asarray(rng.normal(size=x.shape), x.dtype))
             for n, x in ctx.features.items()}
    ctx_noisy = dataclasses.replace(ctx, features=noisy)
    for c in (ctx, ctx_noisy):
      self.assertTrue(np.isfinite(float(
          mgcn.loss(params, batch, c, jax.random.key(0), cfg.model)[0])))
    np.testing.assert_array_equal(
        np.asarray(mgcn.embed(params, ctx, cfg.model)[1]),
        np.asarray(mgcn.embed(params, ctx_noisy, cfg.model)[1]))
    # ... and they are nobody's neighbour in the frozen item graphs.
    graphs = mgcn.prepare(ctx, make_config().model)['item_graphs']
    for g, mask in zip(graphs, ctx.masks.values()):
      dense = sparse.to_dense(g)
      masked = ~np.asarray(mask)
      self.assertTrue(masked.any())
      np.testing.assert_array_equal(dense[masked], 0.0)
      np.testing.assert_array_equal(dense[:, masked], 0.0)

  def test_precomputed_extras_give_the_same_loss(self):
    ctx = fixtures.make_context(2)
    cfg = make_config()
    params = mgcn.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch()
    plain, _ = mgcn.loss(params, batch, ctx, jax.random.key(3), cfg.model)
    rich = dataclasses.replace(
        ctx, extras={'mgcn': mgcn.prepare(ctx, cfg.model)})
    cached, _ = mgcn.loss(params, batch, rich, jax.random.key(3), cfg.model)
    self.assertEqual(float(plain), float(cached))

  def test_deterministic_one_compile(self):
    ctx = fixtures.make_context(2)
    cfg = make_config()
    params = mgcn.init(jax.random.key(0), ctx, cfg.model)
    again = mgcn.init(jax.random.key(0), ctx, cfg.model)
    for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    batch = fixtures.make_batch(num_negatives=2)
    step = jax.jit(jax.grad(
        lambda p, c, k: mgcn.loss(p, batch, c, k, cfg.model)[0]))
    first = step(params, ctx, jax.random.key(1))
    # MGCN draws nothing at random: another key gives the same bits, and
    # the step compiles once (static shapes).
    second = step(params, ctx, jax.random.key(2))
    for x, y in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    self.assertEqual(step._cache_size(), 1)  # pylint: disable=protected-access


if __name__ == '__main__':
  absltest.main()
