"""`python -m mmjax.launch` end to end in subprocesses: smoke, run info,
SIGKILL + resume equal to an unbroken run, --rerun. User errors (misspelt
keys, reused workdirs) are in launch_errors_test.py."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from absl.testing import absltest
import numpy as np
import orbax.checkpoint as ocp

from mmjax.utils import writers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 600


def launch_cmd(workdir, data_root, *extra):
  return [sys.executable, '-m', 'mmjax.launch',
          '--config', os.path.join(REPO, 'configs', 'test.py'),
          '--workdir', workdir, f'--config.data.root={data_root}',
          '--config.train.num_epochs=4', '--config.ckpt.every_epochs=2',
          *extra]


def run(cmd, env=None):
  return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                        timeout=TIMEOUT, env=env)


def deterministic_lines(workdir):
  """metrics.jsonl without the timing fields (perf/...)."""
  return [{k: v for k, v in r.items() if not k.startswith('perf/')}
          for r in writers.read_jsonl(os.path.join(workdir, 'metrics.jsonl'))]


def final_params(workdir):
  manager = ocp.CheckpointManager(
      os.path.join(workdir, 'checkpoints', 'latest'), item_names=('state',))
  step = manager.latest_step()
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore()))['state']
  manager.close()
  return step, state


class LaunchTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='mmjax_launch_')
    cls.data_root = os.path.join(cls.tmp, 'data')
    cls.unbroken = os.path.join(cls.tmp, 'unbroken')
    out = run(launch_cmd(cls.unbroken, cls.data_root))
    cls.unbroken_out = out

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_smoke(self):
    out = self.unbroken_out
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    for name in ('metrics.jsonl', 'config.json', 'runinfo.json',
                 'overrides.json', 'results.json', 'per_user_valid.npz',
                 'per_user_test.npz'):
      self.assertTrue(os.path.exists(os.path.join(self.unbroken, name)), name)
    self.assertEqual(
        sorted(os.listdir(os.path.join(self.unbroken, 'checkpoints',
                                       'latest'))), ['2', '4'])
    lines = writers.read_jsonl(os.path.join(self.unbroken, 'metrics.jsonl'))
    epochs = [r['epoch'] for r in lines if 'train/loss' in r]
    self.assertEqual(epochs, [1, 2, 3, 4])
    self.assertTrue(lines[-1]['final'])
    self.assertIn('best/test/recall@20', lines[-1])
    for key in ('train/l2_params', 'perf/samples_per_s'):
      self.assertIn(key, lines[0])
    # Per-step norms only with train.log_norms (off by default).
    self.assertNotIn('train/l2_grads', lines[0])
    with open(os.path.join(self.unbroken, 'runinfo.json')) as f:
      info = json.load(f)
    self.assertLen(info['dataset']['manifest_sha256'], 64)
    self.assertIn('jax', info['packages'])
    self.assertIn('--config.train.num_epochs=4', json.load(
        open(os.path.join(self.unbroken, 'overrides.json'))))
    self.assertIn('lightgcn', out.stdout)  # the results table

  def _kill_after_epoch(self, workdir, epoch):
    """Starts a launch that pauses after `epoch`'s log lines; SIGKILLs it."""
    cmd = launch_cmd(workdir, self.data_root)
    # The same launch through tests/train/pausing_launch.py, whose epoch
    # callback pauses the run there.
    cmd[1:3] = ['-m', 'tests.train.pausing_launch', str(epoch)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
      for line in proc.stdout:
        if line.startswith(f'paused after epoch {epoch}'):
          break
      else:
        self.fail(f'the run ended before pausing at epoch {epoch}')
      proc.send_signal(signal.SIGKILL)
    finally:
      proc.wait(timeout=60)

  def test_sigkill_then_resume_equals_unbroken(self):
    self.assertEqual(self.unbroken_out.returncode, 0)
    workdir = os.path.join(self.tmp, 'killed')
    # Killed between the checkpoints of epochs 2 and 4, after logging 3.
    self._kill_after_epoch(workdir, 3)
    self.assertIn(3, [r.get('epoch') for r in writers.read_jsonl(
        os.path.join(workdir, 'metrics.jsonl'))])
    out = run(launch_cmd(workdir, self.data_root))
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    self.assertEqual(deterministic_lines(workdir),
                     deterministic_lines(self.unbroken))
    step_a, a = final_params(self.unbroken)
    step_b, b = final_params(workdir)
    self.assertEqual(step_a, step_b)
    for name in ('user_emb', 'item_emb'):
      np.testing.assert_array_equal(np.asarray(a['params'][name]),
                                    np.asarray(b['params'][name]))

  def test_killed_before_first_checkpoint_starts_afresh(self):
    self.assertEqual(self.unbroken_out.returncode, 0)
    workdir = os.path.join(self.tmp, 'killed_early')
    # Epoch 1's best-model checkpoint exists, no periodic one yet.
    self._kill_after_epoch(workdir, 1)
    out = run(launch_cmd(workdir, self.data_root))
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    self.assertEqual(deterministic_lines(workdir),
                     deterministic_lines(self.unbroken))

  def test_rerun_redoes_the_run(self):
    self.assertEqual(self.unbroken_out.returncode, 0)
    workdir = os.path.join(self.tmp, 'rerun')
    out = run([sys.executable, '-m', 'mmjax.launch', '--rerun', self.unbroken,
               '--workdir', workdir])
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    self.assertEqual(deterministic_lines(workdir),
                     deterministic_lines(self.unbroken))


if __name__ == '__main__':
  absltest.main()
