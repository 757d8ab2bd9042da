"""`resolve` switches Hugging Face offline where it resolves, not on import.

Each case runs in a fresh process: huggingface_hub reads HF_HUB_OFFLINE once,
when imported, so only a new process shows what the module does to it.
(The lookup's other cases are in text_test.py: ResolveTest.)
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap

from absl.testing import absltest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# Imports huggingface_hub first (as an extractor importing transformers
# does), then resolves a model that exists nowhere.
SCRIPT = textwrap.dedent("""
    import json, os, time
    import huggingface_hub
    before = [os.environ.get('HF_HUB_OFFLINE'),
              huggingface_hub.is_offline_mode()]
    from mmjax.features import resolve
    on_import = os.environ.get('HF_HUB_OFFLINE')
    start = time.monotonic()
    try:
      resolve.resolve('nobody/no-such-model-xyz')
      error = None
    except resolve.ModelNotFoundError as e:
      error = str(e)
    print(json.dumps({
        'before': before, 'on_import': on_import, 'error': error,
        'seconds': time.monotonic() - start,
        'after': [os.environ.get('HF_HUB_OFFLINE'),
                  os.environ.get('TRANSFORMERS_OFFLINE'),
                  huggingface_hub.is_offline_mode()]}))
""")


def run_script(**env_vars):
  with tempfile.TemporaryDirectory() as home:
    env = {k: v for k, v in os.environ.items()
           if k not in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')}
    # An empty cache, and a hub address that nothing answers: a lookup that
    # tried the network would wait for its timeout (10 s by default).
    env.update(HF_HOME=home, HF_ENDPOINT='http://10.255.255.1', **env_vars)
    proc = subprocess.run([sys.executable, '-c', SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


class OfflineTest(absltest.TestCase):

  def test_offline_set_by_resolve_not_by_import(self):
    out = run_script()
    self.assertEqual(out['before'], [None, False])
    self.assertIsNone(out['on_import'])
    # A missing model is a clear error at once, never a wait.
    self.assertIn('not found offline', out['error'])
    self.assertLess(out['seconds'], 5.0)
    # Offline from then on, including huggingface_hub imported earlier.
    self.assertEqual(out['after'], ['1', '1', True])

  def test_a_users_choice_is_kept(self):
    out = run_script(HF_HUB_OFFLINE='0')
    self.assertIn('not found offline', out['error'])
    self.assertLess(out['seconds'], 5.0)
    self.assertEqual(out['after'], ['0', '1', False])


if __name__ == '__main__':
  absltest.main()
