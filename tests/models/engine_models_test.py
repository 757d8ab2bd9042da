"""BPR-MF, LightGCN and MostPop: shapes, and the loss against numpy."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax import models
from mmjax.data import dataset as dataset_lib
from mmjax.graph import sparse
from mmjax.models import context as context_lib
from mmjax.models import controls
from tests.testing import fixtures

NU, NI = 7, 9


def make_cfg(name, num_layers=2, reg_weight=0.1, embed_dim=4):
  cfg = ml_collections.ConfigDict()
  cfg.model = ml_collections.ConfigDict(dict(
      name=name, embed_dim=embed_dim, num_layers=num_layers,
      reg_weight=reg_weight))
  return cfg


def make_batch(rng, size=6, k=2, padded=1):
  mask = np.ones(size, np.float32)
  mask[size - padded:] = 0.0
  return {
      'users': jnp.asarray(rng.integers(0, NU, size), jnp.int32),
      'pos': jnp.asarray(rng.integers(0, NI, size), jnp.int32),
      'neg': jnp.asarray(rng.integers(0, NI, (size, k)), jnp.int32),
      'mask': jnp.asarray(mask),
  }


def np_loss(u_all, i_all, eu, ei, batch, reg_weight):
  """The module docstrings' equations in numpy (float64)."""
  users, pos, neg = (np.asarray(batch[k]) for k in ('users', 'pos', 'neg'))
  m = np.asarray(batch['mask'], np.float64)
  s_pos = (u_all[users] * i_all[pos]).sum(-1)
  s_neg = np.einsum('bd,bkd->bk', u_all[users], i_all[neg])
  per = -np.log(1e-10 + 1 / (1 + np.exp(-(s_pos[:, None] - s_neg))))
  bpr = (per.mean(1) * m).sum() / m.sum()
  reg = (np.linalg.norm(eu[users] * m[:, None])
         + np.linalg.norm(ei[pos] * m[:, None])
         + np.linalg.norm(ei[neg] * m[:, None, None])) / m.sum()
  return bpr + reg_weight * reg


class ModelsTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.ds = fixtures.random_dataset(num_users=NU, num_items=NI, per_user=4)
    self.ctx, _ = context_lib.make_context(self.ds)

  @parameterized.parameters('bprmf', 'lightgcn')
  def test_shapes_and_finite_grads(self, name):
    model = models.get_model(name)
    cfg = make_cfg(name)
    params = model.init(jax.random.key(0), self.ctx, cfg.model)
    u, i = model.embed(params, self.ctx, cfg.model)
    self.assertEqual(u.shape, (NU, 4))
    self.assertEqual(i.shape, (NI, 4))
    batch = make_batch(np.random.default_rng(1))
    (loss, aux), grads = jax.jit(jax.value_and_grad(
        lambda p, c: model.loss(p, batch, c, jax.random.key(0), cfg.model),
        has_aux=True))(params, self.ctx)
    self.assertEqual(loss.shape, ())
    self.assertSetEqual(set(aux), {'bpr', 'reg'})
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())

  @parameterized.product(name=('bprmf', 'lightgcn'), k=(1, 3))
  def test_loss_matches_numpy(self, name, k):
    model = models.get_model(name)
    cfg = make_cfg(name, num_layers=2, reg_weight=0.3)
    rng = np.random.default_rng([2, k])
    eu = rng.normal(size=(NU, 4)).astype(np.float32)
    ei = rng.normal(size=(NI, 4)).astype(np.float32)
    params = {'user_emb': jnp.asarray(eu), 'item_emb': jnp.asarray(ei)}
    batch = make_batch(rng, k=k)
    if name == 'lightgcn':
      a = sparse.to_dense(self.ctx.graph).astype(np.float64)
      x = np.concatenate([eu, ei]).astype(np.float64)
      layers = [x]
      for _ in range(2):
        layers.append(a @ layers[-1])
      e = np.mean(layers, 0)
      u_all, i_all = e[:NU], e[NU:]
    else:
      u_all, i_all = eu.astype(np.float64), ei.astype(np.float64)
    expected = np_loss(u_all, i_all, eu.astype(np.float64),
                       ei.astype(np.float64), batch, 0.3)
    loss, _ = model.loss(params, batch, self.ctx, jax.random.key(0), cfg.model)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5, atol=1e-6)
    u, i = model.embed(params, self.ctx, cfg.model)
    np.testing.assert_allclose(np.asarray(u), u_all, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(i), i_all, rtol=1e-5, atol=1e-6)

  def test_padded_rows_do_not_count(self):
    model = models.get_model('bprmf')
    cfg = make_cfg('bprmf')
    params = model.init(jax.random.key(3), self.ctx, cfg.model)
    batch = make_batch(np.random.default_rng(4), padded=2)
    cut = {k: v[:-2] for k, v in batch.items()}
    full, _ = model.loss(params, batch, self.ctx, jax.random.key(0), cfg.model)
    real, _ = model.loss(params, cut, self.ctx, jax.random.key(0), cfg.model)
    np.testing.assert_allclose(float(full), float(real), rtol=1e-6)

  def test_mostpop_scores_are_train_counts(self):
    model = models.get_model('mostpop')
    params = model.fit(jax.random.key(0), self.ctx, make_cfg('mostpop').model)
    counts = np.bincount(self.ds.select(dataset_lib.TRAIN)[1], minlength=NI)
    scores = model.score(params, self.ctx, jnp.arange(3), None)
    self.assertEqual(scores.shape, (3, NI))
    np.testing.assert_array_equal(np.asarray(scores), np.tile(counts, (3, 1)))
    u, i = model.embed(params, self.ctx, None)
    np.testing.assert_array_equal(np.asarray(u @ i.T)[:3], np.asarray(scores))

  def test_unknown_model(self):
    with self.assertRaisesRegex(ValueError, 'unknown model'):
      models.get_model('nosuchmodel')


class TransformTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(5)
    self.x = rng.normal(2.0, 3.0, size=(30, 6)).astype(np.float32)
    self.mask = np.ones(30, bool)
    self.mask[[3, 7]] = False
    self.x[~self.mask] = 0.0

  def test_l2(self):
    out, rec = controls.transform_features(self.x, self.mask, 'l2')
    np.testing.assert_allclose(np.linalg.norm(out[self.mask], axis=1), 1.0,
                               rtol=1e-6)
    self.assertEqual(rec['transform'], 'l2')

  def test_standardize_uses_present_items_only(self):
    out, _ = controls.transform_features(self.x, self.mask, 'standardize')
    np.testing.assert_allclose(out[self.mask].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[self.mask].std(0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(out[~self.mask], 0.0)

  def test_pca(self):
    out, rec = controls.transform_features(self.x, self.mask, 'pca:3')
    self.assertEqual(out.shape, (30, 3))
    cov = np.cov(out[self.mask].T)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0.0, atol=1e-4)
    self.assertTrue(np.all(np.diff(np.diag(cov)) <= 1e-6))
    self.assertBetween(rec['explained_variance'], 0.0, 1.0)
    np.testing.assert_array_equal(out[~self.mask], 0.0)

  @parameterized.parameters('pca:0', 'pca:x', 'whiten')
  def test_bad_transform(self, how):
    with self.assertRaises(ValueError):
      controls.transform_features(self.x, self.mask, how)


if __name__ == '__main__':
  absltest.main()
