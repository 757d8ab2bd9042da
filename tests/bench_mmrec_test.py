"""Tests of the MMRec comparison harness (bench/mmrec).

Everything except `MMRecParityTest` runs without MMRec. That class needs a
MMRec checkout in $MMREC_DIR (see bench/mmrec/README.md) and skips without
one; it also installs bench/mmrec/patches.py's library shims in this process.
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
import numpy as np
import yaml

from mmjax.data import dataset as dataset_lib
from mmjax.data import readers

_BENCH = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'bench', 'mmrec')
sys.path.insert(0, _BENCH)
sys.path.insert(0, os.path.dirname(_BENCH))
import export  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
import model_speed  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
import outcome  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
import patches  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
import step_parity  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

_MMREC_DIR = os.environ.get('MMREC_DIR')


def _tmpdir(test: absltest.TestCase) -> str:
  # absltest's create_tempdir needs parsed absl flags, which pytest lacks.
  tmp = tempfile.TemporaryDirectory()
  test.addCleanup(tmp.cleanup)
  return tmp.name


def _tiny_export(out_dir: str, name: str = 'tiny'):
  return export.export_synthetic(out_dir, name, num_users=120, num_items=60,
                                 per_user=10, seed=3, feature_dim=8)


class ExportTest(absltest.TestCase):

  def test_folder_reads_back_with_the_same_interactions_and_features(self):
    out = os.path.join(_tmpdir(self), 'tiny')
    stats = _tiny_export(out)
    with open(os.path.join(out, 'tiny.inter'), encoding='utf-8') as f:
      header = f.readline().rstrip('\n').split('\t')
      rows = sum(1 for _ in f)
    self.assertEqual(header, ['userID', 'itemID', 'rating', 'timestamp',
                              'x_label'])
    self.assertEqual(rows, stats['interactions'])
    self.assertEqual(stats['train'] + stats['valid'] + stats['test'], rows)
    raw = readers.read('mmrec', out, name='tiny')
    self.assertLen(raw.users, rows)
    self.assertCountEqual(raw.features, ['image', 'text'])
    for values, rows in raw.features.values():
      self.assertEqual(values.shape, (stats['items'], 8))
      self.assertLen(rows, stats['items'])
      self.assertTrue(np.isfinite(values).all())

  def test_features_follow_internal_item_ids(self):
    out = os.path.join(_tmpdir(self), 'tiny')
    _tiny_export(out)
    cfg = export.synthetic_config(120, 60, 10, 3, 8)
    from mmjax.data import prepare  # pylint: disable=g-import-not-at-top
    ds, raw_features = prepare.build(cfg)
    values, rows = raw_features['synthetic_visual']
    written = np.load(os.path.join(out, 'image_feat.npy'))
    by_raw = {str(r): values[k] for k, r in enumerate(rows)}
    for item in range(ds.num_items):
      np.testing.assert_array_equal(written[item],
                                    by_raw[str(ds.item_ids[item])])

  def test_yaml_names_the_files_mmrec_loads(self):
    cfg = yaml.safe_load(export.dataset_yaml('synth'))
    self.assertEqual(cfg['inter_file_name'], 'synth.inter')
    self.assertEqual(cfg['USER_ID_FIELD'], 'userID')
    self.assertEqual(cfg['ITEM_ID_FIELD'], 'itemID')
    self.assertEqual(cfg['vision_feature_file'], 'image_feat.npy')
    self.assertEqual(cfg['text_feature_file'], 'text_feat.npy')
    self.assertEqual(cfg['field_separator'], '\t')

  def test_stale_mmrec_graph_caches_are_removed(self):
    out = os.path.join(_tmpdir(self), 'tiny')
    os.makedirs(out)
    stale = os.path.join(out, 'mm_adj_freedomdsp_10_1.pt')
    with open(stale, 'wb') as f:
      f.write(b'old graph')
    _tiny_export(out)
    self.assertFalse(os.path.exists(stale))

  def test_missing_feature_row_is_an_error(self):
    ds = dataset_lib.Dataset(
        user=np.array([0, 1]), item=np.array([0, 1]), split=np.array([0, 0]),
        user_ids=np.array(['u0', 'u1']), item_ids=np.array(['a', 'b']))
    raw = {'synthetic_visual': (np.ones((1, 4), np.float32),
                                np.array(['a']))}
    with self.assertRaisesRegex(dataset_lib.DataError, "'b'"):
      export.internal_features(ds, raw)


class HarnessTest(absltest.TestCase):

  def test_parse_hparams_reads_values_as_mmrec_does(self):
    got = patches.parse_hparams(['reg_weight=1e-4', 'n_layers=2',
                                 'dropout=[0.8, 0.9]', 'learner=adam'])
    self.assertEqual(got, {'reg_weight': 1e-4, 'n_layers': 2,
                           'dropout': [0.8, 0.9], 'learner': 'adam'})
    with self.assertRaisesRegex(ValueError, 'key=value'):
      patches.parse_hparams(['reg_weight'])

  def test_resolve_grid_takes_override_else_first_listed_value(self):
    config = {'hyper_parameters': ['n_layers', 'reg_weight', 'seed'],
              'n_layers': [1, 2, 3], 'reg_weight': [1e-2, 1e-3], 'seed': 7}
    used = patches.resolve_grid(config, {'reg_weight': 1e-3})
    self.assertEqual(used, {'n_layers': 1, 'reg_weight': 1e-3, 'seed': 7})
    self.assertEqual(config['n_layers'], 1)

  def test_check_mmrec_dir(self):
    self.assertIn('no --mmrec_dir', patches.check_mmrec_dir(None))
    root = _tmpdir(self)
    self.assertIn('not a MMRec checkout', patches.check_mmrec_dir(root))
    os.makedirs(os.path.join(root, 'src', 'common'))
    open(os.path.join(root, 'src', 'common', 'trainer.py'), 'w').close()
    self.assertIsNone(patches.check_mmrec_dir(root))

  def test_run_mmrec_skips_without_checkout(self):
    env = dict(os.environ, MMREC_DIR='')
    out = subprocess.run(
        [sys.executable, os.path.join(_BENCH, 'run_mmrec.py'),
         '--mmrec_dir', '/nonexistent/mmrec', '--data_dir', '/nonexistent'],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn('skipped', out.stdout)
    self.assertIn('not a MMRec checkout', out.stdout)

  def test_scatter_add_stub_sums_like_bincount(self):
    import torch  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng([0, 2])
    index = rng.integers(0, 7, 50)
    src = rng.standard_normal(50).astype(np.float32)
    got = patches._scatter_add(torch.as_tensor(src), torch.as_tensor(index),
                               dim=0, dim_size=9)
    np.testing.assert_allclose(
        got.numpy(), np.bincount(index, weights=src, minlength=9), rtol=1e-5,
        atol=1e-6)

  def test_fixed_batch_is_seeded_and_negatives_are_unseen(self):
    rng = np.random.default_rng([0, 1])
    users = rng.integers(0, 30, 400)
    items = rng.integers(0, 20, 400)
    a = step_parity.fixed_batch(users, items, 20, 64, seed=5)
    b = step_parity.fixed_batch(users, items, 20, 64, seed=5)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
    seen = set(zip(users.tolist(), items.tolist()))
    self.assertLen(a['users'], 64)
    for u, i, j in zip(a['users'], a['pos'], a['neg']):
      self.assertIn((u, i), seen)
      self.assertNotIn((u, j), seen)

  def test_nest_builds_lists_for_integer_levels(self):
    tree = step_parity._nest({('user',): 1, ('proj', 1, 'w'): 3,
                              ('proj', 0, 'w'): 2, ('proj', 0, 'b'): 4})
    self.assertEqual(tree, {'user': 1, 'proj': [{'w': 2, 'b': 4}, {'w': 3}]})
    self.assertEqual(step_parity._get(tree, ('proj', 1, 'w')), 3)

  def test_vbpr_weight_mapping_swaps_text_and_image_blocks(self):
    npz = {'feat/text': np.zeros((5, 2)), 'feat/image': np.zeros((5, 3))}
    w = np.arange(4 * 5).reshape(4, 5)  # [D=4, F_t + F_v = 2 + 3]
    got = step_parity._linear_text_image(w, npz)
    np.testing.assert_array_equal(got, np.concatenate([w.T[2:], w.T[:2]]))


def _bm3_parity_file(path: str, seed: int = 0) -> None:
  """A tiny parity file for BM3 in MMRec's names and layout (no MMRec run)."""
  rng = np.random.default_rng([seed, 7])
  nu, ni, d = 40, 30, 64
  users = rng.integers(0, nu, 300)
  items = rng.integers(0, ni, 300)
  arrays = {'train/users': users, 'train/items': items, 'num_users': nu,
            'num_items': ni,
            'feat/image': rng.standard_normal((ni, 6)).astype(np.float32),
            'feat/text': rng.standard_normal((ni, 5)).astype(np.float32)}
  shapes = {'user_embedding.weight': (nu, d), 'item_id_embedding.weight':
            (ni, d), 'image_embedding.weight': (ni, 6),
            'text_embedding.weight': (ni, 5), 'image_trs.weight': (d, 6),
            'image_trs.bias': (d,), 'text_trs.weight': (d, 5),
            'text_trs.bias': (d,), 'predictor.weight': (d, d),
            'predictor.bias': (d,)}
  for name, shape in shapes.items():
    arrays[f'param/{name}'] = (0.3 * rng.standard_normal(shape)).astype(
        np.float32)
  batch = step_parity.fixed_batch(users, items, ni, 64, seed)
  arrays.update({f'batch/{k}': v for k, v in batch.items()})
  np.savez(path, **arrays)


def _as_mmrec_record(record: dict, spec) -> dict:
  """Our draws record in MMRec's layout, as a planted MMRec reference.

  BM3's parameter transforms (identity, transpose) are their own inverses.
  """
  out = dict(record)
  for name, (_, fn) in spec.params.items():
    out[f'draws/grad_mean/{name}'] = fn(record[f'draws/grad_mean/{name}'],
                                        None)
  return out


class DropoutDrawsTest(absltest.TestCase):
  """The RNG-independent check of BM3's dropout against MMRec's."""

  def test_keep_and_scale_by_hand(self):
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    x = np.array([[2.0, 0.0, 3.0], [5.0, 0.0, 1.0]])
    out = np.array([[4.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    # Four non-zero inputs, two kept, each doubled; zero inputs not counted.
    for xp in (np, jnp):
      keep, scale = step_parity.keep_and_scale(xp.asarray(x),
                                               xp.asarray(out))
      self.assertAlmostEqual(float(keep), 0.5)
      self.assertAlmostEqual(float(scale), 2.0)

  def test_record_dropout_stats_reads_torch_dropout(self):
    import torch  # pylint: disable=g-import-not-at-top
    from torch.nn import functional  # pylint: disable=g-import-not-at-top
    original = functional.dropout
    torch.manual_seed(0)
    x = torch.ones(300, 40)
    x[:, :10] = 0.0  # Zero inputs tell nothing about the mask.
    stats = []
    undo = step_parity.record_dropout_stats(stats)
    try:
      out = functional.dropout(x, 0.5)
      functional.dropout(x, 0.3, training=False)  # eval mode: not a draw
    finally:
      undo()
    self.assertLen(stats, 1)
    kept = (out[:, 10:] != 0).float().mean().item()
    self.assertAlmostEqual(stats[0][0], kept, places=6)
    self.assertAlmostEqual(stats[0][1], 2.0, places=6)
    self.assertIs(functional.dropout, original)

  def test_moment_gap_by_hand(self):
    # |(3, 4) - 0| = 5 against sqrt(50 / 4 + 50 / 4) = 5.
    self.assertAlmostEqual(
        step_parity.moment_gap([3.0, 4.0], 50.0, 4, [0.0, 0.0], 50.0, 4),
        1.0)
    # Scalars: a difference of 0.3 with standard errors 0.1 and 0.1 * sqrt 3.
    self.assertAlmostEqual(
        step_parity.moment_gap(1.3, 0.01 * 25, 25, 1.0, 0.03 * 100, 100),
        1.5)
    self.assertEqual(step_parity.moment_gap(2.0, 0.0, 5, 2.0, 0.0, 5), 0.0)

  def test_draws_agree_with_ours_and_catch_rate_and_scaling(self):
    from mmjax.models import bm3  # pylint: disable=g-import-not-at-top
    path = os.path.join(_tmpdir(self), 'BM3-dropout.npz')
    _bm3_parity_file(path)
    spec = step_parity.SPECS['BM3-dropout']
    npz = np.load(path)
    ctx, cfg, params = step_parity._our_setup(npz, spec, bm3)
    batch = {'users': npz['batch/users'].astype(np.int32),
             'pos': npz['batch/pos'].astype(np.int32),
             'mask': np.ones(len(npz['batch/users']), np.float32)}

    def draws(cfg, seed):
      return step_parity.our_dropout_draws(bm3, spec, params, ctx, batch,
                                           cfg, 30, seed)

    def row_against(reference):
      return step_parity.draws_row('BM3-dropout', ours,
                                   _as_mmrec_record(reference, spec), npz)

    ours = draws(cfg, 0)
    # The same dropout from other keys: every statistic agrees.
    same = draws(cfg, 1000)
    row = row_against(same)
    self.assertTrue(row['ok'], row)
    self.assertLen(row['calls'], 4)  # u, i and both modalities' targets
    for call in row['calls']:
      self.assertAlmostEqual(call['ours']['keep'], 0.7, delta=0.01)
      self.assertAlmostEqual(call['ours']['scale'], 1 / 0.7, places=5)
    self.assertBetween(row['grad_ratio'], 0.5, step_parity.DRAWS_GRAD_RATIO)

    # A reference that drops half: kept fractions and gradients differ.
    half = step_parity.cfg_of(dataclasses.replace(
        spec, model_cfg={**spec.model_cfg, 'dropout': 0.5}))
    row = row_against(draws(half, 1000))
    self.assertFalse(row['ok'])
    self.assertGreater(min(c['keep_z'] for c in row['calls']), 10.0)
    self.assertGreater(row['grad_ratio'], step_parity.DRAWS_GRAD_RATIO)

    # A reference that drops the same entries but does not scale the kept
    # ones (dropout without 1 / (1 - p)): only the scaling differs.
    unscaled = dict(same)
    unscaled['draws/scale'] = np.ones_like(same['draws/scale'])
    row = row_against(unscaled)
    self.assertFalse(row['ok'])
    for call in row['calls']:
      self.assertAlmostEqual(call['scale_err'], 1 / 0.7 - 1, places=5)
      self.assertLess(call['keep_z'], step_parity.DRAWS_Z)


class OutcomeTest(absltest.TestCase):

  def test_parity_by_hand(self):
    # means 0.5 and 0.4; SEMs 0.1/sqrt(3) and 0 -> z = 0.1 / 0.0577 = 1.73.
    got = outcome.parity([0.4, 0.5, 0.6], [0.4, 0.4, 0.4])
    self.assertAlmostEqual(got['diff'], 0.1)
    self.assertAlmostEqual(got['diff_se'], 0.1 / np.sqrt(3))
    self.assertAlmostEqual(got['z'], np.sqrt(3))
    self.assertTrue(got['ok'])
    self.assertFalse(outcome.parity([0.4, 0.5, 0.6], [0.3, 0.3, 0.3])['ok'])

  def test_identical_constant_values_are_in_parity(self):
    self.assertTrue(outcome.parity([0.2, 0.2], [0.2, 0.2])['ok'])
    self.assertFalse(outcome.parity([0.2, 0.2], [0.3, 0.3])['ok'])

  def test_record_without_evaluation_is_an_error(self):
    with self.assertRaisesRegex(ValueError, 'no evaluation'):
      outcome.record_metric({'model': 'LightGCN', 'final': None})


class OutcomeFolderTest(absltest.TestCase):

  def _write(self, folder, tool, model, seed, value):
    record = {'model': model, 'seed': seed, 'epochs': 50,
              'final': {'valid': {'recall@20': value}}}
    path = os.path.join(folder, f'{tool}_{model}_s{seed}.json')
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(record, f)

  def test_rows_pair_seeds_of_each_model(self):
    folder = _tmpdir(self)
    for seed, (a, b) in enumerate([(0.4, 0.4), (0.5, 0.4), (0.6, 0.4)]):
      self._write(folder, 'ours', 'VBPR', seed, a)
      self._write(folder, 'mmrec', 'VBPR', seed, b)
    self._write(folder, 'ours', 'BM3', 0, 0.3)  # No MMRec side: no row.
    rows = outcome.folder_rows(folder)
    self.assertLen(rows, 1)
    row = rows[0]
    self.assertEqual(row['model'], 'VBPR')
    self.assertEqual(row['ours_seeds'], [0, 1, 2])
    self.assertEqual(row['epochs'], [50])
    self.assertAlmostEqual(row['z'], np.sqrt(3))  # As test_parity_by_hand.
    text = outcome.table(rows, mostpop=0.2)
    self.assertIn('| VBPR | 0.5000 +- 0.0577 | 0.4000 +- 0.0000 | +0.1000 | '
                  '1.73 | yes | 0,1,2 | 50 | 2.00 |', text)


class ModelSpeedTest(absltest.TestCase):

  def test_prepared_export_keeps_splits_and_features(self):
    root = _tmpdir(self)
    data = os.path.join(root, 'tiny')
    stats = _tiny_export(data)
    ds_dir = model_speed.prepare_exported(data, root)
    ds = dataset_lib.load(ds_dir)
    self.assertEqual(np.bincount(ds.split, minlength=3).tolist(),
                     [stats['train'], stats['valid'], stats['test']])
    from mmjax.data import store  # pylint: disable=g-import-not-at-top
    image = store.load(ds_dir, 'image', ds.item_ids)
    written = np.load(os.path.join(data, 'image_feat.npy'))
    # Our item k is MMRec's row int(item_ids[k]).
    np.testing.assert_array_equal(
        image.values, written[ds.item_ids.astype(np.int64)])
    self.assertTrue(image.mask.all())

  def test_changed_export_counts_are_an_error(self):
    root = _tmpdir(self)
    data = os.path.join(root, 'tiny')
    _tiny_export(data)
    path = os.path.join(data, 'export.json')
    with open(path, encoding='utf-8') as f:
      record = json.load(f)
    record['stats']['valid'] += 1
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(record, f)
    with self.assertRaisesRegex(dataset_lib.DataError, 'valid'):
      model_speed.prepare_exported(data, root)

  def test_every_grid_model_builds_with_its_config(self):
    import jax  # pylint: disable=g-import-not-at-top

    from mmjax import models  # pylint: disable=g-import-not-at-top
    from mmjax.models import context  # pylint: disable=g-import-not-at-top
    root = _tmpdir(self)
    data = os.path.join(root, 'tiny')
    _tiny_export(data)
    ds_dir = model_speed.prepare_exported(data, root)
    ds = dataset_lib.load(ds_dir)
    for name, spec in model_speed.GRID.items():
      try:
        module = models.get_model(spec['ours'])
      except (KeyError, ValueError, ImportError):
        continue  # Not landed yet (MGCN).
      cfg = model_speed.our_config(name, 1e-3, 64)
      ctx, record = context.make_context(ds, ds_dir, cfg.features)
      if spec['features']:
        self.assertEqual(sorted(record), ['image', 'text'])
      if hasattr(module, 'prepare'):
        ctx = dataclasses.replace(ctx, extras={
            spec['ours']: module.prepare(ctx, cfg.model)})
      params = jax.eval_shape(
          lambda k, c, m=module, g=cfg.model: m.init(k, c, g),
          jax.random.key(0), ctx)
      self.assertTrue(jax.tree.leaves(params), name)
      # Tracing the loss reads every hyper-parameter the step uses.
      batch = {k: np.zeros(4, np.int32) for k in ('users', 'pos', 'neg')}
      batch['mask'] = np.ones(4, np.float32)
      loss, _ = jax.eval_shape(
          lambda p, c, m=module, g=cfg.model: m.loss(
              p, batch, c, jax.random.key(1), g),
          params, ctx)
      self.assertEqual(loss.shape, (), name)

  def test_time_ours_records_medians_after_the_compiling_epoch(self):
    root = _tmpdir(self)
    data = os.path.join(root, 'tiny')
    stats = _tiny_export(data)
    ds_dir = model_speed.prepare_exported(data, root)
    rates = {'matmul_flops_per_s': 1e10, 'copy_bytes_per_s': 1e10}
    # The rates are stubbed (measuring them takes seconds); the counts are
    # those of the programs just timed.
    with mock.patch.object(model_speed, 'machine_rates', return_value=rates):
      rec = model_speed.time_ours(ds_dir, 'FREEDOM', epochs=3, evals=2,
                                  lr=1e-3, batch_size=256)
    self.assertEqual(rec['train_interactions'], stats['train'])
    self.assertEqual(rec['steps_per_epoch'], -(-stats['train'] // 256))
    self.assertLen(rec['per_epoch'], 3)
    self.assertEqual(rec['train_s_median'], float(np.median(
        [r['train_s'] for r in rec['per_epoch'][1:]])))
    self.assertEqual(rec['eval_s_median'], rec['per_eval'][1]['eval_s'])
    self.assertTrue(all(np.isfinite(r['loss']) for r in rec['per_epoch']))
    self.assertBetween(rec['per_eval'][-1]['recall@20'], 0.0, 1.0)
    self.assertEqual(rec['model_config']['mm_weights'],
                     {'image': 0.1, 'text': 0.9})
    floor = rec['floor']
    self.assertNotIn('error', floor)
    # Every step's work, not one step's: the scan over steps is counted at
    # its length, and the propagation kernel (FREEDOM's two graphs, forward
    # and backward) on every step.
    self.assertGreater(floor['epoch']['loop_flops'], 0)
    if rec['kernel']['in_use']:
      self.assertEqual(floor['epoch']['kernel_calls'] %
                       rec['steps_per_epoch'], 0)
      self.assertGreater(floor['epoch']['kernel_calls'], 0)
    self.assertGreaterEqual(floor['eval']['programs']['block_fn'], 1)
    for what in ('epoch', 'eval'):
      f = floor[what]
      self.assertEqual(f['floor_s'], max(f['flops'] / 1e10,
                                         f['bytes'] / 1e10))

  def test_profile_categories_follow_the_primitive(self):
    step = 'jit(epoch_fn)/while/body/closed_call'
    self.assertEqual(model_speed.category(f'{step}/jvp()/ffi_call'),
                     'propagation (CSR kernel)')
    self.assertEqual(
        model_speed.category(f'{step}/transpose(jvp())/dot_general'),
                     'dense matmul')
    self.assertEqual(model_speed.category(f'{step}/mul'),
                     'optimiser (Adam) and step bookkeeping')
    self.assertEqual(model_speed.category('jit(epoch_fn)/jit(_shuffle)/sort'),
                     'shuffle and sampling')
    self.assertEqual(model_speed._eval_category('jit(_block)/top_k'), 'top-k')

  def test_mmrec_medians_and_table_ratio(self):
    mmrec = {'per_epoch': [
        {'train_s': 9.0, 'train_cpu_s': 9.0, 'eval_s': 5.0, 'eval_cpu_s': 5},
        {'train_s': 2.0, 'train_cpu_s': 1.0, 'eval_s': 1.0, 'eval_cpu_s': 1},
        {'train_s': 4.0, 'train_cpu_s': 3.0, 'eval_s': 3.0, 'eval_cpu_s': 3}],
             'peak_rss_mb': 500.0}
    got = model_speed.mmrec_medians(mmrec)
    self.assertEqual(got, {'train_s': 3.0, 'train_cpu_s': 2.0,
                           'eval_s': 2.0, 'eval_cpu_s': 2.0})
    ours = {'train_interactions': 1000, 'train_s_median': 0.3,
            'eval_s_median': 0.5, 'train_cpu_s_median': 0.2,
            'eval_cpu_s_median': 0.4, 'peak_rss_mb': 400.0}
    row = model_speed.table([{'dataset': 'd', 'model': 'VBPR',
                              'ours': ours, 'mmrec': mmrec,
                              'load_ours': 1.0, 'load_mmrec': 1.5}])
    # A record without a floor (an older one) prints '-' in its columns.
    self.assertIn('| d | 1,000 | VBPR | 0.300 | 3.000 | 10.0 | - | - | - | '
                  '0.500 | 2.000 | 4.0 | - | - | - | -; - |', row)

  def test_floor_counts_a_matmul_and_every_scan_step(self):
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    m, k, n = 256, 128, 192
    a, b = jnp.ones((m, k)), jnp.ones((k, n))
    cost = model_speed.program_cost(jax.jit(jnp.matmul), a, b)
    self.assertBetween(cost['flops'], 0.95 * 2 * m * n * k,
                       1.05 * 2 * m * n * k)

    def steps(x, w):  # 10 steps of 3 matmuls: XLA counts one of each loop.
      def step(c, _):
        c, _ = jax.lax.scan(lambda c, _: (c @ w, None), c, None, length=3)
        return jnp.tanh(c), None
      return jax.lax.scan(step, x, None, length=10)[0]

    cost = model_speed.program_cost(jax.jit(steps), b.T, jnp.ones((k, k)))
    want = 30 * 2 * n * k * k
    self.assertBetween(cost['flops'], 0.95 * want, 1.05 * want)
    # A 64-row lookup in a 4 MB table moves the rows, not the table.
    table = jnp.ones((16384, 64))
    cost = model_speed.program_cost(jax.jit(lambda t, i: t[i]), table,
                                    jnp.arange(64))
    self.assertLess(cost['bytes'], 0.1 * table.nbytes)
    rates = {'matmul_flops_per_s': 1e9, 'copy_bytes_per_s': 1e12}
    floor = model_speed.floor_of({'flops': 2e9, 'bytes': 1e9}, rates)
    self.assertEqual((floor['floor_s'], floor['bound']), (2.0, 'flop'))

  def test_table_prints_the_floor_beside_each_time(self):
    floor = {'epoch': {'floor_s': 0.1, 'bound': 'memory', 'flops_g': 1.5,
                       'bytes_mb': 400.0},
             'eval': {'floor_s': 0.01, 'bound': 'flop', 'flops_g': 0.2,
                      'bytes_mb': 30.0}}
    ours = {'train_interactions': 1000, 'train_s_median': 0.3,
            'eval_s_median': 0.05, 'train_cpu_s_median': 0.2,
            'eval_cpu_s_median': 0.4, 'peak_rss_mb': 400.0, 'floor': floor}
    mmrec = {'per_epoch': [{'train_s': 2.0, 'train_cpu_s': 1.0,
                            'eval_s': 1.0, 'eval_cpu_s': 1.0}],
             'peak_rss_mb': 500.0}
    text = model_speed.table([{'dataset': 'd', 'model': 'VBPR',
                               'ours': ours, 'mmrec': mmrec,
                               'load_ours': 1.0, 'load_mmrec': 1.5}])
    header, _, row = text.splitlines()
    self.assertIn('| ours epoch s | MMRec epoch s | epoch x | epoch floor s '
                  '| ours/floor | MMRec/floor | ours eval s |', header)
    self.assertEqual(header.count('|'), row.count('|'))
    self.assertIn('| 0.300 | 2.000 | 6.7 | 0.1000 mem | 3.0 | 20.0 | 0.050 | '
                  '1.000 | 20.0 | 0.0100 flop | 5.0 | 100.0 | '
                  '1.5/400; 0.2/30 |', row)


@absltest.skipUnless(
    _MMREC_DIR and patches.check_mmrec_dir(_MMREC_DIR) is None,
    'needs a MMRec checkout in $MMREC_DIR (bench/mmrec/README.md)')
class MMRecParityTest(absltest.TestCase):

  def test_one_step_matches_mmrec(self):
    root = _tmpdir(self)
    data = os.path.join(root, 'tiny')
    _tiny_export(data)
    for model in ('LightGCN', 'VBPR', 'FREEDOM', 'BM3', 'BM3-dropout',
                  'LATTICE'):
      path = os.path.join(root, f'{model}.npz')
      step_parity.mmrec_step(_MMREC_DIR, data, 'tiny', model, 64, 0, path)
      row = step_parity.compare(path, model)
      self.assertTrue(row['ok'], row)
      self.assertLess(row['loss_abs_err'], 1e-5, row)

  def test_bm3_dropout_statistics_match_mmrec(self):
    # MMRec's own F.dropout against ours, each with its own RNG.
    root = _tmpdir(self)
    data = os.path.join(root, 'tiny')
    _tiny_export(data)
    path = os.path.join(root, 'BM3-dropout.npz')
    step_parity.mmrec_step(_MMREC_DIR, data, 'tiny', 'BM3-dropout', 64, 0,
                           path, draws=30)
    row = step_parity.compare_dropout_draws(path, 'BM3-dropout')
    self.assertTrue(row['ok'], row)
    self.assertEqual(row['draws'], {'mmrec': 30, 'ours': 30})


if __name__ == '__main__':
  absltest.main()
