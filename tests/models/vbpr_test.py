"""VBPR: shapes, finite gradients, masked items, and the docstring equations."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.graph import sparse
from mmjax.models import context
from mmjax.models import options
from mmjax.models import vbpr

NUM_USERS, NUM_ITEMS = 12, 20


def make_context(num_modalities, seed=0, masked_share=0.1, dims=(6, 5, 4)):
  """A tiny context; `masked_share` of the items lack each modality."""
  rng = np.random.default_rng([seed, num_modalities])
  users = np.concatenate([np.arange(NUM_USERS), rng.integers(0, NUM_USERS,
                                                             40)])
  items = np.concatenate([rng.integers(0, NUM_ITEMS, NUM_USERS),
                          rng.integers(0, NUM_ITEMS, 40)])
  graph = sparse.sym_normalize(
      sparse.bipartite(users, items, NUM_USERS, NUM_ITEMS)
  )
  features, masks = {}, {}
  for m in range(num_modalities):
    x = rng.normal(size=(NUM_ITEMS, dims[m])).astype(np.float32)
    mask = np.ones(NUM_ITEMS, bool)
    mask[rng.permutation(NUM_ITEMS)[: int(masked_share * NUM_ITEMS)]] = False
    x[~mask] = 0.0  # the store's zero rows for failed items
    features[f'm{m}'] = jnp.asarray(x)
    masks[f'm{m}'] = jnp.asarray(mask)
  return context.ModelContext(
      graph=graph, features=features, masks=masks,
      item_popularity=jnp.ones(NUM_ITEMS), extras={}, num_users=NUM_USERS,
      num_items=NUM_ITEMS)


def make_batch(seed=0, size=8, num_negatives=None):
  rng = np.random.default_rng([seed, 99])
  neg_shape = (size,) if num_negatives is None else (size, num_negatives)
  mask = np.ones(size, np.float32)
  mask[-1] = 0.0  # one padded row
  return {
      'users': jnp.asarray(rng.integers(0, NUM_USERS, size), jnp.int32),
      'pos': jnp.asarray(rng.integers(0, NUM_ITEMS, size), jnp.int32),
      'neg': jnp.asarray(rng.integers(0, NUM_ITEMS, neg_shape), jnp.int32),
      'mask': jnp.asarray(mask),
  }


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
    ctx = make_context(num_modalities)
    cfg = make_config(convention=convention)
    params = vbpr.init(jax.random.key(0), ctx, cfg.model)
    users, items = vbpr.embed(params, ctx, cfg.model)
    self.assertEqual(users.shape, (NUM_USERS, 8))
    self.assertEqual(items.shape, (NUM_ITEMS, 8))
    grad_fn = jax.jit(jax.grad(lambda p: vbpr.loss(
        p, make_batch(num_negatives=2), ctx, jax.random.key(1), cfg.model)[0]))
    grads = grad_fn(params)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    self.assertGreater(float(jnp.abs(grads['proj_w']).sum()), 0.0)

  @parameterized.parameters('mmrec', 'elliot')
  def test_equations(self, convention):
    ctx = make_context(2, seed=3)
    cfg = make_config(convention=convention, reg_weight=0.3)
    params = vbpr.init(jax.random.key(2), ctx, cfg.model)
    rng = np.random.default_rng(5)
    params = jax.tree.map(
        lambda p: jnp.asarray(rng.normal(size=p.shape) * 0.5, jnp.float32),
        params,
    )
    batch = make_batch(seed=4, num_negatives=2)
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
    ctx = make_context(2, masked_share=0.0)
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
    ctx = make_context(1)
    cfg = make_config()
    params = vbpr.init(jax.random.key(0), ctx, cfg.model)
    batch = make_batch()
    changed = dict(batch, neg=batch['neg'].at[-1].set(0),
                   users=batch['users'].at[-1].set(0))
    a, _ = vbpr.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    b, _ = vbpr.loss(params, changed, ctx, jax.random.key(0), cfg.model)
    self.assertEqual(float(a), float(b))


if __name__ == '__main__':
  absltest.main()
