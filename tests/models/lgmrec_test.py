"""LGMRec: shapes, finite gradients, masked items, docstring equations."""

import dataclasses
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.graph import sparse
from mmjax.models import lgmrec
from mmjax.models import options
from mmjax.train import defaults
from tests.testing import fixtures

_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'configs', 'x.py')

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS
DIM, HYPER = 4, 3


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name='lgmrec', embed_dim=DIM, cf_model='lightgcn', num_layers=2,
      num_mm_layers=2, num_hyper_layers=1, hyper_num=HYPER, keep_rate=0.5,
      alpha=0.3, cl_weight=0.05, reg_weight=0.01, tau=0.2, gumbel=True,
      eval_gumbel=True,
  ))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def _n(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _logsumexp(x):
  mx = x.max(-1, keepdims=True)
  return (mx + np.log(np.exp(x - mx).sum(-1, keepdims=True)))[..., 0]


def _draws(key, num_modalities, keep_rate):
  """The step's random draws, in the module's key derivation (noise, keep)."""
  noise_key, drop_key = (jax.random.fold_in(key, j) for j in (0, 1))
  out = []
  for m in range(num_modalities):
    draw = {}
    for j, (side, n) in enumerate((('i', NUM_ITEMS), ('u', NUM_USERS))):
      draw['g' + side] = np.asarray(jax.random.gumbel(
          jax.random.fold_in(noise_key, 2 * m + j), (n, HYPER)), np.float64)
      draw['k' + side] = np.asarray(jax.random.bernoulli(
          jax.random.fold_in(drop_key, 2 * m + j), keep_rate, (n, HYPER)))
    out.append(draw)
  return out


def np_forward(p, ctx, cfg, draws, train):
  """The module docstring's equations in float64 numpy, on dense matrices.

  Args:
    p: params as float64 numpy.
    ctx: the context.
    cfg: the config.
    draws: per modality {'gi', 'gu': Gumbel noise or None; 'ki', 'ku':
      dropout keep masks}.
    train: whether dropout applies.
  """
  mc = cfg.model
  a = sparse.to_dense(ctx.graph).astype(np.float64)  # [N, N]
  r = (a[:NUM_USERS, NUM_USERS:] > 0).astype(np.float64)  # [U, I]
  d_u = r.sum(1)
  e0 = np.concatenate([p['user'], p['item']])
  if mc.cf_model == 'lightgcn':
    layers_ = [e0]
    for _ in range(mc.num_layers):
      layers_.append(a @ layers_[-1])
    c = np.mean(layers_, axis=0)
  else:
    c = e0
  local, ghe, views = c.copy(), np.zeros_like(c), []
  for m, name in enumerate(ctx.features):
    x = np.asarray(ctx.features[name], np.float64)
    mask = np.asarray(ctx.masks[name])
    f = x @ p['trs'][m]
    g = np.concatenate([(r @ f) / np.maximum(d_u, 1)[:, None], f])
    for _ in range(mc.num_mm_layers):
      g = a @ g
    local += _n(g)
    li = x @ p['hyper'][m]
    lu = r @ li
    dr = draws[m]
    hi = _softmax((li + (dr['gi'] if dr['gi'] is not None else 0)) / mc.tau)
    hu = _softmax((lu + (dr['gu'] if dr['gu'] is not None else 0)) / mc.tau)
    if train:
      hi = hi * dr['ki'] / mc.keep_rate
      hu = hu * dr['ku'] / mc.keep_rate
    hi = hi * mask[:, None]
    z = c[NUM_USERS:]
    for _ in range(mc.num_hyper_layers):
      lat = hi.T @ z
      z, y = hi @ lat, hu @ lat
    ghe += np.concatenate([y, z])
    views.append((y, z))
  e = local + mc.alpha * _n(ghe)
  return e[:NUM_USERS], e[NUM_USERS:], views


def np_loss(p, batch, ctx, cfg, draws):
  mc = cfg.model
  u_all, i_all, views = np_forward(p, ctx, cfg, draws, train=True)
  uu, ii = np.asarray(batch['users']), np.asarray(batch['pos'])
  jj = np.asarray(batch['neg']).reshape(len(uu), -1)
  w = np.asarray(batch['mask'], np.float64)
  u = u_all[uu]
  diff = (u * i_all[ii]).sum(-1)[:, None] - np.einsum(
      'bd,bkd->bk', u, i_all[jj])
  bpr = np.sum(w * np.logaddexp(0, -diff).mean(1)) / w.sum()

  def ssl(e1, e2, allv, wts, valid):
    n1, n2, na = _n(e1), _n(e2), _n(allv)
    logits = n1 @ na.T / mc.tau
    logits = logits[:, valid]
    return np.sum(wts * (_logsumexp(logits) - (n1 * n2).sum(-1) / mc.tau))

  masks = [np.asarray(ctx.masks[n]) for n in ctx.features]
  hcl = 0.0
  for a in range(len(views)):
    for b in range(a + 1, len(views)):
      (ya, za), (yb, zb) = views[a], views[b]
      hcl += ssl(ya[uu], yb[uu], yb, w, np.ones(NUM_USERS, bool))
      hcl += ssl(za[ii], zb[ii], zb, w * masks[a][ii] * masks[b][ii],
                 masks[b])
  wm = w[:, None]
  reg = (np.linalg.norm(u * wm) + np.linalg.norm(i_all[ii] * wm)
         + np.linalg.norm(i_all[jj] * wm[:, :, None])) / w.sum()
  return bpr + mc.cl_weight * hcl + mc.reg_weight * reg


def _np_params(params):
  return jax.tree.map(lambda a: np.asarray(a, np.float64), params)


class LgmrecTest(parameterized.TestCase):

  @parameterized.parameters(1, 2, 3)
  def test_shapes_and_finite_grads(self, num_modalities):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config()
    params = lgmrec.init(jax.random.key(0), ctx, cfg.model)
    self.assertLen(params['trs'], num_modalities)
    self.assertEqual(params['hyper'][0].shape, (6, HYPER))
    users, items = jax.jit(lambda p, c: lgmrec.embed(p, c, cfg.model))(
        params, ctx)
    self.assertEqual(users.shape, (NUM_USERS, DIM))
    self.assertEqual(items.shape, (NUM_ITEMS, DIM))
    batch = fixtures.make_batch(num_negatives=2)
    loss, grads = jax.jit(jax.value_and_grad(lambda p, c: lgmrec.loss(
        p, batch, c, jax.random.key(1), cfg.model)[0]))(params, ctx)
    self.assertTrue(np.isfinite(float(loss)))
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    # Every trainable tensor gets a gradient (V_m through the hypergraph).
    for g in grads['hyper'] + grads['trs']:
      self.assertGreater(np.abs(np.asarray(g)).max(), 0.0)

  # A batch of 24 rows is larger than both tables (12 users, 20 items): the
  # contrastive terms take their per-table-row path.
  @parameterized.named_parameters(
      ('one_noisy', 1, 'lightgcn', True, 0.5, 1),
      ('two_noisy', 2, 'lightgcn', True, 0.5, 1),
      ('two_plain', 2, 'lightgcn', False, 1.0, 2),
      ('three_mf', 3, 'mf', True, 0.7, 2),
      ('two_noisy_batch_over_tables', 2, 'lightgcn', True, 0.5, 1, 24),
  )
  def test_equations(self, num_modalities, cf_model, gumbel, keep_rate,
                     hyper_layers, batch_size=8):
    ctx = fixtures.make_context(num_modalities, seed=3)
    cfg = make_config(cf_model=cf_model, gumbel=gumbel, keep_rate=keep_rate,
                      num_hyper_layers=hyper_layers)
    params = lgmrec.init(jax.random.key(2), ctx, cfg.model)
    # Spread the hyperedge logits so that the softmax is not flat.
    params['hyper'] = [3.0 * h for h in params['hyper']]
    batch = fixtures.make_batch(seed=4, size=batch_size, num_negatives=2)
    key = jax.random.key(9)
    got, aux = lgmrec.loss(params, batch, ctx, key, cfg.model)
    got_u, got_i = lgmrec.embed(params, ctx, cfg.model)

    p = _np_params(params)
    draws = _draws(key, num_modalities, keep_rate)
    if not gumbel:
      for d in draws:
        d['gi'] = d['gu'] = None
    want = np_loss(p, batch, ctx, cfg, draws)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    if num_modalities == 1:
      self.assertEqual(float(aux['hcl']), 0.0)
    # embed: no dropout; one fixed Gumbel draw (key 0) unless gumbel is off.
    eval_draws = _draws(jax.random.key(0), num_modalities, 1.0)
    if not gumbel:
      for d in eval_draws:
        d['gi'] = d['gu'] = None
    ref_u, ref_i, _ = np_forward(p, ctx, cfg, eval_draws, train=False)
    np.testing.assert_allclose(np.asarray(got_u), ref_u, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), ref_i, rtol=1e-5,
                               atol=1e-6)

  def test_noise_free_evaluation(self):
    ctx = fixtures.make_context(2)
    cfg = make_config(eval_gumbel=False)
    params = lgmrec.init(jax.random.key(5), ctx, cfg.model)
    got_u, got_i = lgmrec.embed(params, ctx, cfg.model)
    draws = [{'gi': None, 'gu': None}] * 2
    ref_u, ref_i, _ = np_forward(_np_params(params), ctx, cfg, draws,
                                 train=False)
    np.testing.assert_allclose(np.asarray(got_u), ref_u, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), ref_i, rtol=1e-5,
                               atol=1e-6)

  def test_masked_items_join_no_hyperedge(self):
    ctx = fixtures.make_context(2, masked_share=0.1)
    cfg = make_config()
    params = lgmrec.init(jax.random.key(0), ctx, cfg.model)
    _, _, views = lgmrec.forward(params, ctx, cfg.model, jax.random.key(1),
                                 jax.random.key(2))
    for (_, z), mask in zip(views, ctx.masks.values()):
      masked = ~np.asarray(mask)
      self.assertTrue(masked.any())
      np.testing.assert_array_equal(np.asarray(z)[masked], 0.0)
      self.assertGreater(np.abs(np.asarray(z)[~masked]).max(), 0.0)

  def test_contrast_over_a_table_smaller_than_the_batch(self):
    # 12 batch rows from a 5-row table (duplicates, weights 0 to 2, row 4 on
    # a weight-0 row only; candidate 3 left out by `valid`): the table path
    # sums each table row once with its rows' summed weight.
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5, 4)).astype(np.float32)
    b = rng.normal(size=(5, 4)).astype(np.float32)
    rows = np.array([0, 1, 1, 2, 0, 3, 3, 3, 1, 0, 4, 2])
    w = np.array([1, 2, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1], np.float32)
    valid = np.array([True, True, True, False, True])
    tau = 0.2
    na, nb = _n(a.astype(np.float64)), _n(b.astype(np.float64))
    logits = na[rows] @ nb.T / tau
    per = (_logsumexp(np.where(valid[None, :], logits, -np.inf))
           - np.sum(na[rows] * nb[rows], -1) / tau)
    want = np.sum(w * per)
    # The same rows in a table of 12 take the batch path; the appended rows
    # are invalid candidates, so the sums are unchanged.
    pad = np.zeros((7, 4), np.float32)
    valid_padded = np.concatenate([valid, np.zeros(7, bool)])

    @jax.jit
    def table_path(a, b):
      return lgmrec._ssl(a, b, jnp.asarray(rows), jnp.asarray(w), tau,
                         valid=jnp.asarray(valid))

    @jax.jit
    def batch_path(a, b):
      return lgmrec._ssl(jnp.concatenate([a, pad]), jnp.concatenate([b, pad]),
                         jnp.asarray(rows), jnp.asarray(w), tau,
                         valid=jnp.asarray(valid_padded))

    a, b = jnp.asarray(a), jnp.asarray(b)
    for fn in (table_path, batch_path):
      np.testing.assert_allclose(float(fn(a, b)), want, rtol=1e-5)
    got = jax.grad(table_path, argnums=(0, 1))(a, b)
    ref = jax.grad(batch_path, argnums=(0, 1))(a, b)
    for g, r in zip(got, ref):
      np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-4,
                                 atol=1e-6)
    # Row 4 is no anchor (weight 0) but still a candidate: only b's row
    # gets a gradient.
    self.assertEqual(float(jnp.abs(got[0][4]).sum()), 0.0)
    self.assertGreater(float(jnp.abs(got[1][4]).sum()), 0.0)

  def test_masked_positive_leaves_the_item_contrast(self):
    ctx = fixtures.make_context(2, masked_share=0.1)
    cfg = make_config(reg_weight=0.0)
    params = lgmrec.init(jax.random.key(0), ctx, cfg.model)
    masked = np.flatnonzero(~np.asarray(ctx.masks['m0']))
    batch = fixtures.make_batch(num_negatives=1)
    batch['pos'] = batch['pos'].at[0].set(int(masked[0]))

    def item_term(weights):
      b = dict(batch, mask=batch['mask'] * weights)
      return lgmrec.loss(params, b, ctx, jax.random.key(3), cfg.model)[1]['hcl']

    # Row 0's weight changes only its user term: the item term of a masked
    # positive is left out whatever its row weight.
    only0 = np.zeros(8, np.float32)
    only0[0] = 1.0
    _, _, views = lgmrec.forward(params, ctx, cfg.model,
                                 jax.random.fold_in(jax.random.key(3), 0),
                                 jax.random.fold_in(jax.random.key(3), 1))
    (ya, _), (yb, _) = views
    u = int(batch['users'][0])
    na, nb = _n(np.asarray(ya, np.float64)), _n(np.asarray(yb, np.float64))
    logits = na[u] @ nb.T / 0.2
    user_only = _logsumexp(logits[None])[0] - na[u] @ nb[u] / 0.2
    np.testing.assert_allclose(float(item_term(only0)), user_only, rtol=1e-5)

  def test_determinism_and_static_shapes(self):
    ctx = fixtures.make_context(2)
    cfg = make_config()
    params = lgmrec.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch(num_negatives=2)
    step = jax.jit(lambda p, c, k: lgmrec.loss(p, batch, c, k, cfg.model)[0])
    a = step(params, ctx, jax.random.key(1))
    b = step(params, ctx, jax.random.key(1))
    c = step(params, ctx, jax.random.key(2))
    self.assertEqual(float(a), float(b))
    self.assertNotEqual(float(a), float(c))  # noise and dropout redrawn
    self.assertEqual(step._cache_size(), 1)  # pylint: disable=protected-access
    again = lgmrec.init(jax.random.key(0), ctx, cfg.model)
    for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

  def test_precomputed_extras_give_the_same_loss(self):
    ctx = fixtures.make_context(2)
    cfg = make_config()
    params = lgmrec.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch()
    plain, _ = lgmrec.loss(params, batch, ctx, jax.random.key(3), cfg.model)
    rich = dataclasses.replace(
        ctx, extras={'lgmrec': lgmrec.prepare(ctx, cfg.model)})
    cached, _ = lgmrec.loss(params, batch, rich, jax.random.key(3), cfg.model)
    self.assertEqual(float(plain), float(cached))

  def test_user_rows_of_prepared_weights(self):
    ctx = fixtures.make_context(1)
    w = lgmrec.prepare(ctx, make_config().model)
    a = sparse.to_dense(ctx.graph)
    r = (a[:NUM_USERS, NUM_USERS:] > 0).astype(np.float32)
    dense_sum = sparse.to_dense(ctx.graph.with_weights(np.asarray(w['sum'])))
    dense_mean = sparse.to_dense(
        ctx.graph.with_weights(np.asarray(w['mean'])))
    np.testing.assert_array_equal(dense_sum[:NUM_USERS, NUM_USERS:], r)
    np.testing.assert_array_equal(dense_sum[NUM_USERS:], 0.0)
    np.testing.assert_allclose(dense_mean[:NUM_USERS, NUM_USERS:],
                               r / r.sum(1, keepdims=True), rtol=1e-6)

  def test_unknown_cf_model(self):
    ctx = fixtures.make_context(1)
    cfg = make_config(cf_model='ngcf')
    params = lgmrec.init(jax.random.key(0), ctx, cfg.model)
    with self.assertRaisesRegex(ValueError, 'cf_model'):
      lgmrec.embed(params, ctx, cfg.model)



class LgmrecConfigTest(parameterized.TestCase):

  @parameterized.parameters('synthetic', 'ml_lvlm')
  def test_configs(self, dataset):
    module = defaults.sibling_config(_CONFIGS, 'lgmrec')
    c = module.get_config(f'data={dataset}')
    self.assertEqual(c.model.name, 'lgmrec')
    # MMRec LGMRec.yaml's 'baby' point.
    self.assertEqual((c.model.num_layers, c.model.num_mm_layers,
                      c.model.num_hyper_layers, c.model.hyper_num,
                      c.model.keep_rate, c.model.alpha, c.model.cl_weight,
                      c.model.reg_weight), (2, 2, 1, 4, 0.5, 0.3, 1e-4, 1e-6))
    self.assertEqual(c.data.name, dataset)
    self.assertLen(c.features.sources, 2)
    sweep = module.get_sweep()
    self.assertLen(sweep, 3)
    for point in sweep:
      for dotted in point:
        section, field = dotted.split('.')
        self.assertIn(field, c[section])
    self.assertEqual(module.get_config('runlocal').train.num_epochs, 3)


if __name__ == '__main__':
  absltest.main()
