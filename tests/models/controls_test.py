"""Null feature controls: shuffled and noise features (features.control)."""

import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np

from mmjax.models import context
from mmjax.models import controls
from mmjax.train import defaults
from mmjax.train import loop


def _features(seed=0, num_items=200, dim=6, missing=20):
  rng = np.random.default_rng(seed)
  values = rng.normal(2.0, 3.0, (num_items, dim))
  mask = np.ones(num_items, bool)
  mask[rng.choice(num_items, missing, replace=False)] = False
  values[~mask] = 0.0
  return values, mask


class ControlFeaturesTest(parameterized.TestCase):

  def test_shuffle_moves_present_rows_among_present_items(self):
    values, mask = _features()
    out = controls.control_features(values, mask, 'shuffle', 0, 'visual')
    np.testing.assert_array_equal(out[~mask], values[~mask])
    # The same rows, attached to other items.
    np.testing.assert_array_equal(np.sort(out[mask], axis=0),
                                  np.sort(values[mask], axis=0))
    moved = np.any(out[mask] != values[mask], axis=1).mean()
    self.assertGreater(moved, 0.95)

  def test_noise_keeps_the_marginals_and_loses_the_items(self):
    values, mask = _features(num_items=4000)
    out = controls.control_features(values, mask, 'noise', 0, 'visual')
    np.testing.assert_array_equal(out[~mask], 0.0)
    np.testing.assert_allclose(out[mask].mean(0), values[mask].mean(0),
                               atol=0.2)
    np.testing.assert_allclose(out[mask].std(0), values[mask].std(0),
                               rtol=0.05)
    corr = np.corrcoef(out[mask, 0], values[mask, 0])[0, 1]
    self.assertLess(abs(corr), 0.1)

  @parameterized.parameters('shuffle', 'noise')
  def test_seeded_per_modality(self, how):
    values, mask = _features()
    a = controls.control_features(values, mask, how, 3, 'visual')
    np.testing.assert_array_equal(
        a, controls.control_features(values, mask, how, 3, 'visual'))
    self.assertFalse(np.array_equal(
        a, controls.control_features(values, mask, how, 4, 'visual')))
    self.assertFalse(np.array_equal(
        a, controls.control_features(values, mask, how, 3, 'textual')))

  def test_none_is_identity_and_unknown_raises(self):
    values, mask = _features()
    self.assertIs(controls.control_features(values, mask, 'none', 0, 'v'),
                  values)
    with self.assertRaisesRegex(ValueError, 'permute'):
      controls.control_features(values, mask, 'permute', 0, 'v')


class ControlInContextTest(absltest.TestCase):

  def _cfg(self, **features):
    c = defaults.base_config()
    c.data.overrides = ml_collections.ConfigDict({'synthetic': {
        'num_users': 60, 'num_items': 40, 'interactions_per_user': 8,
        'max_images': 0, 'feature_dim': 8}})
    c.data.root = os.path.join(tempfile.gettempdir(), 'mmjax_controls_data')
    c.features.sources = ml_collections.ConfigDict(
        {'textual': 'synthetic_text', 'visual': 'synthetic_visual'})
    c.features.update(features)
    return c

  def test_only_the_named_modality_is_replaced(self):
    real_cfg = self._cfg()
    ds, data_dir = loop.load_dataset(real_cfg)
    real, _ = context.make_context(ds, data_dir, real_cfg.features, seed=0)
    ctl_cfg = self._cfg(control='shuffle', control_modalities=('visual',))
    ctl, record = context.make_context(ds, data_dir, ctl_cfg.features, seed=0)
    np.testing.assert_array_equal(ctl.features['textual'],
                                  real.features['textual'])
    self.assertFalse(np.array_equal(ctl.features['visual'],
                                    real.features['visual']))
    np.testing.assert_allclose(np.sort(ctl.features['visual'], axis=0),
                               np.sort(real.features['visual'], axis=0))
    self.assertEqual(record['visual']['control'], 'shuffle')
    self.assertEqual(record['textual']['control'], 'none')

  def test_unknown_control_modality_raises(self):
    cfg = self._cfg(control='noise', control_modalities=('image',))
    ds, data_dir = loop.load_dataset(cfg)
    with self.assertRaisesRegex(ValueError, 'image'):
      context.make_context(ds, data_dir, cfg.features)


if __name__ == '__main__':
  absltest.main()
