"""Tests of the planted-answer script's pieces (bench/planted.py).

The science (which model finds which planted signal) is the script's output,
not a test: here the grid, the configs, resume, the pooling of per-user
vectors over seeds, the paired tests with Holm and the tables are checked on
hand-made per-user files and on one tiny two-run grid of 1 epoch.
"""

import json
import os
import sys
import tempfile

from absl.testing import absltest
import numpy as np
from scipy import stats

from mmjax.eval import compare

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'bench'))
import planted  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position


def _tmpdir(test: absltest.TestCase) -> str:
  # absltest's create_tempdir needs parsed absl flags, which pytest lacks.
  tmp = tempfile.TemporaryDirectory()
  test.addCleanup(tmp.cleanup)
  return tmp.name


def _per_user_run(workdir: str, users, recall, split_hash: str = 'h') -> str:
  """A run directory holding only a per-user test file (ranking's format)."""
  os.makedirs(workdir, exist_ok=True)
  np.savez(os.path.join(workdir, 'per_user_test.npz'),
           users=np.asarray(users, np.int32),
           metric_names=np.asarray(['recall@20']),
           values=np.asarray([recall], np.float64),
           split_hash=np.asarray(split_hash), split=np.asarray('test'),
           name=np.asarray(os.path.basename(workdir)))
  return workdir


class GridTest(absltest.TestCase):

  def test_cells_knob_reuse_and_shards(self):
    cells = planted.grid(['visual', 'text', 'none'], ['0', '1', '2'],
                         ['vbpr', 'bm3'], ['visual', 'textual'],
                         ['vbpr'], ['0', '0.1', '0.5'], ['0'])
    # 3 presets x 3 seeds x 2 models x (real + 2 controls) = 54, plus the
    # knob's 2 new signal values x (real + shuffled visual); its 0.5 is the
    # visual preset's own value, already in the main grid.
    self.assertLen(cells, 54 + 2 * 2)
    self.assertLen(set(c.name for c in cells), len(cells))
    self.assertIn(planted.Cell('visual', 0.1, 0, 'vbpr', 'visual'), cells)
    self.assertNotIn(planted.Cell('visual', 0.5, 0, 'vbpr', ''), cells)
    shards = [planted.shard_of(cells, f'{i}/3') for i in range(3)]
    self.assertCountEqual(sum(shards, []), cells)
    for i, shard in enumerate(shards):
      mine = {(c.preset, c.signal, c.seed) for c in shard}
      for j, other in enumerate(shards):
        if i != j:
          # A dataset's runs stay in one process (shared compile cache).
          self.assertEmpty(mine & {(c.preset, c.signal, c.seed)
                                   for c in other})
    with self.assertRaises(ValueError):
      planted.shard_of(cells, '3/3')

  def test_config_of_a_control_cell(self):
    cell = planted.Cell('text', 0.25, 2, 'freedom', 'visual')
    cfg = planted.make_config(cell, num_users=50, num_items=30, per_user=7,
                              epochs=4, patience=2, batch_size=64, lr=5e-3,
                              data_root='/tmp/x')
    self.assertEqual(cfg.model.name, 'freedom')
    self.assertEqual(cfg.seed, 2)
    self.assertEqual(cfg.features.control, 'shuffle')
    self.assertEqual(tuple(cfg.features.control_modalities), ('visual',))
    self.assertEqual(dict(cfg.features.sources),
                     {'textual': 'synthetic_text',
                      'visual': 'synthetic_visual'})
    over = cfg.data.overrides.to_dict()
    self.assertEqual(over['seed'], 2)
    self.assertEqual(over['synthetic']['preset'], 'text')
    self.assertEqual(over['synthetic']['visual_signal'], 0.25)
    self.assertEqual(over['synthetic']['num_users'], 50)
    self.assertEqual((cfg.train.num_epochs, cfg.train.patience,
                      cfg.train.batch_size, cfg.optim.lr), (4, 2, 64, 5e-3))
    real = planted.make_config(planted.Cell('text', None, 2, 'freedom', ''),
                               num_users=50, num_items=30, per_user=7,
                               epochs=4, patience=2, batch_size=64, lr=None,
                               data_root='/tmp/x')
    self.assertEqual(real.features.control, 'none')
    self.assertNotIn('visual_signal', real.data.overrides.synthetic)
    self.assertEqual(real.optim.lr, 1e-3)  # configs/freedom_synthetic.py


class PairedRowsTest(absltest.TestCase):

  def test_pooled_paired_test_and_holm_on_planted_vectors(self):
    tmp = _tmpdir(self)
    rng = np.random.default_rng([0, 1])
    users = np.arange(200)
    dirs_gap, dirs_null, pooled = [], [], {'real': [], 'ctrl': []}
    for seed in (0, 1):
      ctrl = rng.random(200)
      # Users listed in another order in one file: rows must be aligned.
      perm = rng.permutation(200)
      real = ctrl + 0.05 + 0.01 * rng.standard_normal(200)
      dirs_gap.append([
          _per_user_run(f'{tmp}/g{seed}r', users[perm], real[perm],
                        f'h{seed}'),
          _per_user_run(f'{tmp}/g{seed}c', users, ctrl, f'h{seed}')])
      dirs_null.append([
          _per_user_run(f'{tmp}/n{seed}r', users, ctrl, f'h{seed}'),
          _per_user_run(f'{tmp}/n{seed}c', users, ctrl, f'h{seed}')])
      pooled['real'].append(real)
      pooled['ctrl'].append(ctrl)
    groups = [
        {'preset': 'visual', 'model': 'm', 'control': 'shuffle_visual',
         'expected': True, 'seeds': [0, 1], 'dirs': dirs_gap},
        {'preset': 'none', 'model': 'm', 'control': 'shuffle_visual',
         'expected': False, 'seeds': [0, 1], 'dirs': dirs_null}]
    rows = planted.paired_rows(groups, num_boot=200, alpha=0.01)
    real = np.concatenate(pooled['real'])
    ctrl = np.concatenate(pooled['ctrl'])
    gap = rows[0]
    self.assertEqual(gap['n'], 400)  # Users of both seeds, pooled.
    np.testing.assert_allclose(gap['gap'], np.mean(real - ctrl), rtol=1e-12)
    np.testing.assert_allclose(gap['real'], real.mean(), rtol=1e-12)
    np.testing.assert_allclose(gap['p_ttest'],
                               stats.ttest_rel(real, ctrl).pvalue, rtol=1e-9)
    np.testing.assert_allclose(
        gap['gap_per_seed'],
        [np.mean(pooled['real'][s] - pooled['ctrl'][s]) for s in (0, 1)],
        rtol=1e-12)
    # Holm over the table's two rows: the null row has p = 1.
    np.testing.assert_allclose(gap['p_ttest_holm'],
                               min(1.0, 2 * gap['p_ttest']))
    self.assertTrue(gap['significant'])
    null = rows[1]
    self.assertEqual((null['gap'], null['p_ttest_holm']), (0.0, 1.0))
    self.assertFalse(null['significant'])
    table = planted.format_main(rows)
    self.assertIn('| visual | m | shuffle_visual |', table)
    cells = [line.split(' | ') for line in table.splitlines()[2:]]
    self.assertEqual(cells[0][5], f'{gap["gap"]:+.4f}')
    self.assertEqual((cells[0][10], cells[1][10]), ('yes', 'no'))

  def test_runs_of_different_splits_are_refused(self):
    tmp = _tmpdir(self)
    users = np.arange(5)
    dirs = [[_per_user_run(f'{tmp}/r', users, np.ones(5), 'a'),
             _per_user_run(f'{tmp}/c', users, np.zeros(5), 'b')]]
    with self.assertRaises(compare.HashMismatchError):
      planted.paired_rows([{'seeds': [0], 'dirs': dirs}], 100, 0.01)


class TinyGridTest(absltest.TestCase):
  """Two real runs of 1 epoch: real and shuffled visual, then the table."""

  def test_train_resume_and_table(self):
    tmp = _tmpdir(self)
    runs = os.path.join(tmp, 'runs')
    kw = dict(num_users=120, num_items=60, per_user=10, epochs=1,
              patience=1, batch_size=128, lr=None,
              data_root=os.path.join(tmp, 'data'))
    # Leftovers of an interrupted run (no cell.json) are cleared first.
    stale = os.path.join(runs, 'visual_s0_vbpr_real', 'stale')
    os.makedirs(os.path.dirname(stale))
    with open(stale, 'w') as f:
      f.write('from an interrupted run')
    records = {}
    for control in ('', 'visual'):
      cell = planted.Cell('visual', None, 0, 'vbpr', control)
      records[cell] = planted.run_cell(
          cell, planted.make_config(cell, **kw), runs)
    real_cell = planted.Cell('visual', None, 0, 'vbpr', '')
    rec = records[real_cell]
    self.assertEqual(rec['best_epoch'], 1)
    self.assertEqual(rec['workdir'], os.path.dirname(stale))
    self.assertFalse(os.path.exists(stale))
    with open(os.path.join(rec['workdir'], 'results.json')) as f:
      self.assertEqual(json.load(f)['best']['test/recall@20'], rec['test'])
    # A finished run is read back, not trained again.
    cfg = planted.make_config(real_cell, **kw)
    self.assertEqual(planted.run_cell(real_cell, cfg, runs), rec)
    # ... but not under other settings.
    other = planted.make_config(real_cell, **{**kw, 'epochs': 2})
    with self.assertRaisesRegex(ValueError, 'another --out_dir'):
      planted.run_cell(real_cell, other, runs)
    main_rows, knob_rows = planted.summarize(
        records, list(records), presets=['visual'], seeds=['0'],
        models=['vbpr'], controls=['visual'], knob_models=[],
        knob_values=[], knob_seeds=[], num_boot=100, alpha=0.01)
    self.assertEmpty(knob_rows)
    (row,) = main_rows
    real = compare.load_runs([rec['workdir']], 'test')
    (run,) = real.values()
    self.assertEqual(row['n'], len(run['users']))
    np.testing.assert_allclose(row['real'], rec['test'], rtol=1e-9)
    ctrl = records[planted.Cell('visual', None, 0, 'vbpr', 'visual')]
    np.testing.assert_allclose(row['shuffled'], ctrl['test'], rtol=1e-9)
    self.assertTrue(row['expected'])
    self.assertIn('| visual | vbpr | shuffle_visual |',
                  planted.format_main(main_rows))


if __name__ == '__main__':
  absltest.main()
