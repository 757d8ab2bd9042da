"""LATTICE: shapes, finite gradients, masked items, docstring equations, the
item graph built once per epoch (graph_every)."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mmjax import models
from mmjax.graph import sparse
from mmjax.models import lattice
from mmjax.models import options
from mmjax.parallel import mesh as mesh_lib
from mmjax.train import loop
from mmjax.train import sampler
from mmjax.train import state as state_lib
from tests.testing import fixtures
from tests.testing import numerics

NUM_USERS, NUM_ITEMS = fixtures.NUM_USERS, fixtures.NUM_ITEMS


def make_config(**model):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name='lattice', embed_dim=4, reg_weight=0.1, knn_k=3, num_layers=2,
      num_mm_layers=1, lambda_coeff=0.9, convention='mmrec',
      train_features=True))
  cfg.model.update(model)
  # Every option the model declares, as the loop hands it over.
  cfg.model = options.complete(cfg.model)
  cfg.train = ml_collections.ConfigDict({'num_negatives': 1})
  return cfg


BATCH = 16  # 72 training pairs: 5 steps, the last one padded.


def _epoch_setup(graph_every, tx):
  """(ctx, td, cfg, state) for one epoch of `graph_every` on 12 x 20."""
  ctx = fixtures.make_context(2, seed=2)
  ds = fixtures.random_dataset(num_users=fixtures.NUM_USERS,
                               num_items=NUM_ITEMS, per_user=8)
  td = jax.tree.map(jnp.asarray, sampler.make_train_data(ds))
  cfg = make_config(graph_every=graph_every)
  params = lattice.init(jax.random.key(0), ctx, cfg.model)
  state = state_lib.TrainState(jnp.zeros((), jnp.int32), params,
                               tx.init(params))
  return ctx, td, cfg, state


def _reference_step(ctx, cfg, tx):
  """A jitted step `(params, opt_state, batch, key, graph)`, written out.

  Returns (params, opt_state, loss, grads, the graph of `params`). With
  `graph` None the loss builds the learnt graph itself, with gradient (the
  'step' mode's loss, and the 'epoch' mode's first step); else it uses
  `graph`, detached. `graph_every` is read by the loop, not the loss, so
  one function serves both modes.
  """

  @jax.jit
  def step(params, opt_state, batch, key, graph):
    step_ctx = ctx
    if graph is not None:
      step_ctx = models.with_epoch_cache(ctx, cfg.model,
                                         jax.lax.stop_gradient(graph))
    loss, grads = jax.value_and_grad(
        lambda p: lattice.loss(p, batch, step_ctx, key, cfg.model)[0])(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    built = lattice.item_graph(params, ctx, cfg.model) if graph is None else (
        graph)
    return (optax.apply_updates(params, updates), opt_state, loss, grads,
            built)

  return step


def _reference_epoch(step, state, td, every, epoch, data_key, train_key):
  """The epoch written out step by step, the learnt graph as MMRec keeps it.

  every='epoch': step 0's loss builds the graph from its parameters
  (gradient through it) and the later steps use that graph, detached;
  'step': every step builds its own. Returns (params, mean loss, step 0's
  gradient).
  """
  index, mask = sampler.epoch_order(
      td, jax.random.fold_in(data_key, epoch), BATCH)
  params, opt_state, count = state.params, state.opt_state, int(state.step)
  graph = first_grads = None
  losses_ = []
  for s in range(index.shape[0]):
    neg_key, model_key = jax.random.split(
        jax.random.fold_in(train_key, count + s))
    batch = sampler.make_batch(td, index[s], mask[s], neg_key, 1, True)
    params, opt_state, loss, grads, built = step(params, opt_state, batch,
                                                 model_key, graph)
    if s == 0:
      first_grads = grads
      if every == 'epoch':
        graph = built  # From the parameters step 0's loss used.
    losses_.append(float(loss))
  return params, np.average(losses_, weights=np.asarray(mask).sum(1)), (
      first_grads)


def _np_knn_weighted(z, mask, k):
  """MMRec's build_sim + build_knn_neighbourhood, masked rows/cols empty."""
  norm = np.linalg.norm(z, axis=1)
  valid = mask & (norm > 0)
  zn = np.where(valid[:, None], z / np.where(norm > 0, norm, 1)[:, None], 0)
  sim = zn @ zn.T
  sim[:, ~valid] = -np.inf
  # The float32 graph on device (error < 1e-6 here) and this float64 one
  # pick the same neighbours on any CPU only if no row has a near-tie at
  # its k-th.
  assert numerics.topk_margin(sim[valid], k, ordered=False).min() > 1e-5, (
      'near-tied k-th neighbour: choose other test data')
  a = np.zeros_like(sim)
  for i in np.flatnonzero(valid):
    nb = np.argsort(-sim[i], kind='stable')[:k]
    nb = nb[np.isfinite(sim[i, nb])]
    a[i, nb] = sim[i, nb]
  return a


def _np_sym(a):
  d = a.sum(1)
  inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
  return inv[:, None] * a * inv[None, :]


def _np_l2(x):
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class LatticeTest(parameterized.TestCase):

  @parameterized.parameters(1, 2, 3)
  def test_shapes_and_finite_grads(self, num_modalities):
    ctx = fixtures.make_context(num_modalities)
    cfg = make_config()
    params = lattice.init(jax.random.key(0), ctx, cfg.model)
    users, items = jax.jit(lambda p, c: lattice.embed(p, c, cfg.model))(
        params, ctx)
    self.assertEqual(users.shape, (NUM_USERS, 4))
    self.assertEqual(items.shape, (NUM_ITEMS, 4))
    batch = fixtures.make_batch(num_negatives=2)
    grads = jax.jit(jax.grad(lambda p, c: lattice.loss(
        p, batch, c, jax.random.key(1), cfg.model)[0]))(params, ctx)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    # The learnt graph passes gradient to the projections.
    self.assertGreater(float(np.abs(np.asarray(grads['proj'][0]['w'])).sum()),
                       0.0)

  @parameterized.parameters(('mmrec', 1), ('mmrec', 2), ('elliot', 2))
  def test_equations(self, convention, num_modalities):
    ctx = fixtures.make_context(num_modalities, seed=4)
    cfg = make_config(convention=convention, reg_weight=0.3)
    params = lattice.init(jax.random.key(3), ctx, cfg.model)
    params['modal_weight'] = params['modal_weight'] * np.arange(
        1.0, num_modalities + 1)
    batch = fixtures.make_batch(seed=6)
    got, _ = lattice.loss(params, batch, ctx, jax.random.key(0), cfg.model)
    got_u, got_i = lattice.embed(params, ctx, cfg.model)

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    names = list(ctx.features)
    alpha = np.exp(p['modal_weight']) / np.exp(p['modal_weight']).sum()
    learnt = np.zeros((NUM_ITEMS, NUM_ITEMS))
    original = np.zeros((NUM_ITEMS, NUM_ITEMS))
    for m, n in enumerate(names):
      mk = np.asarray(ctx.masks[n])
      x0 = np.asarray(ctx.features[n], np.float64)
      original += alpha[m] * _np_sym(_np_knn_weighted(x0, mk, 3))
      t = (p['features'][m] * mk[:, None]) @ p['proj'][m]['w'] + (
          p['proj'][m]['b'])
      learnt += alpha[m] * _np_knn_weighted(t, mk, 3)
    s = 0.1 * _np_sym(learnt) + 0.9 * original
    h = s @ p['item']
    a = (sparse.to_dense(ctx.graph) != 0).astype(np.float64)
    a_hat = a + np.eye(len(a))
    d = a_hat.sum(1)
    if convention == 'mmrec':
      a_hat = a_hat / d[:, None]
    else:
      a_hat = a_hat / d[:, None] / d[None, :]
    layers = [np.concatenate([p['user'], p['item']])]
    for _ in range(2):
      nxt = a_hat @ layers[-1]
      layers.append(_np_l2(nxt) if convention == 'elliot' else nxt)
    e = np.mean(layers, axis=0)
    u_all, i_all = e[:NUM_USERS], e[NUM_USERS:] + _np_l2(h)

    uu, ii, jj = (np.asarray(batch[k]) for k in ('users', 'pos', 'neg'))
    w = np.asarray(batch['mask'])
    x = np.sum(u_all[uu] * i_all[ii], 1) - np.sum(u_all[uu] * i_all[jj], 1)
    bpr = np.sum(w * np.logaddexp(0, -x)) / w.sum()
    reg = 0.5 * sum(np.sum(w[:, None] * v ** 2)
                    for v in (u_all[uu], i_all[ii], i_all[jj])) / w.sum()
    np.testing.assert_allclose(float(got), bpr + 0.3 * reg, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got_u), u_all, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(got_i), i_all, rtol=1e-5,
                               atol=1e-6)

  def test_precomputed_extras_give_the_same_loss(self):
    ctx = fixtures.make_context(2)
    cfg = make_config()
    params = lattice.init(jax.random.key(0), ctx, cfg.model)
    batch = fixtures.make_batch()
    plain, _ = lattice.loss(params, batch, ctx, jax.random.key(3), cfg.model)
    rich = dataclasses.replace(
        ctx, extras={'lattice': lattice.prepare(ctx, cfg.model)})
    cached, _ = lattice.loss(params, batch, rich, jax.random.key(3), cfg.model)
    self.assertEqual(float(plain), float(cached))

  def test_masked_item_is_isolated_in_the_item_graph(self):
    ctx = fixtures.make_context(1, masked_share=0.1)
    cfg = make_config()
    params = lattice.init(jax.random.key(0), ctx, cfg.model)
    dense = sparse.to_dense(lattice.item_graph(params, ctx, cfg.model))
    masked = ~np.asarray(ctx.masks['m0'])
    self.assertTrue(masked.any())
    np.testing.assert_array_equal(dense[masked], 0.0)
    np.testing.assert_array_equal(dense[:, masked], 0.0)

  def test_epoch_equals_the_reference_loop(self):
    # SGD: the updates are the gradients, scaled (Adam's first update
    # hardly depends on the gradient's size).
    lr = 2.0
    tx = optax.sgd(lr)
    data_key, train_key = jax.random.key(7), jax.random.key(8)
    ctx, td, cfg, state = _epoch_setup('epoch', tx)
    step = _reference_step(ctx, cfg, tx)
    want = {every: _reference_epoch(step, state, td, every, 1, data_key,
                                    train_key)
            for every in ('epoch', 'step')}
    # The two modes train differently: the test tells them apart.
    self.assertGreater(float(np.abs(
        np.asarray(want['epoch'][0]['proj'][0]['w'])
        - np.asarray(want['step'][0]['proj'][0]['w'])).max()), 1e-3)
    start = jax.tree.map(np.asarray, state.params)
    # 'epoch', the new path, on 8 devices (sharded batches through the
    # cond); 'step' on one, to keep the test short.
    for every, devices in (('epoch', 8), ('step', 1)):
      cfg = make_config(graph_every=every)
      epoch_fn = loop.make_epoch_fn(lattice, tx, cfg,
                                    mesh_lib.make_mesh(devices), BATCH)
      got, metrics = epoch_fn(jax.tree.map(jnp.copy, state), ctx, td,
                              np.int32(1), data_key, train_key)
      want_params, want_loss, first_grads = want[every]
      self.assertEqual(int(got.step), 5)
      np.testing.assert_allclose(float(metrics['train/loss']), want_loss,
                                 rtol=1e-6)
      for x, y in zip(jax.tree.leaves(got.params),
                      jax.tree.leaves(want_params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5,
                                   atol=1e-6)
      if every == 'epoch':
        # The graph's own parameters move at step 0 only, by the 'step'
        # mode's step-0 gradient: detached afterwards.
        for name in ('proj', 'modal_weight', 'features'):
          for x, x0, g in zip(jax.tree.leaves(got.params[name]),
                              jax.tree.leaves(start[name]),
                              jax.tree.leaves(first_grads[name])):
            self.assertGreater(float(np.abs(np.asarray(g)).max()), 0.0)
            np.testing.assert_allclose((x0 - np.asarray(x)) / lr,
                                       np.asarray(g), rtol=1e-3, atol=1e-6)

  def test_graph_every(self):
    ctx = fixtures.make_context(2)
    cfg = make_config(graph_every='step')
    params = lattice.init(jax.random.key(0), ctx, cfg.model)
    self.assertIsNone(lattice.epoch_cache(params, ctx, cfg.model))
    with self.assertRaisesRegex(ValueError, 'graph_every'):
      lattice.epoch_cache(params, ctx, make_config(graph_every='batch').model)
    self.assertEqual(options.declared('lattice')['graph_every'].default,
                     'epoch')


if __name__ == '__main__':
  absltest.main()
