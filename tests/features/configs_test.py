"""Tests that every extraction config under configs/features/ is usable.

Loading a config builds no model; these tests check what would otherwise
break only when a user runs the command: an extractor module that does not
exist, a texts_from cycle, a `data` section `ensure_dataset` cannot take.
"""

import glob
import importlib.util
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import pytest

from mmjax.features import extract
from tests.testing import fixtures

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# lvlm_outputs.py needs a folder of LVLM outputs (--config.lvlm_dir);
# tests/features/byod_test.py loads it on one it writes.
CONFIGS = sorted(p for p in glob.glob(os.path.join(_ROOT, 'configs',
                                                   'features', '*.py'))
                 if os.path.basename(p) != 'lvlm_outputs.py')
ML_LVLM = os.path.join(_ROOT, 'configs', 'features', 'ml_lvlm.py')


def shared_data_env():
  """$MMJAX_SHARED_DATA as the tests see it (fixtures.SHARED_DATA)."""
  return mock.patch.dict(os.environ,
                         {'MMJAX_SHARED_DATA': fixtures.SHARED_DATA})


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
    if name == 'ml_lvlm.py' and not os.path.isdir(fixtures.SHARED_DATA):
      self.skipTest('ml_lvlm.py lists the LVLM files under $MMJAX_SHARED_DATA')
    with shared_data_env():
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

  # Resolving the data section lists the LVLM files under $MMJAX_SHARED_DATA.
  @pytest.mark.shared_data
  def test_ml_lvlm_is_the_done_means_command(self):
    if not os.path.isdir(fixtures.SHARED_DATA):
      self.skipTest('needs $MMJAX_SHARED_DATA (the MovieLens LVLM files)')
    with shared_data_env():
      config = load(ML_LVLM)
    names = list(config.representations)
    self.assertIn('minilm_title_genres', names)
    self.assertLen([n for n in names if n.startswith('minilm_')], 13)
    self.assertLen([n for n in names if n.startswith('keywords_')], 8)
    for n in names:
      if n.startswith('keywords_'):
        spec = config.representations[n]
        self.assertEqual((spec.top_k, spec.threshold), (50, 0.45))
        self.assertTrue(spec.csv.path.endswith('_keywords.csv'))
    # The specs the study's features were extracted with (a changed spec
    # makes the stored features stale).
    minilm = 'sentence-transformers/all-MiniLM-L6-v2'
    reps = config.representations.to_dict()
    folder = os.path.dirname(reps['keywords_qwen2_keywords']['csv']['path'])
    csv = {'key': 'asin', 'column': 'result', 'field': 'lvlm_text'}
    self.assertEqual(reps['keywords_qwen2_keywords'], {
        'extractor': 'descriptions', 'method': 'keywords',
        'prompt': {'domain': 'movies', 'kind': 'fitb'}, 'min_slots': 3,
        'top_k': 50, 'threshold': 0.45, 'embed_model': minilm,
        'csv': dict(csv, path=os.path.join(folder, 'qwen2_keywords.csv'))})
    self.assertEqual(reps['minilm_phi_35vl_mis'], {
        'extractor': 'descriptions', 'method': 'text', 'model': minilm,
        'normalize': True,
        'csv': dict(csv, path=os.path.join(folder, 'phi_35vl_mis.csv'))})
    self.assertEqual(reps['minilm_title_genres'], {
        'extractor': 'text', 'model': minilm, 'fields': ['title', 'genres'],
        'normalize': True})
    from mmjax.data import prepare  # pylint: disable=g-import-not-at-top

    # What ensure_dataset does first; it raised on the old data section.
    with shared_data_env():
      data = prepare.resolve_training_data(config.data)
    self.assertEqual((data.name, data.format), ('ml_lvlm', 'movielens_latest'))
    self.assertLen(data.restrict_items_csv, 12)
    # The features read the files the dataset is restricted to.
    self.assertCountEqual(
        [os.path.realpath(p) for p in data.restrict_items_csv],
        {os.path.realpath(s.csv.path) for n, s in
         config.representations.items() if n != 'minilm_title_genres'})

  def test_ml_lvlm_lvlm_folder_from_the_environment_or_the_flag(self):
    d = fixtures.new_tempdir(self)
    with mock.patch.dict(os.environ, {'MMJAX_SHARED_DATA': ''}), \
         mock.patch('sys.argv', ['extract']), \
         self.assertRaisesRegex(SystemExit, r'MMJAX_SHARED_DATA is not set'):
      load(ML_LVLM)
    with mock.patch.dict(os.environ, {'MMJAX_SHARED_DATA': d}), \
         mock.patch('sys.argv', ['extract']), \
         self.assertRaisesRegex(
             SystemExit,
             f'{d}/movielens-lvlm/lvlm: the MovieLens LVLM outputs folder is '
             'absent'):
      load(ML_LVLM)
    # --config.lvlm_dir names another folder; the study's file names decide
    # the kinds there too.
    for stem in ('m_keywords', 'm_descriptive', 'm_mis'):
      with open(os.path.join(d, f'{stem}.csv'), 'w') as f:
        f.write('asin,result\n1,x\n')
    with mock.patch.dict(os.environ, {'MMJAX_SHARED_DATA': ''}), \
         mock.patch('sys.argv', ['extract', f'--config.lvlm_dir={d}']):
      config = load(ML_LVLM)
    self.assertCountEqual(
        config.representations,
        ['minilm_title_genres', 'minilm_m_keywords', 'minilm_m_descriptive',
         'minilm_m_mis', 'keywords_m_keywords'])
    self.assertEqual(config.representations.keywords_m_keywords.prompt.domain,
                     'movies')
    self.assertEqual(config.data.name, 'ml_lvlm')


if __name__ == '__main__':
  absltest.main()
