"""The model option declarations (mmjax/models/options.py): one per model,
what the configs and the sweeps use, and what validate refuses."""

import os
import pkgutil

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections

from mmjax import models
from mmjax.models import options
from mmjax.train import defaults
from mmjax.train import loop
from mmjax.train import validate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
CONFIGS = os.path.join(REPO, 'configs')
# Modules of mmjax/models that hold shared code, not a recommender.
SHARED = ('context', 'controls', 'layers', 'losses', 'options')


def load(name):
  return defaults.sibling_config(os.path.join(CONFIGS, 'x.py'), name)


class OptionsTest(parameterized.TestCase):

  def test_one_declaration_per_model_module(self):
    modules = sorted(m.name for m in pkgutil.iter_modules(models.__path__)
                     if m.name not in SHARED)
    self.assertEqual(modules, list(options.names()))
    for name in modules:
      self.assertTrue(validate.model_exists(name))
    for name in SHARED:
      self.assertFalse(validate.model_exists(name))

  @parameterized.parameters(*options.names())
  def test_defaults_are_valid_and_complete(self, name):
    section = options.section(name)
    self.assertIsNone(options.problem(section))
    self.assertEqual(set(section.keys()),
                     set(options.COMMON) | set(options.declared(name)))
    for option in options.MODELS[name]:
      self.assertIsNone(option.problem(option.default), option.name)

  @parameterized.parameters(*options.names())
  def test_config_sweep_keys_are_declared(self, name):
    module = load(name)
    cfg = module.get_config()
    self.assertIsNone(options.problem(cfg.model))
    # The config's model section is the declaration, nothing more or less.
    self.assertEqual(set(cfg.model.keys()),
                     set(options.section(name).keys()))
    for point in module.get_sweep():
      for key in point:
        if key.startswith('model.'):
          self.assertIn(key.split('.', 1)[1], options.declared(name))

  def test_misspelt_option_refused_with_the_options_closest_first(self):
    cfg = load('vbpr').get_config()
    with cfg.model.unlocked():
      cfg.model.normalise_projection = True
    with self.assertRaisesRegex(
        validate.ConfigError,
        r"model.normalise_projection: model 'vbpr' has no option "
        r"'normalise_projection'; its options, closest first: "
        r'normalize_projection, '):
      validate.check(cfg)

  @parameterized.parameters(
      ('freedom', 'dropout', 1.0, r'in \[0.0, 1.0\)'),
      ('freedom', 'prune_every', 'batch', "one of 'epoch', 'step'"),
      ('freedom', 'knn_k', 2.5, 'an integer >= 1'),
      ('lgmrec', 'gumbel', 1, 'True or False'),
      ('ngcf', 'weight_size', 0, 'an integer >= 1 or None'),
      ('freedom', 'mm_weights', {'visual': 'high'}, 'modality: weight'),
  )
  def test_ill_typed_option_refused(self, name, key, value, expected):
    cfg = load(name).get_config()
    section = cfg.model.to_dict()
    section[key] = value
    with cfg.unlocked():
      cfg.model = ml_collections.ConfigDict(section)
    with self.assertRaisesRegex(validate.ConfigError,
                                f'model.{key}=.*expected .*{expected}'):
      validate.check(cfg)

  def test_multi_model_sections_checked_per_model(self):
    cfg = load('quickstart').get_config()
    self.assertNotIn('model', cfg)
    with cfg.per_model.lightgcn.unlocked():
      cfg.per_model.lightgcn.num_layer = 3
    with self.assertRaisesRegex(
        validate.ConfigError,
        "per_model.lightgcn.num_layer: model 'lightgcn' has no option "
        "'num_layer'; its options, closest first: num_layers"):
      validate.check(cfg)

  def test_unknown_model_lists_models_closest_first(self):
    cfg = load('test').get_config()
    cfg.model.name = 'lightgnc'
    with self.assertRaisesRegex(validate.ConfigError,
                                'closest first: lightgcn, '):
      validate.check(cfg)

  def test_section_refuses_an_undeclared_override(self):
    with self.assertRaisesRegex(KeyError, 'closest first: knn_k'):
      options.section('freedom', knn=3)

  def test_missing_options_get_the_declared_defaults(self):
    # An older run's config.json, or a hand-made section: the loop fills in
    # what the model declares and keeps what the section sets.
    cfg = load('test').get_config()
    with cfg.unlocked():
      cfg.model = ml_collections.ConfigDict({'name': 'freedom',
                                             'knn_k': 3})
    full = loop.with_declared_options(cfg).model
    self.assertEqual(full.knn_k, 3)
    self.assertEqual(full.dropout, 0.8)
    self.assertEqual(full.mm_weights.to_dict(),
                     {'visual': 0.1, 'textual': 0.9})
    self.assertEqual(set(full.keys()), set(options.section('freedom')))


if __name__ == '__main__':
  absltest.main()
