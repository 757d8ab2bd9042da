"""VBPR: shapes, finite gradients, masked items, and the docstring equations."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.models import options
from mmjax.models import vbpr
from tests.testing import fixtures

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(
      dict(name='vbpr', embed_dim=4, reg_weight=0.1, convention='mmrec',
           normalize_projection=None)
  )
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  return cfg


def _np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


class VbprTest(parameterized.TestCase):

  @parameterized.product(
      num_modalities=[1, 2, 3], convention=['mmrec', 'elliot']
  )
  def test_shapes_and_finite_grads(self, num_modalities, convention):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config(convention=convention)
    params = vbpr.init(jax.random.key(0), ctx, cfg.model)
    users, items = vbpr.embed(params, ctx, cfg.model)
    self.assertEqual(users.shape, (NUM_USERS, 8))
    self.assertEqual(items.shape, (NUM_ITEMS, 8))
    batch = fixtures.make_batch(num_negatives=2)
    grad_fn = jax.jit(jax.grad(lambda p: vbpr.loss(
        p, batch, ctx, jax.random.key(1), cfg.model)[0]))
    grads = grad_fn(params)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    self.assertGreater(float(jnp.abs(grads['proj_w']).sum()), 0.0)

  @parameterized.parameters('mmrec', 'elliot')
  def test_equations(self, convention):
    ctx = fixtures.make_context(2, seed=3)
    cfg = make_config(convention=convention, reg_weight=0.3)
    params = vbpr.init(jax.random.key(2), ctx, cfg.model)
    rng = np.random.default_rng(5)
    params = jax.tree.map(
        lambda p: jnp.asarray(rng.normal(size=p.shape) * 0.5, jnp.float32),
        params,
    )
    batch = fixtures.make_batch(seed=4, num_negatives=2)
    got, _ = vbpr.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    got_u, got_i = vbpr.embed(params, ctx, cfg.model)

    # numpy transcription of the module docstring.
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    f = np.concatenate(
        [np.asarray(ctx.features[m]) * np.asarray(ctx.masks[m])[:, None]
         for m in ('m0', 'm1')], axis=1)
    proj = f @ p['proj_w'] + p['proj_b']
    if convention == 'elliot':
      proj = proj / np.maximum(np.linalg.norm(proj, axis=1, keepdims=True),
                               1e-12)
    item = np.concatenate([p['item'], proj], axis=1)
    u, i, j = (np.asarray(batch[k]) for k in ('users', 'pos', 'neg'))
    w = np.asarray(batch['mask'])
    uu = p['user'][u]
    x = np.sum(uu * item[i], 1)[:, None] - np.einsum('bd,bkd->bk', uu,
                                                      item[j])
    n = w.sum()
    if convention == 'mmrec':
      bpr = np.sum(w * (-np.log(1e-10 + _np_sigmoid(x))).mean(1)) / n
      reg = (np.linalg.norm(w[:, None] * uu)
             + np.linalg.norm(w[:, None] * item[i])
             + np.linalg.norm(w[:, None, None] * item[j])) / n
    else:
      bpr = np.sum(w * np.logaddexp(0, -np.clip(x, -80, 1e8)).mean(1)) / n
      reg = 0.5 * (np.sum(w[:, None] * uu ** 2)
                   + np.sum(w[:, None] * item[i] ** 2)
                   + np.sum(w[:, None, None] * item[j] ** 2)) / n
    np.testing.assert_allclose(float(got), bpr + 0.3 * reg, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got_u), p['user'], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), item, rtol=1e-5, atol=1e-6)

  def test_item_without_any_modality_gets_the_bias(self):
    ctx = fixtures.make_context(2, masked_share=0.0)
    masks = dict(ctx.masks)
    features = dict(ctx.features)
    for m in masks:
      masks[m] = masks[m].at[3].set(False)
      # A feature transform can make a failed row non-zero; the mask wins.
      features[m] = features[m].at[3].set(7.0)
    ctx = dataclasses.replace(ctx, masks=masks, features=features)
    cfg = make_config()
    params = vbpr.init(jax.random.key(0), ctx, cfg.model)
    params['proj_b'] = jnp.arange(4.0)
    _, items = vbpr.embed(params, ctx, cfg.model)
    np.testing.assert_allclose(np.asarray(items[3, 4:]), np.arange(4.0))

  def test_padding_rows_do_not_count(self):
    ctx = fixtures.make_context(1)
    cfg = make_config()
    params = vbpr.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch()
    changed = dict(batch, neg=batch['neg'].at[-1].set(0),
                   users=batch['users'].at[-1].set(0))
    a, _ = vbpr.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    b, _ = vbpr.loss(params, changed, ctx, jax.random.key(0), cfg.model)
    self.assertEqual(float(a), float(b))


if __name__ == '__main__':
  absltest.main()
