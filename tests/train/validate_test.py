"""`validate.check`: every shipped config passes, each bad value is refused
with its key and what is expected, and the module's copies of names agree
with the code that uses them."""

import glob
import math
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

from mmjax.eval import metrics
from mmjax.eval import ranking
from mmjax.models import controls
from mmjax.train import optim
from mmjax.train import sampler
from mmjax.train import validate
from tests.testing import fixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


class ValidateTest(parameterized.TestCase):

  def test_every_training_config_passes(self):
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(
        os.path.join(REPO, 'configs', '*.py')))
    self.assertIn('quickstart', names)
    for name in names:
      validate.check(fixtures.load_config(name))

  @parameterized.parameters(
      ('optim.lr', 0.0, 'finite number > 0'),
      ('optim.lr', -1e-3, 'finite number > 0'),
      ('optim.lr', math.nan, 'finite number > 0'),
      ('optim.lr', math.inf, 'finite number > 0'),
      ('optim.name', 'adma', 'adagrad, adam, adamax'),
      ('optim.schedule', 'cosin', 'constant, mmrec, cosine'),
      ('optim.weight_decay', -0.1, '>= 0'),
      ('optim.clip_norm', 0.0, '> 0'),
      ('train.num_epochs', -3, 'integer >= 1'),
      ('train.num_epochs', 0, 'integer >= 1'),
      ('train.batch_size', 0, 'integer >= 1'),
      ('train.batch_size', 2.5, 'integer >= 1'),
      ('train.num_negatives', 0, 'integer >= 1'),
      ('train.eval_every_epochs', 0, 'integer >= 1'),
      ('train.patience', -1, 'integer >= 0'),
      ('train.negatives_from', 'items', 'train_items, all'),
      ('eval.select_metric', 'recal@20', 'recall, ndcg'),
      ('eval.select_metric', 'recall20', '<metric>@<k>'),
      ('eval.select_metric', 'arp@20', '<metric>@<k>'),
      ('eval.select_metric', 'recall@50', 'not in eval.topk (10, 20)'),
      ('eval.topk', (), 'non-empty'),
      ('eval.topk', (10, 0), 'integers >= 1'),
      ('eval.batch_users', 0, 'integer >= 1'),
      ('eval.convention', 'mmrc', 'mmrec, elliot'),
      ('eval.gain', 'graded', "eval.convention='elliot'"),
      ('eval.user_groups', (0, 5, 5), 'increasing'),
      ('model.name', 'lightgcnn', 'no such model'),
      ('model.name', '../x', 'no such model'),
      ('model.embed_dim', 0, 'integer >= 1'),
      ('model.reg_weight', math.nan, 'finite number >= 0'),
      ('features.control', 'shufle', 'none, shuffle, noise'),
      ('features.transform', 'pca:0', 'pca:<k>'),
      ('features.transform', 'l1', 'pca:<k>'),
      ('features.control_modalities', ('visual',), 'not in features.sources'),
      ('mesh.data', 0, '-1 (all devices)'),
      ('mesh.data', 3, 'multiple of mesh.data=3'),
      ('mesh.process_id', 1, '[0, mesh.num_processes=1)'),
      ('ckpt.every_epochs', 0, 'integer >= 1'),
      ('ckpt.keep', 0, 'integer >= 1'),
      ('seed', 1.5, 'an integer'),
  )
  def test_refuses(self, key, value, expected):
    cfg = fixtures.with_value(fixtures.load_config('test'), key, value)
    with self.assertRaises(validate.ConfigError) as cm:
      validate.check(cfg)
    message = str(cm.exception)
    # mesh.data=3 is a valid device count; what it refuses is the batch.
    named = 'train.batch_size' if key == 'mesh.data' and value == 3 else key
    self.assertIn(named, message)
    self.assertIn(expected, message)
    self.assertIsInstance(cm.exception, ValueError)

  def test_topk_without_the_selection_cut_off(self):
    cfg = fixtures.with_value(fixtures.load_config('test'), 'eval.topk',
                              (10, 50))
    with self.assertRaisesRegex(validate.ConfigError,
                                r"eval.select_metric='recall@20'.*@20 is "
                                r'not in eval.topk \(10, 50\)'):
      validate.check(cfg)

  @parameterized.parameters('ndcg@10', 'hit@20', 'mrr@10', 'map@20',
                            'recall@20/cold_items')
  def test_accepts_select_metric(self, select):
    validate.check(fixtures.with_value(fixtures.load_config('test'),
                                       'eval.select_metric', select))

  def test_accepts_none_placeholders_and_valid_variants(self):
    cfg = fixtures.load_config('test', 'mostpop')
    cfg.train.patience = None
    cfg.features.transform = 'pca:8'
    cfg.mesh.data = 8
    cfg.train.batch_size = 256
    validate.check(cfg)

  def test_missing_key_is_named(self):
    cfg = fixtures.load_config('test')
    del cfg.optim['lr']
    with self.assertRaisesRegex(validate.ConfigError, 'optim.lr is missing'):
      validate.check(cfg)

  def test_multi_model_sections_are_checked(self):
    cfg = fixtures.load_config('quickstart')
    validate.check(cfg)
    cfg.per_model.lightgcn.name = 'lightgcnn'
    with self.assertRaisesRegex(validate.ConfigError,
                                "per_model.lightgcn.name='lightgcnn'"):
      validate.check(cfg)
    cfg = fixtures.load_config('quickstart')
    cfg.per_model.bprmf.embed_dim = 0
    with self.assertRaisesRegex(validate.ConfigError,
                                'per_model.bprmf.embed_dim=0'):
      validate.check(cfg)
    cfg = fixtures.load_config('quickstart')
    cfg.models = ('mostpop', 'vbpr')
    with self.assertRaisesRegex(validate.ConfigError, 'per_model.vbpr'):
      validate.check(cfg)

  def test_copies_agree_with_the_code(self):
    self.assertEqual(validate.SELECT_METRICS, metrics.NAMES)
    self.assertEqual(validate.CONVENTIONS, metrics.CONVENTIONS)
    self.assertEqual(validate.CONTROLS, controls.CONTROLS)
    self.assertEqual(validate.NEGATIVES_FROM, sampler.NEGATIVES_FROM)
    self.assertEqual(validate.COLD_SUFFIX, ranking.COLD)
    self.assertEqual(validate.OPTIMIZERS, optim.OPTIMIZERS)
    cfg = fixtures.load_config('test')
    for name in validate.OPTIMIZERS:
      for schedule in validate.SCHEDULES:
        cfg.optim.name, cfg.optim.schedule = name, schedule
        optim.make_optimizer(cfg, steps_per_epoch=3)  # with each schedule
    self.assertTrue(validate.model_exists('lightgcn'))
    self.assertFalse(validate.model_exists('context'))
    self.assertFalse(validate.model_exists('nosuch'))

  def test_devices(self):
    cfg = fixtures.load_config('test')  # batch 256, mesh.data -1.
    validate.check_devices(cfg, 8)
    with self.assertRaisesRegex(validate.ConfigError,
                                'train.batch_size=256: expected a multiple '
                                'of the 3 devices'):
      validate.check_devices(cfg, 3)
    # Closed-form models have no batches.
    validate.check_devices(cfg, 3, closed_form=lambda name: True)
    cfg.mesh.data = 16
    with self.assertRaisesRegex(validate.ConfigError,
                                r'mesh.data=16: only 8 device\(s\)'):
      validate.check_devices(cfg, 8)
    # batch 2048: mostpop, bprmf, lightgcn.
    cfg = fixtures.load_config('quickstart')
    self.assertEqual(validate.model_names(cfg),
                     ['mostpop', 'bprmf', 'lightgcn'])
    with self.assertRaisesRegex(validate.ConfigError, '3 devices'):
      validate.check_devices(cfg, 3, lambda name: name == 'mostpop')

  def test_imports_no_jax(self):
    # launch checks configs before importing the training stack.
    code = ('import sys; from mmjax.train import validate; '
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('jax', 'flax', 'optax')))")
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                         capture_output=True, text=True, timeout=120,
                         check=True)
    self.assertEqual(out.stdout.strip(), '[]')


if __name__ == '__main__':
  absltest.main()
