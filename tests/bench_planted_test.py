"""Tests of the planted-answer script's pieces (bench/planted.py).

The science (which model finds which planted signal) is the script's output,
not a test: here the grid, the configs, resume, the pooling of per-user
vectors over seeds, the paired tests with Holm and the tables are checked on
hand-made per-user files and on one tiny two-run grid of 1 epoch.
"""

import json
import os
import shutil
import sys
import tempfile

from absl.testing import absltest
import numpy as np
from scipy import stats

from mmjax.data import prepare
from mmjax.data import store
from mmjax.eval import compare
from mmjax.models import context
from tests import numerics

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
    self.assertNotIn('feature_noise', cfg.data.overrides.synthetic)
    # The config's own model fields: nothing recorded beyond the defaults.
    self.assertNotIn('model', planted.settings(cfg))
    sets = planted.model_sets(['freedom:mm_weights.visual=0.5',
                               'freedom:knn_k=5', 'freedom:note=abc'])
    self.assertEqual(sets, {'freedom': {'mm_weights.visual': 0.5,
                                        'knn_k': 5, 'note': 'abc'}})
    with self.assertRaisesRegex(ValueError, 'model:key=value'):
      planted.model_sets(['freedom.knn_k=5'])
    changed = planted.make_config(
        cell, num_users=50, num_items=30, per_user=7, epochs=4, patience=2,
        batch_size=64, lr=5e-3, data_root='/tmp/x',
        model_set={'mm_weights.visual': 0.5, 'knn_k': 5})
    self.assertEqual(changed.model.mm_weights.visual, 0.5)
    self.assertEqual(changed.model.mm_weights.textual,
                     cfg.model.mm_weights.textual)
    # Recorded, so that runs with other model fields are not reused.
    self.assertEqual(planted.settings(changed)['model'],
                     {'mm_weights.visual': 0.5, 'knn_k': 5})
    with self.assertRaisesRegex(KeyError, 'no model.nonsense'):
      planted.make_config(
          cell, num_users=50, num_items=30, per_user=7, epochs=4,
          patience=2, batch_size=64, lr=5e-3, data_root='/tmp/x',
          model_set={'nonsense': 1})
    noisy = planted.make_config(cell, num_users=50, num_items=30, per_user=7,
                                epochs=4, patience=2, batch_size=64, lr=5e-3,
                                data_root='/tmp/x', feature_noise=0.2)
    self.assertEqual(noisy.data.overrides.synthetic.feature_noise, 0.2)
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


class SettingsTest(absltest.TestCase):

  def test_per_model_overrides(self):
    self.assertEqual(
        planted.per_model(['lattice=5e-3', 'bm3=0.01'], float, 'lr'),
        {'lattice': 5e-3, 'bm3': 0.01})
    self.assertEqual(planted.per_model([], int, 'model_epochs'), {})
    for items, message in ((['lattice'], 'not model=value'),
                           (['=3'], 'not model=value'),
                           (['bm3=80', 'bm3=60'], 'given twice'),
                           (['bm3=eighty'], 'bm3=eighty')):
      with self.subTest(items=items):
        with self.assertRaisesRegex(ValueError, message):
          planted.per_model(items, int, 'model_epochs')

  def test_describe_settings_groups_equal_models(self):
    text = planted.describe_settings(
        ['vbpr', 'lattice', 'bm3', 'freedom'], 40, 10,
        {'lattice': 80, 'bm3': 80, 'freedom': 80},
        {'lattice': 20, 'bm3': 20, 'freedom': 20}, {'bm3': 5e-3})
    self.assertEqual(
        text, 'vbpr: <= 40 epochs (patience 10), lr of the config; '
        'lattice,freedom: <= 80 epochs (patience 20), lr of the config; '
        'bm3: <= 80 epochs (patience 20), lr 0.005')

  def test_per_model_settings_reach_the_config(self):
    cell = planted.Cell('visual', None, 0, 'lattice', '')
    cfg = planted.make_config(cell, num_users=50, num_items=30, per_user=7,
                              epochs=80, patience=20, batch_size=64,
                              lr=5e-3, data_root='/tmp/x', split='cold_item')
    self.assertEqual(planted.settings(cfg)['epochs'], 80)
    self.assertEqual(planted.settings(cfg)['patience'], 20)
    self.assertEqual(planted.settings(cfg)['split'], 'cold_item')
    self.assertEqual(cfg.optim.lr, 5e-3)

  def test_convergence_table_counts(self):
    def rec(model, best, epochs, patience):
      return {'model': model, 'best_epoch': best,
              'settings': {'epochs': epochs, 'patience': patience}}
    records = [rec('bm3', 80, 80, 20), rec('bm3', 79, 80, 20),
               rec('bm3', 30, 80, 20), rec('vbpr', 5, 40, 10),
               rec('vbpr', 40, 40, 10)]
    lines = planted.format_convergence(records).splitlines()
    # bm3: best epochs 30, 79, 80 -> median 79; 79 and 80 are in the last
    # two epochs of 80; 30 + 20 < 80 stopped by patience.
    self.assertEqual(lines[2], '| bm3 | 3 | 80 | 20 | 79 | 30-80 | 2 | 1 |')
    self.assertEqual(lines[3], '| vbpr | 2 | 40 | 10 | 22.5 | 5-40 | 1 | 1 |')


class AgreementTest(absltest.TestCase):

  def test_shares_by_hand(self):
    values = np.array(['r', 'r', 'g', 'g', 'b'])
    idx = np.array([[1, 2], [0, 4], [3, 0], [2, 1], [0, 1]])
    ok = np.array([[True, True], [True, True], [True, True], [True, False],
                   [False, False]])
    # Valid pairs: (0,1) same, (0,2), (1,0) same, (1,4), (2,3) same, (2,0),
    # (3,2) same -> 4 of 7.
    self.assertAlmostEqual(planted.same_share(idx, ok, values), 4 / 7)
    # Pairs of distinct items sharing the value: 2 + 2 of 5 * 4.
    self.assertAlmostEqual(planted.chance_share(values), 4 / 20)

  def test_graphs_match_brute_force_and_see_the_planted_colour(self):
    tmp = _tmpdir(self)
    cell = planted.Cell('visual', None, 3, 'freedom', '')
    cfg = planted.make_config(cell, num_users=150, num_items=80, per_user=10,
                              epochs=1, patience=1, batch_size=128, lr=None,
                              data_root=os.path.join(tmp, 'data'))
    ds_dir = prepare.ensure_dataset(cfg.data)
    sources = dict(cfg.features.sources)
    k = 5
    ds, graphs = planted.neighbour_graphs(ds_dir, sources, 3, k)
    self.assertEqual([g[:2] for g in graphs],
                     [('textual', 'real'), ('textual', 'shuffled'),
                      ('visual', 'real'), ('visual', 'shuffled'),
                      ('interactions', 'real')])

    def cosine(x):
      n = np.linalg.norm(x, axis=1, keepdims=True)
      x = np.where(n > 0, x / np.where(n > 0, n, 1), 0)
      sim = x @ x.T
      np.fill_diagonal(sim, -np.inf)
      return sim

    visual = store.load(ds_dir, 'synthetic_visual', ds.item_ids).values
    sim = cosine(visual.astype(np.float64))
    _, _, idx, ok = graphs[2]
    self.assertTrue(ok.all())
    # float32 on device against float64 here: ids are exact wherever the
    # reference has no near-tie (1e-5), near-ties may swap.
    fixed = numerics.assert_same_ranking(idx, sim, atol=1e-5)
    self.assertGreater(fixed.mean(), 0.9)
    # The shuffled graph is that of the rows a control run of seed 3 sees.
    shuffled = context.control_features(visual, np.ones(len(visual), bool),
                                        'shuffle', 3, 'visual')
    self.assertFalse(np.array_equal(shuffled, visual))
    fixed = numerics.assert_same_ranking(
        graphs[3][2], cosine(shuffled.astype(np.float64)), atol=1e-5)
    self.assertGreater(fixed.mean(), 0.9)
    # Interactions: tied similarities may pick other ids, so the chosen
    # neighbours' similarities must be the k largest of each row.
    users, items = ds.select(0)
    inter = np.zeros((ds.num_items, ds.num_users))
    inter[items, users] = 1
    isim = cosine(inter)
    _, _, idx, ok = graphs[4]
    has = inter.sum(1) > 0
    np.testing.assert_array_equal(ok.any(1), has)
    for i in np.flatnonzero(ok.all(1)):
      np.testing.assert_allclose(np.sort(isim[i, idx[i]])[::-1],
                                 np.sort(isim[i])[::-1][:k], atol=1e-5)
    rows = planted.neighbour_agreement(ds_dir, sources, 3, k)
    by = {(r['source'], r['features']): r for r in rows}
    colour = np.asarray(ds.item_table['colour'])
    self.assertAlmostEqual(by['visual', 'real']['colour'],
                           planted.same_share(graphs[2][2], graphs[2][3],
                                              colour))
    # The visual features carry the colour; shuffled ones do not beat the
    # real ones.
    self.assertGreater(by['visual', 'real']['colour'],
                       2 * by['visual', 'real']['colour_chance'])
    self.assertLess(by['visual', 'shuffled']['colour'],
                    by['visual', 'real']['colour'])


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
    np.testing.assert_allclose(
        gap['p_seeds'], stats.ttest_1samp(gap['gap_per_seed'], 0).pvalue,
        rtol=1e-9)
    # Holm over the table's two rows: the null row has p = 1.
    np.testing.assert_allclose(gap['p_ttest_holm'],
                               min(1.0, 2 * gap['p_ttest']))
    self.assertTrue(gap['significant'])
    null = rows[1]
    self.assertEqual((null['gap'], null['p_ttest_holm']), (0.0, 1.0))
    self.assertTrue(np.isnan(null['p_seeds']))  # Identical per-seed gaps.
    self.assertFalse(null['significant'])
    table = planted.format_main(rows)
    self.assertIn('| visual | m | shuffle_visual |', table)
    cells = [line.split(' | ') for line in table.splitlines()[2:]]
    self.assertEqual(cells[0][5], f'{gap["gap"]:+.4f}')
    self.assertEqual(cells[0][7], planted._p(gap['p_seeds']))
    self.assertEqual((cells[0][11], cells[1][11]), ('yes', 'no'))
    knob = planted.format_knob([{**gap, 'model': 'm', 'visual_signal': 0.25}])
    cells = knob.splitlines()[2].split(' | ')
    self.assertEqual(cells[1:4], ['0.25', f'{gap["real"]:.4f}',
                                  f'{gap["shuffled"]:.4f}'])
    self.assertEqual(cells[5], ' '.join(f'{g:+.3f}'
                                        for g in gap['gap_per_seed']))
    self.assertEqual(cells[6], planted._p(gap['p_seeds']))

  def test_runs_of_different_splits_are_refused(self):
    tmp = _tmpdir(self)
    users = np.arange(5)
    dirs = [[_per_user_run(f'{tmp}/r', users, np.ones(5), 'a'),
             _per_user_run(f'{tmp}/c', users, np.zeros(5), 'b')]]
    with self.assertRaises(compare.HashMismatchError):
      planted.paired_rows([{'seeds': [0], 'dirs': dirs}], 100, 0.01)


class TrainedRunsTest(absltest.TestCase):
  """Two real VBPR runs of 1 epoch on a cold-item split (real and shuffled
  visual), trained once for the class: then resume, the table, and the
  cold-only diagnostic against a numpy ranking of the restored runs.

  The runs and their compiles are most of this file's time, so both tests
  read the same two runs.
  """

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='mmjax_planted_')
    cls.runs = os.path.join(cls.tmp, 'runs')
    cls.kw = dict(num_users=150, num_items=80, per_user=10, epochs=1,
                  patience=1, batch_size=128, lr=None,
                  data_root=os.path.join(cls.tmp, 'data'), split='cold_item')
    # Leftovers of an interrupted run (no cell.json) are cleared first.
    cls.stale = os.path.join(cls.runs, 'visual_s0_vbpr_real', 'stale')
    os.makedirs(os.path.dirname(cls.stale))
    with open(cls.stale, 'w') as f:
      f.write('from an interrupted run')
    cls.records = {}
    for control in ('', 'visual'):
      cell = planted.Cell('visual', None, 0, 'vbpr', control)
      cls.records[cell] = planted.run_cell(
          cell, planted.make_config(cell, **cls.kw), cls.runs)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_train_resume_and_table(self):
    records, runs, kw = self.records, self.runs, self.kw
    real_cell = planted.Cell('visual', None, 0, 'vbpr', '')
    rec = records[real_cell]
    self.assertEqual(rec['best_epoch'], 1)
    self.assertEqual(rec['workdir'], os.path.dirname(self.stale))
    self.assertFalse(os.path.exists(self.stale))
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

  def test_cold_only_matches_numpy_and_is_cached(self):
    # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp
    from mmjax.train import checkpoint
    from mmjax.train import loop
    # pylint: enable=g-import-not-at-top
    runs, kw = self.runs, self.kw
    cold = {}
    records = dict(self.records)
    for cell, rec in self.records.items():
      control = cell.control
      cfg = planted.make_config(cell, **kw)
      cold[cell] = planted.cold_only(cfg, rec['workdir'], rec['best_epoch'],
                                     rec['test'])
      self.assertEqual(cold[cell]['full'], rec['test'])
      # The reference: the restored best state's scores, ranked in numpy.
      ds, ds_dir = loop.load_dataset(cfg)
      trainer = loop.Trainer(cfg, ds, ds_dir)
      ckpt = checkpoint.Checkpointer(rec['workdir'], 1, 'val/recall@20')
      state = ckpt.restore_best(trainer.abstract_state())
      ckpt.close()
      users = np.arange(ds.num_users)
      scores = np.array(trainer.score_fn(
          trainer.eval_params(state.params), trainer.ctx,
          jnp.asarray(users, jnp.int32)), np.float64)
      train = ds.split == 0
      cold_item = np.ones(ds.num_items, bool)
      cold_item[ds.item[train]] = False
      self.assertTrue(cold_item.any())
      # Masked as the evaluator masks at test: training items, and
      # validation items only with eval.mask_valid_at_test (MMRec's default
      # masks training items only).
      seen = ds.split == 0
      if cfg.eval.mask_valid_at_test:
        seen |= ds.split == 1
      scores[ds.user[seen], ds.item[seen]] = -np.inf
      test = ds.split == 2
      test_users = np.unique(ds.user[test])
      # Every held-out item of a cold-item split is cold.
      self.assertTrue(cold_item[ds.item[test]].all())
      only_cold = np.where(cold_item, scores, -np.inf)
      got = np.load(os.path.join(rec['workdir'],
                                 f'per_user_{planted.COLD_ONLY}.npz'))
      np.testing.assert_array_equal(got['users'], test_users)
      row = list(got['metric_names']).index('recall@20')
      got_recall = got['values'][row]
      # These scores (eager, float64 on the host) and the evaluator's
      # (jitted) may differ by an ulp: a user's recall is pinned where no
      # cold candidate is within `tol` of the 20th score, and bounded
      # otherwise; the same for the warm items above the best cold one.
      tol = 1e-5
      bounds, above_lo, above_hi, random = [], [], [], []
      for u in test_users:
        held = ds.item[test & (ds.user == u)]
        bounds.append(numerics.recall_bounds(only_cold[u], held, 20, tol))
        best = only_cold[u].max()
        above_lo.append(int(((scores[u] > best + tol) & ~cold_item).sum()))
        above_hi.append(int(((scores[u] >= best - tol) & ~cold_item).sum()))
        n = np.isfinite(only_cold[u]).sum()
        random.append(min(20, n) / n)
      lo, hi = np.asarray(bounds).T
      self.assertTrue(np.all((lo - 1e-6 <= got_recall)
                             & (got_recall <= hi + 1e-6)))
      exact = lo == hi
      self.assertGreater(exact.mean(), 0.9)
      np.testing.assert_allclose(got_recall[exact], lo[exact], atol=1e-6)
      self.assertAlmostEqual(cold[cell]['cold_only'], np.mean(got_recall),
                             places=6)
      self.assertBetween(cold[cell]['warm_above_median'],
                         np.median(above_lo), np.median(above_hi))
      self.assertAlmostEqual(cold[cell]['random'], np.mean(random), places=9)
      # Read back, not recomputed: the same record even with another
      # recorded value; without the record a mismatch is refused.
      self.assertEqual(planted.cold_only(cfg, rec['workdir'], 1, -1.0),
                       cold[cell])
      if not control:
        os.remove(os.path.join(rec['workdir'], planted.COLD_RECORD))
        self.assertIsNone(planted.cold_only(cfg, rec['workdir'], 1, -1.0,
                                            read_only=True))
        with self.assertRaisesRegex(ValueError, 'recorded'):
          planted.cold_only(cfg, rec['workdir'], rec['best_epoch'],
                            rec['test'] + 0.1)
    (row,) = planted.cold_rows(
        records, cold, presets=['visual'], seeds=['0'], models=['vbpr'],
        controls=['visual'], num_boot=100, alpha=0.01)
    real, ctrl = (cold[planted.Cell('visual', None, 0, 'vbpr', c)]
                  for c in ('', 'visual'))
    self.assertAlmostEqual(row['real'], real['cold_only'], places=6)
    self.assertAlmostEqual(row['shuffled'], ctrl['cold_only'], places=6)
    self.assertEqual(row['warm_above_real'], [real['warm_above_median']])
    self.assertIn('| visual | vbpr | shuffle_visual |',
                  planted.format_cold([row]))
    # A closed-form model has no checkpoint: it is fitted again. MostPop
    # scores a cold item 0 and a warm one its training count (> 0), so every
    # unmasked warm item is above the best cold one.
    cell = planted.Cell('visual', None, 0, 'mostpop', '')
    cfg = planted.make_config(cell, **kw)
    rec = planted.run_cell(cell, cfg, runs)
    got = planted.cold_only(cfg, rec['workdir'], rec['best_epoch'],
                            rec['test'])
    ds, _ = loop.load_dataset(cfg)
    warm = np.zeros(ds.num_items, bool)
    warm[ds.item[ds.split == 0]] = True
    test_users = np.unique(ds.user[ds.split == 2])
    unmasked_warm = [np.setdiff1d(np.flatnonzero(warm),
                                  ds.item[(ds.split != 2) & (ds.user == u)]
                                  ).size for u in test_users]
    self.assertEqual(got['warm_above_median'], np.median(unmasked_warm))


if __name__ == '__main__':
  absltest.main()
