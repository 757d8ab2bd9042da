"""Tests that every extraction config under configs/features/ is usable.

Loading a config builds no model; these tests check what would otherwise
break only when a user runs the command: an extractor module that does not
exist, a texts_from cycle, a `data` section `ensure_dataset` cannot take.
"""

import glob
import importlib.util
import os

from absl.testing import absltest
from absl.testing import parameterized
import pytest

from mmjax.features import extract
from tests import conftest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(_ROOT, 'configs', 'features',
                                        '*.py')))


def load(path: str):
  spec = importlib.util.spec_from_file_location(
      '_cfg_' + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


class ConfigsTest(parameterized.TestCase):

  def test_found_them(self):
    self.assertGreaterEqual(len(CONFIGS), 8)

  @parameterized.parameters(*[os.path.basename(p) for p in CONFIGS])
  def test_loads_with_known_extractors(self, name):
    config = load(os.path.join(_ROOT, 'configs', 'features', name))
    self.assertIn('representations', config)
    self.assertNotEmpty(config.representations)
    for rep, spec in config.representations.items():
      kind = spec.extractor
      module = kind if '.' in kind else f'mmjax.features.{kind}'
      self.assertIsNotNone(importlib.util.find_spec(module), (name, rep))
    # The run order covers every representation once.
    self.assertCountEqual(extract.run_order(config.representations),
                          list(config.representations))
    # --config.dataset_dir=DIR must be settable (a locked config rejects
    # a key it does not have).
    self.assertIn('dataset_dir', config)

  @parameterized.parameters('lvlm_qwen2vl.py', 'lvlm_smolvlm.py',
                            'lvlm_phi35.py')
  def test_lvlm_model_and_domain_set_every_spec(self, name):
    config = load(os.path.join(_ROOT, 'configs', 'features', name))
    config.model = '/models/x'
    config.domain = 'baby'
    reps = {k: v.to_dict() for k, v in config.representations.items()}
    for rep, spec in reps.items():
      if spec['extractor'] == 'lvlm':
        self.assertEqual(spec['model'], '/models/x', rep)
      if 'prompt' in spec:
        self.assertEqual(spec['prompt']['domain'], 'baby', rep)
      source = spec.get('texts_from')
      if source:
        # Descriptions read an LVLM representation of the same config.
        self.assertEqual(reps[source]['extractor'], 'lvlm', rep)

  # Resolving the data section lists the LVLM files under ../shared/data.
  @pytest.mark.shared_data
  def test_ml_lvlm_is_the_done_means_command(self):
    if not os.path.isdir(conftest.SHARED_DATA):
      self.skipTest('needs ../shared/data (MovieLens LVLM files), absent here')
    config = load(os.path.join(_ROOT, 'configs', 'features', 'ml_lvlm.py'))
    names = list(config.representations)
    self.assertIn('minilm_title_genres', names)
    self.assertLen([n for n in names if n.startswith('minilm_')], 13)
    self.assertLen([n for n in names if n.startswith('keywords_')], 8)
    for n in names:
      if n.startswith('keywords_'):
        spec = config.representations[n]
        self.assertEqual((spec.top_k, spec.threshold), (50, 0.45))
        self.assertTrue(spec.csv.path.endswith('_keywords.csv'))
    from mmjax.data import prepare  # pylint: disable=g-import-not-at-top

    # What ensure_dataset does first; it raised on the old data section.
    data = prepare.resolve_training_data(config.data)
    self.assertEqual((data.name, data.format), ('ml_lvlm', 'movielens_latest'))
    self.assertLen(data.restrict_items_csv, 12)


if __name__ == '__main__':
  absltest.main()
