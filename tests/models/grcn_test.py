"""GRCN: shapes, finite gradients, masked items, docstring equations."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.graph import edges
from mmjax.models import grcn
from mmjax.models import options
from tests.testing import fixtures

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name='grcn', embed_dim=4, content_dim=3, num_layers=2, num_routings=2,
      reg_weight=0.1, weight_mode='confid', routing='mmrec', pruning=True,
      fusion='concat', dropout=0.0, full_preference_reg='m0',
  ))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def _np_normalize(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _np_leaky(x):
  return np.where(x > 0, x, 0.01 * x)


def _np_softmax_by(logits, groups, ok, n):
  """Softmax of logits within each group (receiver), ok entries only."""
  out = np.zeros_like(logits)
  for g in range(n):
    sel = (groups == g) & ok
    if sel.any():
      z = np.exp(logits[sel] - logits[sel].max())
      out[sel] = z / z.sum()
  return out


def np_grcn(params, ctx, cfg, keep=None):
  """Dense float64 transcription of the module doc's equations."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  u_n, n = NUM_USERS, NUM_USERS + NUM_ITEMS
  s = np.asarray(ctx.graph.senders)
  r = np.asarray(ctx.graph.receivers)
  e_n = len(s)
  keep = np.ones(e_n, bool) if keep is None else keep
  item = np.where(s >= u_n, s, r) - u_n
  reps, alphas, oks = [], [], []
  for m, name in enumerate(ctx.features):
    x = np.asarray(ctx.features[name], np.float64)
    mask = np.asarray(ctx.masks[name])
    f = _np_normalize(_np_leaky(x @ p['mlp'][m]['w'] + p['mlp'][m]['b']))
    f[~mask] = 0.0
    pref = _np_normalize(p['preference'][m])
    ok = keep & mask[item]
    if cfg.model.routing == 'paper':
      for _ in range(cfg.model.num_routings):
        upd = np.zeros_like(pref)
        for uu in range(u_n):
          sel = (r == uu) & ok
          its = s[sel] - u_n
          if len(its):
            lg = f[its] @ pref[uu]
            a = np.exp(lg - lg.max())
            upd[uu] = (a / a.sum()) @ f[its]
        pref = _np_normalize(pref + upd)
    h = np.concatenate([pref, f])
    logits = np.sum(h[r] * h[s], 1)
    a = _np_softmax_by(logits, r, ok, n)
    adj = np.zeros((n, n))
    np.add.at(adj, (r, s), a)
    reps.append(h + adj @ h)
    alphas.append(a)
    oks.append(ok)
  alphas, oks = np.stack(alphas, 1), np.stack(oks, 1)
  w = np.zeros(e_n)
  for e in range(e_n):
    vals = alphas[e][oks[e]]
    if cfg.model.weight_mode == 'confid':
      vals = (alphas[e] * p['conf'][s[e]])[oks[e]]
    if len(vals):
      w[e] = vals.mean() if cfg.model.weight_mode == 'mean' else vals.max()
  w = np.maximum(w, 0.0)
  adj = np.zeros((n, n))
  np.add.at(adj, (r, s), w)
  x0 = _np_normalize(p['id_embedding'])
  z, h = x0.copy(), x0
  for _ in range(cfg.model.num_layers):
    h = adj @ h
    z = z + h
  return np.concatenate([z] + reps, 1)


def np_loss(params, ctx, cfg, batch, keep=None):
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  rep = np_grcn(params, ctx, cfg, keep)
  uu, ii = np.asarray(batch['users']), np.asarray(batch['pos'])
  jj = np.asarray(batch['neg']).reshape(len(uu), -1)
  wt = np.asarray(batch['mask'], np.float64)
  ru = rep[uu]
  s_pos = np.sum(ru * rep[NUM_USERS + ii], 1)
  s_neg = np.einsum('bd,bkd->bk', ru, rep[NUM_USERS + jj])
  per = np.mean(np.logaddexp(0, -(s_pos[:, None] - s_neg)), 1)
  bpr = np.sum(wt * per) / wt.sum()
  e = p['id_embedding']
  d = e.shape[1]
  rows = (np.sum(e[uu] ** 2, 1) + 0.5 * (
      np.sum(e[NUM_USERS + ii] ** 2, 1)
      + np.mean(np.sum(e[NUM_USERS + jj] ** 2, 2), 1))) / d
  reg = np.sum(wt * rows) / wt.sum()
  for pref in p['preference']:
    reg += np.sum(wt * np.sum(pref[uu] ** 2, 1) / pref.shape[1]) / wt.sum()
  reg += np.mean(p['preference'][0] ** 2)  # full_preference_reg='m0'
  return bpr + cfg.model.reg_weight * reg


class GrcnTest(parameterized.TestCase):

  @parameterized.parameters(1, 2, 3)
  def test_shapes_and_finite_grads(self, num_modalities):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config()
    params = grcn.init(jax.random.key(0), ctx, cfg.model)
    users, items = jax.jit(lambda p, c: grcn.embed(p, c, cfg.model))(
        params, ctx)
    width = 4 + 3 * num_modalities
    self.assertEqual(users.shape, (NUM_USERS, width))
    self.assertEqual(items.shape, (NUM_ITEMS, width))
    batch = fixtures.make_batch(num_negatives=2)
    grads = jax.jit(jax.grad(lambda p, c: grcn.loss(
        p, batch, c, jax.random.key(1), cfg.model)[0]))(params, ctx)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    # The attention's gradient reaches the MLPs and the confidences.
    self.assertGreater(float(jnp.abs(grads['conf']).max()), 0.0)
    for mlp in grads['mlp']:
      self.assertGreater(float(jnp.abs(mlp['w']).max()), 0.0)

  @parameterized.parameters(
      (1, 'confid', 'mmrec'), (2, 'confid', 'mmrec'), (2, 'max', 'paper'),
      (3, 'mean', 'paper'), (2, 'confid', 'paper'),
  )
  def test_equations(self, num_modalities, weight_mode, routing):
    ctx = fixtures.make_context(num_modalities, seed=3)
    cfg = make_config(weight_mode=weight_mode, routing=routing)
    params = grcn.init(jax.random.key(2), ctx, cfg.model)
    # Confidences of both signs, so that pruning and the max both matter.
    params['conf'] = params['conf'] + 0.3 * jax.random.normal(
        jax.random.key(5), params['conf'].shape)
    batch = fixtures.make_batch(seed=4, num_negatives=2)
    got, _ = grcn.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    got_u, got_i = grcn.embed(params, ctx, cfg.model)
    ref = np_grcn(params, ctx, cfg)
    np.testing.assert_allclose(np.asarray(got_u), ref[:NUM_USERS],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), ref[NUM_USERS:],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(got), np_loss(params, ctx, cfg, batch),
                               rtol=1e-5)

  def test_mmrec_routing_is_a_no_op(self):
    # MMRec's routing sends messages to items only: more routings change
    # nothing; the paper's routing does change the users.
    ctx = fixtures.make_context(2)
    params = grcn.init(jax.random.key(0), ctx, make_config().model)
    base = grcn.embed(params, ctx, make_config(num_routings=0).model)[0]
    more = grcn.embed(params, ctx, make_config(num_routings=5).model)[0]
    np.testing.assert_allclose(np.asarray(more), np.asarray(base), atol=1e-6)
    paper = grcn.embed(params, ctx, make_config(routing='paper').model)[0]
    self.assertGreater(float(jnp.abs(paper - base).max()), 1e-3)

  def test_masked_items_are_left_out(self):
    ctx = fixtures.make_context(1, masked_share=0.1)
    cfg = make_config()
    params = grcn.init(jax.random.key(0), ctx, cfg.model)
    _, items = grcn.embed(params, ctx, cfg.model)
    masked = ~np.asarray(ctx.masks['m0'])
    self.assertTrue(masked.any())
    # No content row, and (one modality) no ID-graph edge: z_i = x^0_i.
    np.testing.assert_array_equal(np.asarray(items)[masked, 4:], 0.0)
    x0 = np.asarray(params['id_embedding'])[NUM_USERS:][masked]
    x0 = x0 / np.linalg.norm(x0, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(items)[masked, :4], x0, atol=1e-6)
    # Changing a masked item's feature row changes nothing.
    feats = np.array(ctx.features['m0'])
    feats[masked] = 5.0
    other = dataclasses.replace(ctx, features={'m0': jnp.asarray(feats)})
    np.testing.assert_allclose(
        np.asarray(grcn.embed(params, other, cfg.model)[1]),
        np.asarray(items), atol=1e-6)

  def test_dropout_static_shapes_and_determinism(self):
    ctx = fixtures.make_context(2)
    cfg = make_config(dropout=0.5)
    params = grcn.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch()
    fn = jax.jit(lambda p, c, k: grcn.loss(p, batch, c, k, cfg.model)[0])
    a = fn(params, ctx, jax.random.key(1))
    b = fn(params, ctx, jax.random.key(1))
    c = fn(params, ctx, jax.random.key(2))
    self.assertEqual(float(a), float(b))
    self.assertNotEqual(float(a), float(c))
    self.assertEqual(fn._cache_size(), 1)  # pylint: disable=protected-access
    # The dropped loss equals the numpy one on the kept interactions, which
    # are whole (both directions dropped together).
    g = ctx.graph.with_weights(jnp.ones(ctx.graph.num_edges))
    keep = np.asarray(edges.edge_dropout(
        jax.random.key(1), g, 0.5, edges.reverse_edges_sorted(ctx.graph)
    ).weights != 0)
    self.assertTrue(0 < keep.sum() < len(keep))
    np.testing.assert_allclose(float(a), np_loss(params, ctx, cfg, batch,
                                                 keep), rtol=1e-5)

  def test_prepared_extras_give_the_same_loss(self):
    ctx = fixtures.make_context(2)
    cfg = make_config(dropout=0.3)
    params = grcn.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch()
    plain, _ = grcn.loss(params, batch, ctx, jax.random.key(3), cfg.model)
    rich = dataclasses.replace(
        ctx, extras={'grcn': grcn.prepare(ctx, cfg.model)})
    cached, _ = grcn.loss(params, batch, rich, jax.random.key(3), cfg.model)
    self.assertEqual(float(plain), float(cached))

  def test_init_is_deterministic_and_checks_config(self):
    ctx = fixtures.make_context(2)
    cfg = make_config()
    a = grcn.init(jax.random.key(7), ctx, cfg.model)
    b = grcn.init(jax.random.key(7), ctx, cfg.model)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with self.assertRaisesRegex(ValueError, 'weight_mode'):
      grcn.init(jax.random.key(0), ctx, make_config(weight_mode='sum').model)


if __name__ == '__main__':
  absltest.main()
