"""`python -m mmjax.launch` user errors: one or two lines on stderr, exit
status 2 (usage) or 1 (data, packages), before JAX is imported; a reused
workdir is refused with nothing overwritten; a failed start leaves no workdir
of its own behind.

Each case is one subprocess. Most run launch through a small wrapper
(`runpy`, as `-m` does) that reports whether JAX was imported and can block a
module or stand in for the training loop, so no case trains.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest

from mmjax.train import loop
from mmjax.utils import runinfo
from tests.testing import fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CONFIG = os.path.join('configs', 'test.py')

WRAPPER = r'''
import importlib.abc, os, runpy, sys, types
blocked, fake, argv = {blocked!r}, {fake!r}, {argv!r}


class Uninstalled(importlib.abc.MetaPathFinder):
  # Imports of `blocked` fail as they do where the package is not installed.

  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in blocked:
      raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    return None


sys.meta_path.insert(0, Uninstalled())
if fake:
  # A stand-in training loop: writes a metrics file (or raises a data error
  # before training) without importing the training stack.
  from mmjax.data import dataset

  def train_and_evaluate(cfg, workdir):
    if fake == 'data_error':
      raise dataset.DataError('planted data error')
    with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
      f.write(cfg.model.name)
    return []

  loop = types.ModuleType('mmjax.train.loop')
  loop.train_and_evaluate = train_and_evaluate
  sys.modules['mmjax.train.loop'] = loop
  import mmjax.train
  mmjax.train.loop = loop
sys.argv = ['mmjax/launch.py'] + argv
try:
  runpy.run_module('mmjax.launch', run_name='__main__', alter_sys=True)
finally:
  print('jax imported:', 'jax' in sys.modules)
'''


def launch(*argv, blocked=(), fake=None):
  code = WRAPPER.format(blocked=tuple(blocked), fake=fake, argv=list(argv))
  # One CPU device: the cases that reach JAX only list the devices.
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  return subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def snapshot(folder):
  """{relative path: (bytes, mtime_ns)} of every file under `folder`."""
  out = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, folder)] = (f.read(),
                                              os.stat(path).st_mtime_ns)
  return out


class LaunchErrorsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='mmjax_launch_errors_')
    cls.workdir = os.path.join(cls.tmp, 'run')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def assertUserError(self, out, status, *words):
    lines = out.stderr.strip().splitlines()
    self.assertBetween(len(lines), 1, 2, out.stderr[-3000:])
    self.assertTrue(lines[0].startswith('error: '), out.stderr)
    for word in words:
      self.assertIn(word, out.stderr)
    self.assertEqual(out.returncode, status, out.stderr)
    self.assertIn('jax imported: False', out.stdout)

  def test_misspelt_key(self):
    # Plain `-m`, as a user types it.
    out = subprocess.run(
        [sys.executable, '-m', 'mmjax.launch', '--config', TEST_CONFIG,
         '--workdir', self.workdir, '--config.optim.lrr=0.1'], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    self.assertEqual(out.stderr.strip().splitlines(), [
        'error: unknown key optim.lrr; did you mean optim.lr?'])
    self.assertEqual(out.returncode, 2)
    self.assertFalse(os.path.exists(self.workdir))

  def test_missing_config_file(self):
    out = launch('--config', 'configs/nosuch.py', '--workdir', self.workdir)
    self.assertUserError(out, 2, 'no such file configs/nosuch.py')

  def test_wrong_type(self):
    out = launch('--config', TEST_CONFIG, '--workdir', self.workdir,
                 '--config.train.batch_size=abc')
    self.assertUserError(out, 2, '--config.train.batch_size=abc',
                         'type int')

  def test_none_sets_an_optional_field_to_none(self):
    # clip_norm and data.cold are placeholders: `None` parses, and the run
    # goes on to the next check (a bad metric, so nothing trains).
    out = launch('--config', TEST_CONFIG, '--workdir', self.workdir,
                 '--config.optim.clip_norm=None', '--config.data.cold=None',
                 '--config.eval.select_metric=recal@20')
    self.assertUserError(out, 2, "eval.select_metric='recal@20'")
    self.assertNotIn('clip_norm', out.stderr)
    # A field that is not optional still refuses it.
    out = launch('--config', TEST_CONFIG, '--workdir', self.workdir,
                 '--config.train.batch_size=None')
    self.assertUserError(out, 2, '--config.train.batch_size=None', 'type int')

  def test_config_value_that_cannot_run(self):
    out = launch('--config', TEST_CONFIG, '--workdir', self.workdir,
                 '--config.eval.select_metric=recal@20')
    self.assertUserError(out, 2, "eval.select_metric='recal@20'", 'recall')
    self.assertFalse(os.path.exists(self.workdir))

  def test_more_devices_than_present(self):
    # Found once JAX lists the devices, before the dataset is touched.
    out = launch('--config', TEST_CONFIG, '--workdir', self.workdir,
                 '--config.mesh.data=64',
                 f'--config.data.root={os.path.join(self.tmp, "no_data")}')
    lines = out.stderr.strip().splitlines()
    self.assertEqual(lines, [
        'error: mesh.data=64: only 1 device(s) available.'], out.stderr)
    self.assertEqual(out.returncode, 2)
    self.assertFalse(os.path.exists(os.path.join(self.tmp, 'no_data')))
    self.assertFalse(os.path.exists(self.workdir))

  def test_missing_optional_module(self):
    config = os.path.join(self.tmp, 'needs_simplemma.py')
    with open(config, 'w') as f:
      f.write('import simplemma\n')
    out = launch('--config', config, '--workdir', self.workdir,
                 blocked=('simplemma',))
    self.assertUserError(out, 2, '`simplemma`', 'make install-extract')

  def test_debug_shows_the_traceback(self):
    out = launch('--config', TEST_CONFIG, '--workdir', self.workdir,
                 '--config.optim.lrr=0.1', '--debug')
    self.assertIn('Traceback', out.stderr)
    self.assertNotEqual(out.returncode, 0)

  def test_help(self):
    out = launch('--helpshort')
    self.assertIn('--overwrite', out.stdout)
    self.assertIn('--debug', out.stdout)

  def test_reused_workdir_is_refused_and_untouched(self):
    workdir = os.path.join(self.tmp, 'lightgcn')
    fixtures.finished_run(workdir, fixtures.load_config())
    with open(os.path.join(workdir, 'results.json'), 'w') as f:
      json.dump({'model': 'lightgcn'}, f)
    before = snapshot(workdir)
    out = launch('--config', TEST_CONFIG + ':bprmf', '--workdir', workdir)
    self.assertUserError(out, 2, "model.name: 'lightgcn' -> 'bprmf'",
                         '--overwrite', 'another --workdir')
    self.assertEqual(snapshot(workdir), before)

  def test_longer_run_resumes_and_overwrite_moves_aside(self):
    workdir = os.path.join(self.tmp, 'resume')
    fixtures.finished_run(workdir, fixtures.load_config())
    out = launch('--config', TEST_CONFIG, '--workdir', workdir,
                 '--config.train.num_epochs=5', fake='ok')
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    with open(os.path.join(workdir, runinfo.CONFIG)) as f:
      self.assertEqual(json.load(f)['train']['num_epochs'], 5)
    before = snapshot(workdir)
    out = launch('--config', TEST_CONFIG + ':bprmf', '--workdir', workdir,
                 '--overwrite', fake='ok')
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    archived = [d for d in os.listdir(self.tmp)
                if d.startswith('resume.old-')]
    self.assertLen(archived, 1)
    self.assertEqual(snapshot(os.path.join(self.tmp, archived[0])), before)
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      self.assertEqual(f.read(), 'bprmf')

  def test_failed_start_removes_only_its_own_workdir(self):
    own = os.path.join(self.tmp, 'own')
    out = launch('--config', TEST_CONFIG, '--workdir', own,
                 fake='data_error')
    self.assertEqual(out.returncode, 1)
    self.assertEqual(out.stderr.strip().splitlines()[-1],
                     'error: planted data error')
    self.assertFalse(os.path.exists(own))
    mine = os.path.join(self.tmp, 'pre_existing')
    os.makedirs(mine)
    out = launch('--config', TEST_CONFIG, '--workdir', mine,
                 fake='data_error')
    self.assertEqual(out.returncode, 1)
    self.assertTrue(os.path.isdir(mine))

  def test_misspelt_representation_of_a_prepared_dataset(self):
    root = os.path.join(self.tmp, 'data')
    cfg = fixtures.load_config('vbpr', 'runlocal')
    cfg.data.root = root
    loop.load_dataset(cfg)  # Prepared: its features are listed.
    workdir = os.path.join(self.tmp, 'vbpr')
    out = launch('--config', 'configs/vbpr.py:runlocal',
                 '--workdir', workdir, f'--config.data.root={root}',
                 '--config.features.sources.visual=synthetic_visal')
    self.assertUserError(out, 2, "features.sources.visual='synthetic_visal'",
                         "did you mean 'synthetic_visual'?")
    self.assertFalse(os.path.exists(workdir))

  def test_misspelt_representation_of_a_new_dataset(self):
    # The dataset is prepared by the run itself, so the representation is
    # found missing only after the workdir was made: it is removed.
    workdir = os.path.join(self.tmp, 'vbpr_new')
    out = subprocess.run(
        [sys.executable, '-m', 'mmjax.launch',
         '--config', 'configs/vbpr.py:runlocal',
         '--workdir', workdir,
         f'--config.data.root={os.path.join(self.tmp, "fresh_data")}',
         '--config.features.sources.visual=synthetic_visal'], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    self.assertEqual(out.returncode, 1, out.stderr[-3000:])
    self.assertIn('synthetic_visal', out.stderr.strip().splitlines()[-1])
    self.assertNotIn('Traceback', out.stderr)
    self.assertFalse(os.path.exists(workdir))


if __name__ == '__main__':
  absltest.main()
