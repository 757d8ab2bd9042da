"""The package works without its checkout: wheel, fresh venv, prepare, train.

The wheel is built from a copy of the sources (the checkout gets no build/
or egg-info) and installed with pip, without an index, into a new venv
outside the checkout. That venv reaches the dependencies already installed
in this interpreter's site-packages through a .pth path line, which adds the
folder but runs none of its .pth files: the editable install's import hook,
which would find the checkout, stays off. Every command runs from a
temporary working directory with PYTHONPATH and the MMJAX_ variables unset,
so the defaults apply (the data root is ./data under the working
directory), and the run config is a file written here, not one of configs/.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import zipfile

from absl.testing import absltest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

# The quick start's dataset (the built-in `synthetic`) at test size; the run
# config below asks for the same one, so training reuses what prepare made.
SYNTHETIC = {'num_users': 120, 'num_items': 80, 'interactions_per_user': 12,
             'max_images': 0, 'feature_dim': 8}

RUN_CONFIG = textwrap.dedent("""\
    from mmjax.train import defaults


    def get_config(arg=None):
      del arg
      c = defaults.base_config()
      c.data.overrides = {'synthetic': %r}
      c.model.name, c.model.embed_dim = 'bprmf', 8
      c.train.num_epochs, c.train.batch_size, c.train.patience = 2, 256, 0
      c.eval.topk, c.eval.batch_users = (10, 20), 64
      c.ckpt.every_epochs = 1
      return c
    """) % (SYNTHETIC,)


class WheelTest(absltest.TestCase):

  def _run(self, args, cwd, env, timeout=120):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    self.assertEqual(proc.returncode, 0,
                     f'{" ".join(args)}\n{proc.stdout}\n{proc.stderr}')
    return proc

  def test_prepare_and_train_from_the_installed_wheel(self):
    tmp = tempfile.mkdtemp(prefix='mmjax_wheel_')
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    src = os.path.join(tmp, 'src')
    shutil.copytree(os.path.join(REPO, 'mmjax'), os.path.join(src, 'mmjax'),
                    ignore=shutil.ignore_patterns('__pycache__', '_lib'))
    for name in ('pyproject.toml', 'README.md'):
      shutil.copy(os.path.join(REPO, name), src)
    env = {k: v for k, v in os.environ.items()
           if k != 'PYTHONPATH' and not k.startswith('MMJAX_')}
    wheels = os.path.join(tmp, 'wheels')
    self._run([sys.executable, '-m', 'pip', 'wheel', src, '--no-deps',
               '--no-build-isolation', '--no-index', '-q', '-w', wheels],
              tmp, env)
    (wheel,) = glob.glob(os.path.join(wheels, 'mmjax-*.whl'))
    with zipfile.ZipFile(wheel) as z:
      names = set(z.namelist())
    # The built-in datasets and the kernel's source ship; no config, test or
    # build product does.
    self.assertIn('mmjax/data/datasets.py', names)
    self.assertIn('mmjax/graph/kernel/csrc/spmm.cc', names)
    self.assertEmpty([n for n in names
                      if n.startswith(('configs/', 'tests/')) or
                      n.endswith('.so')])

    venv = os.path.join(tmp, 'venv')
    self._run([sys.executable, '-m', 'venv', '--without-pip', venv], tmp, env)
    python = os.path.join(venv, 'bin', 'python')
    self._run([sys.executable, '-m', 'pip', '--python', python, 'install',
               '--no-deps', '--no-index', '-q', wheel], tmp, env)
    site = self._run([python, '-c', 'import sysconfig; print(sysconfig.'
                      'get_paths()["purelib"])'], tmp, env).stdout.strip()
    deps = {sysconfig.get_paths()[k] for k in ('purelib', 'platlib')}
    with open(os.path.join(site, 'deps.pth'), 'w', encoding='utf-8') as f:
      f.write('\n'.join(sorted(deps)) + '\n')

    work = os.path.join(tmp, 'work')
    os.makedirs(work)
    where = json.loads(self._run(
        [python, '-c', 'import json, os, sys, mmjax; print(json.dumps('
         '[mmjax.__file__, [os.path.abspath(p) for p in sys.path]]))'],
        work, env).stdout)
    self.assertTrue(where[0].startswith(site + os.sep), where[0])
    self.assertNotIn(REPO, where[1])

    synthetic = [f'--config.synthetic.{k}={v}' for k, v in SYNTHETIC.items()]
    out = self._run([python, '-m', 'mmjax.data.prepare', '--config',
                     'synthetic', *synthetic], work, env).stdout
    (dataset,) = glob.glob(os.path.join(work, 'data', 'synthetic-*'))
    self.assertIn(f'dataset written to {dataset}', out)

    config = os.path.join(tmp, 'run_config.py')
    with open(config, 'w', encoding='utf-8') as f:
      f.write(RUN_CONFIG)
    workdir = os.path.join(work, 'run')
    self._run([python, '-m', 'mmjax.launch', '--config', config,
               '--workdir', workdir], work, env, timeout=300)
    with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
      epochs = {json.loads(line).get('epoch') for line in f}
    self.assertTrue({1, 2} <= epochs, epochs)
    # Training found the dataset prepare made (same config hash).
    self.assertEqual(glob.glob(os.path.join(work, 'data', 'synthetic-*')),
                     [dataset])


if __name__ == '__main__':
  absltest.main()
