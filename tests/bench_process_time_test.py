"""`bench/model_speed.py --mode process`: whole runs, cold and warm cache.

Runs the mode as a user does (its command line, child processes and all) on
a tiny exported folder, one model, one epoch, without MMRec: about 20-30 s
on a loaded 2-core machine, most of it the two child processes' imports and
the cold run's compilation.
"""

import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BENCH = os.path.join(_REPO, 'bench')
sys.path.insert(0, os.path.join(_BENCH, 'mmrec'))
sys.path.insert(0, _BENCH)
import export  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
import model_speed  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position


class ProcessModeTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    root = cls._tmp.name
    data = os.path.join(root, 'tiny')
    export.export_synthetic(data, 'tiny', num_users=120, num_items=60,
                            per_user=10, seed=3, feature_dim=8)
    cls.out_dir = os.path.join(root, 'out')
    env = dict(os.environ, PYTHONPATH=_REPO)
    # Neither may point the children at another cache than the mode's own.
    env.pop('JAX_COMPILATION_CACHE_DIR', None)
    env.pop('MMREC_DIR', None)
    cls.proc = subprocess.run(
        [sys.executable, os.path.join(_BENCH, 'model_speed.py'),
         '--mode=process', f'--data_dir={data}', '--models=LightGCN',
         '--epochs=1', '--threads=1', '--batch_size=256',
         f'--out_dir={cls.out_dir}'],
        capture_output=True, text=True, check=False, env=env, timeout=300)
    cls.cell = None
    path = os.path.join(cls.out_dir, 'process_LightGCN_tiny.json')
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        cls.cell = json.load(f)

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def test_runs_and_says_why_mmrec_is_left_out(self):
    self.assertEqual(self.proc.returncode, 0, self.proc.stderr[-3000:])
    self.assertIn('MMRec columns skipped: no --mmrec_dir', self.proc.stdout)
    self.assertNotIn('mmrec_first', self.cell)

  def test_second_run_compiles_nothing_and_reads_every_program(self):
    cold = self.cell['ours_cold']['compilation_cache']
    warm = self.cell['ours_warm']['compilation_cache']
    self.assertEqual(cold['dir'], warm['dir'])
    self.assertTrue(cold['dir'].startswith(self.out_dir), cold['dir'])
    self.assertGreater(cold['compiled'], 0)
    self.assertEqual(warm['compiled'], 0)
    # The same programs, asked for in the same order: every one cached.
    self.assertEqual(warm['from_cache'],
                     cold['compiled'] + cold['from_cache'])

  def test_both_runs_train_and_evaluate_the_same(self):
    for kind in ('cold', 'warm'):
      run = self.cell[f'ours_{kind}']
      self.assertEqual((run['epochs'], run['evaluations']), (1, 1), kind)
      parts = (run['startup_imports_s'] + run['data_setup_s']
               + sum(run['epoch_s']) + sum(run['eval_s']) + run['exit_s'])
      self.assertAlmostEqual(parts, run['wall_s'], places=6)
      self.assertGreater(run['startup_imports_s'], 0.0)
    # A cached executable is the one XLA would compile.
    self.assertEqual(self.cell['ours_cold']['best_valid_recall@20'],
                     self.cell['ours_warm']['best_valid_recall@20'])

  def test_table_has_one_row_per_model_with_counts(self):
    with open(os.path.join(self.out_dir, 'process_tiny.md'),
              encoding='utf-8') as f:
      lines = f.read().splitlines()
    self.assertIn('1 epochs, validation and test every epoch', lines[0])
    self.assertLen(lines, 4)
    cells = [c.strip() for c in lines[3].strip('|').split('|')]
    self.assertEqual(cells[0], 'LightGCN')
    self.assertEqual(cells[1:3], ['-', '-'])  # No MMRec.
    cold = self.cell['ours_cold']['compilation_cache']
    self.assertEqual(cells[7], f"{cold['compiled']}/{cold['from_cache']}")
    self.assertEqual(cells[8], f"0/{cold['compiled'] + cold['from_cache']}")
    self.assertEqual(lines[3], model_speed.process_table([self.cell]
                                                         ).splitlines()[-1])


if __name__ == '__main__':
  absltest.main()
