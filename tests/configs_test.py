"""Every model config loads on each dataset of its `data=` variant, names a
real model, and has a sweep over keys the config has (no training); the
configs keep the settings of the <model>_synthetic.py / <model>_ml_lvlm.py
pairs they replaced."""

import glob
import importlib.util
import itertools
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

from mmjax import models
from mmjax.models import options
from mmjax.train import defaults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, 'configs')
# Config files that are not one model's: the tests' and the quick start's.
NOT_MODEL_CONFIGS = ('test', 'quickstart')
MODEL_CONFIGS = sorted(
    name for name in (os.path.basename(p)[:-3]
                      for p in glob.glob(os.path.join(CONFIGS, '*.py')))
    if name not in NOT_MODEL_CONFIGS)

# The last commit with configs/<model>_{synthetic,ml_lvlm}.py as they were
# written, and the variants each of them took.
PAIRS_COMMIT = '2609810'
PAIR_VARIANTS = {
    'attributeitemknn': (('runlocal', 'mmrec'), ('dense', 'mmrec')),
    'bm3': (('runlocal',),) * 2,
    'bprmf': (('runlocal',),) * 2,
    'freedom': (('runlocal', 'elliot'),) * 2,
    'grcn': (('runlocal', 'paper'),) * 2,
    'itemknn': (('runlocal', 'classic'),) * 2,
    'lattice': (('runlocal', 'elliot'),) * 2,
    'lgmrec': (('runlocal',),) * 2,
    'lightgcn': (('runlocal',),) * 2,
    'mgcn': (('runlocal',),) * 2,
    'mostpop': ((), ()),
    'ngcf': (('runlocal', 'paper'),) * 2,
    'ngcf_m': (('runlocal', 'paper'),) * 2,
    'random': (('runlocal',),) * 2,
    'vbpr': (('runlocal', 'elliot'),) * 2,
}
_OLD_DEFAULTS = 'configs_test_old_defaults'


def load(name):
  return defaults.sibling_config(os.path.join(CONFIGS, 'x.py'), name)


def _flat(d, prefix=''):
  """{dotted key: value}; an empty section is a value ({})."""
  out = {}
  for key, value in d.items():
    if isinstance(value, dict) and value:
      out.update(_flat(value, f'{prefix}{key}.'))
    else:
      out[prefix + key] = value
  return out


def settings(cfg, base):
  """What `cfg` sets away from `base`: (changed or added fields, the base
  fields it replaced by a section or dropped)."""
  flat, flat_base = _flat(cfg.to_dict()), _flat(base.to_dict())
  missing = object()
  changed = {k: v for k, v in flat.items() if flat_base.get(k, missing) != v}
  return changed, sorted(set(flat_base) - set(flat))


def _git_show(path):
  return subprocess.run(
      ['git', '-C', REPO, 'show', f'{PAIRS_COMMIT}:{path}'],
      capture_output=True, text=True, check=True).stdout


def _subsets(names):
  return [','.join(c) for r in range(len(names) + 1)
          for c in itertools.combinations(names, r)]


class ConfigsTest(parameterized.TestCase):

  def test_every_pair_has_one_config(self):
    self.assertEqual(MODEL_CONFIGS, sorted(PAIR_VARIANTS))

  @parameterized.parameters(*MODEL_CONFIGS)
  def test_loads_with_a_model_and_a_sweep(self, name):
    module = load(name)
    for dataset in defaults.DATASETS:
      cfg = module.get_config(f'data={dataset}')
      self.assertEqual(cfg.data.name, dataset)
      self.assertEqual(cfg.model.name, name)
      model = models.get_model(cfg.model.name)
      self.assertTrue(hasattr(model, 'fit') or hasattr(model, 'loss'))
      for modality, representation in dict(cfg.features.sources).items():
        self.assertTrue(representation, f'{name}: empty source {modality}')
      keys = set(_flat(cfg.to_dict())) | {
          k.rsplit('.', 1)[0] for k in _flat(cfg.to_dict())}
      sweep = module.get_sweep()
      self.assertNotEmpty(sweep)
      for point in sweep:
        for key in point:
          self.assertIn(key, keys, f'{name}: sweep key {key} not in config')
    # The default is the synthetic data.
    self.assertEqual(module.get_config().to_dict(),
                     module.get_config('data=synthetic').to_dict())

  def test_bad_variants_name_what_is_expected(self):
    with self.assertRaisesRegex(ValueError,
                                "data='ml20m'.*synthetic, ml_lvlm"):
      load('vbpr').get_config('data=ml20m')
    with self.assertRaisesRegex(ValueError, 'needs data=ml_lvlm'):
      load('attributeitemknn').get_config('dense')
    with self.assertRaisesRegex(ValueError,
                                "unknown config variant .elliot."):
      load('bm3').get_config('elliot')

  def test_same_settings_as_the_replaced_pairs(self):
    # Each old file runs against the defaults.py of its commit and each new
    # config against today's; both must set the same fields away from their
    # base_config() (fields added to base_config() since are in neither).
    try:
      old_defaults_source = _git_show('mmjax/train/defaults.py')
    except (OSError, subprocess.CalledProcessError) as e:
      self.skipTest(f'needs the git history ({PAIRS_COMMIT}): {e}')
    old_defaults = importlib.util.module_from_spec(
        importlib.util.spec_from_loader(_OLD_DEFAULTS, loader=None))
    # pylint: disable-next=exec-used
    exec(old_defaults_source, old_defaults.__dict__)
    sys.modules[_OLD_DEFAULTS] = old_defaults
    self.addCleanup(sys.modules.pop, _OLD_DEFAULTS)
    tmp = tempfile.mkdtemp(prefix='mmjax_configs_')
    self.addCleanup(shutil.rmtree, tmp)
    for model in PAIR_VARIANTS:
      for dataset in defaults.DATASETS:
        source = _git_show(f'configs/{model}_{dataset}.py')
        self.assertIn('from mmjax.train import defaults\n', source)
        with open(os.path.join(tmp, f'{model}_{dataset}.py'), 'w') as f:
          f.write(source.replace('from mmjax.train import defaults\n',
                                 f'import {_OLD_DEFAULTS} as defaults\n'))
    old_base, new_base = old_defaults.base_config(), defaults.base_config()
    checked = 0
    for model, variants in PAIR_VARIANTS.items():
      new = load(model)
      for dataset, names in zip(defaults.DATASETS, variants):
        old = defaults.sibling_config(os.path.join(tmp, 'x.py'),
                                      f'{model}_{dataset}')
        self.assertEqual(new.get_sweep(), old.get_sweep(), model)
        for arg in _subsets(names):
          new_arg = f'data={dataset}' + (f',{arg}' if arg else '')
          old_cfg = old.get_config(arg or None)
          # Options declared since take their defaults, as the loop gives
          # an older config (model options come from options.py, not from
          # base_config()).
          with old_cfg.unlocked():
            old_cfg.model = options.complete(old_cfg.model)
          self.assertEqual(
              settings(new.get_config(new_arg), new_base),
              settings(old_cfg, old_base),
              f'configs/{model}.py:{new_arg} vs {model}_{dataset}:{arg}')
          checked += 1
    self.assertEqual(checked, 90)


if __name__ == '__main__':
  absltest.main()
