"""The persistent compilation cache: a second run with the same shapes
compiles nothing and gives the same numbers (mmjax/utils/compile_cache.py)."""

import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

from mmjax.utils import compile_cache
from mmjax.utils import writers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cache_env(folder: str) -> dict[str, str]:
  """This environment without the test session's shared JAX cache (conftest),
  so that only mmjax's default-on cache, in `folder`, is in play."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(('JAX_COMPILATION_CACHE_DIR',
                              'JAX_PERSISTENT_CACHE_'))}
  env[compile_cache.ENV] = folder
  return env


def launch(workdir: str, data_root: str, env: dict[str, str]) -> None:
  out = subprocess.run(
      [sys.executable, '-m', 'mmjax.launch',
       '--config', os.path.join(REPO, 'configs', 'test.py') + ':bprmf',
       '--workdir', workdir, f'--config.data.root={data_root}'],
      cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
  assert out.returncode == 0, out.stderr[-3000:]


def metrics(workdir: str) -> list[dict]:
  return [{k: v for k, v in r.items() if not k.startswith('perf/')}
          for r in writers.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))]


def cache_record(workdir: str) -> dict:
  with open(os.path.join(workdir, 'runinfo.json'), encoding='utf-8') as f:
    return json.load(f)['compilation_cache']


class CompileCacheTest(absltest.TestCase):

  def test_second_run_with_the_same_shapes_compiles_nothing(self):
    tmp = tempfile.mkdtemp(prefix='mmjax_cc_')
    folder, data = os.path.join(tmp, 'cache'), os.path.join(tmp, 'data')
    env = cache_env(folder)
    first, second = os.path.join(tmp, 'first'), os.path.join(tmp, 'second')
    launch(first, data, env)
    launch(second, data, env)
    a, b = cache_record(first), cache_record(second)
    self.assertEqual(a['dir'], folder)
    self.assertGreater(a['compiled'], 0)
    self.assertTrue(os.listdir(folder))
    self.assertEqual(b['compiled'], 0, b)
    self.assertGreaterEqual(b['from_cache'], a['compiled'])
    # A cached executable is the one XLA compiled: the same numbers.
    self.assertEqual(metrics(first), metrics(second))

  def test_where_the_cache_lives(self):
    env = {'HOME': '/h', 'XDG_CACHE_HOME': ''}
    with absltest.mock.patch.dict(os.environ, env, clear=True):
      self.assertEqual(compile_cache.default_dir(), '/h/.cache/mmjax/jax')
      os.environ['XDG_CACHE_HOME'] = '/x'
      self.assertEqual(compile_cache.default_dir(), '/x/mmjax/jax')
      os.environ[compile_cache.ENV] = '/c'
      self.assertEqual(compile_cache.default_dir(), '/c')
      os.environ[compile_cache.ENV] = 'OFF'
      self.assertIsNone(compile_cache.default_dir())
      os.environ['JAX_COMPILATION_CACHE_DIR'] = '/j'  # JAX's own wins.
      self.assertEqual(compile_cache.default_dir(), '/j')


if __name__ == '__main__':
  absltest.main()
