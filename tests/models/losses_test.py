"""The shared losses against numpy, on padded batches."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from mmjax.models import losses


class LossesTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.a = rng.standard_normal((5, 3)).astype(np.float32)
    self.b = rng.standard_normal((5, 2, 3)).astype(np.float32)
    self.mask = np.asarray([1, 1, 0, 1, 0], np.float32)

  def test_frobenius_is_the_norm_with_a_zero_gradient_at_zero(self):
    np.testing.assert_allclose(losses.frobenius(self.a),
                               np.linalg.norm(self.a), rtol=1e-6)
    grad = jax.grad(losses.frobenius)(jnp.zeros((2, 3)))
    np.testing.assert_array_equal(grad, 0.0)  # not NaN (sqrt'(0) = inf)

  def test_regularisers_skip_padded_rows(self):
    m = self.mask.astype(bool)
    real = m.sum()
    np.testing.assert_allclose(
        losses.emb_loss(self.mask, self.a, self.b),
        (np.linalg.norm(self.a[m]) + np.linalg.norm(self.b[m])) / real,
        rtol=1e-6)
    np.testing.assert_allclose(
        losses.squared_rows(self.mask, self.a, self.b),
        ((self.a[m] ** 2).sum() + (self.b[m] ** 2).sum()) / real, rtol=1e-6)
    np.testing.assert_allclose(losses.row_sq_norms(self.b),
                               (self.b ** 2).sum(-1), rtol=1e-6)

  def test_fold_onto_table_sums_each_rows_weights(self):
    rows = jnp.asarray([2, 0, 2, 1, 2])
    mask = jnp.asarray([1.0, 1.0, 1.0, 1.0, 0.0])
    # A 3-row table under a 5-row batch: every table row, summed weights
    # (row 2 drawn three times, once on the padded row).
    take, weight = losses.fold_onto_table(rows, mask, 3)
    self.assertIsNone(take)
    np.testing.assert_array_equal(weight, [1.0, 1.0, 2.0])
    self.assertEqual(losses.fold_onto_table(rows, None, 3), (None, None))
    # A table as large as the batch: the batch's rows, weights as given.
    take, weight = losses.fold_onto_table(rows, mask, 5)
    np.testing.assert_array_equal(take, rows)
    np.testing.assert_array_equal(weight, mask)

  def test_bpr_variants_against_numpy(self):
    pos, neg = self.a[:, 0], self.a[:, 1:]  # [B], [B, 2]
    m = self.mask.astype(bool)
    diff = (pos[:, None] - neg).astype(np.float64)
    expected = -np.log(1e-10 + 1 / (1 + np.exp(-diff))).mean(1)[m].mean()
    np.testing.assert_allclose(losses.bpr_loss(pos, neg, self.mask),
                               expected, rtol=1e-5)
    expected = np.log1p(np.exp(-diff)).mean(1)[m].mean()
    np.testing.assert_allclose(losses.bpr_logsigmoid(pos, neg, self.mask),
                               expected, rtol=1e-5)


if __name__ == '__main__':
  absltest.main()
