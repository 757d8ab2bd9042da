"""Every training config loads, names a real model and dataset, and has a sweep
over keys the config has (no training)."""

import glob
import os

from absl.testing import absltest
from absl.testing import parameterized

from mmjax import models
from mmjax.train import defaults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(
    os.path.basename(p)[:-3]
    for p in glob.glob(os.path.join(REPO, 'configs', '*_*.py')))
DATASETS = ('synthetic', 'ml_lvlm')


def _flat_keys(cfg, prefix=''):
  keys = set()
  for key, value in cfg.items():
    keys.add(prefix + key)
    if hasattr(value, 'items'):
      keys |= _flat_keys(value, f'{prefix}{key}.')
  return keys


class ConfigsTest(parameterized.TestCase):

  def test_every_model_has_both_dataset_configs(self):
    pairs = {name.rsplit('_', 1)[0] if name.endswith('_synthetic') else
             name[:-len('_ml_lvlm')] for name in CONFIGS
             if name.endswith(('_synthetic', '_ml_lvlm'))}
    for model in pairs:
      for dataset in DATASETS:
        self.assertIn(f'{model}_{dataset}', CONFIGS)

  @parameterized.parameters(
      *[n for n in CONFIGS if n.endswith(('_synthetic', '_ml_lvlm'))])
  def test_loads_with_a_model_and_a_sweep(self, name):
    module = defaults.sibling_config(
        os.path.join(REPO, 'configs', 'x.py'), name)
    cfg = module.get_config()
    dataset = 'synthetic' if name.endswith('_synthetic') else 'ml_lvlm'
    self.assertEqual(cfg.data.name, dataset)
    model = models.get_model(cfg.model.name)
    self.assertEqual(name, f'{cfg.model.name}_{dataset}')
    for modality, representation in dict(cfg.features.sources).items():
      self.assertTrue(representation, f'{name}: empty source {modality}')
    sweep = module.get_sweep()
    self.assertNotEmpty(sweep)
    keys = _flat_keys(cfg)
    for point in sweep:
      for key in point:
        self.assertIn(key, keys, f'{name}: sweep key {key} not in config')
    self.assertTrue(hasattr(model, 'fit') or hasattr(model, 'loss'))


if __name__ == '__main__':
  absltest.main()
