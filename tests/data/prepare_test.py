"""End-to-end tests of `prepare`: configs, dataset directory, ensure_dataset."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
import ml_collections
import numpy as np
import pytest

from mmjax.data import dataset as dataset_lib
from mmjax.data import datasets
from mmjax.data import prepare
from mmjax.data import store
from mmjax.data import synthetic
from tests.testing import fixtures

SHARED_DATA = fixtures.SHARED_DATA
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def _small(root, preset='both'):
  cfg = prepare.load_data_config('synthetic')
  cfg.root = root
  cfg.synthetic.preset = preset
  cfg.synthetic.num_users = 120
  cfg.synthetic.num_items = 80
  cfg.synthetic.interactions_per_user = 15
  cfg.synthetic.max_images = 10
  return cfg


class PrepareSyntheticTest(absltest.TestCase):

  def test_prepare_writes_a_loadable_dataset_with_features(self):
    with tempfile.TemporaryDirectory() as root:
      cfg = _small(root)
      out = prepare.prepare(cfg, quiet=True)
      self.assertEqual(out, os.path.join(
          root, f'synthetic-{prepare.config_hash(cfg)[:8]}'))
      self.assertFalse(os.path.exists(out + '.partial'))
      ds = dataset_lib.load(out, verify=True)
      ds.validate()
      self.assertEqual(ds.user.dtype, np.int32)
      # The stored interactions are the generator's, minus counted steps.
      raw = synthetic.to_raw(cfg.synthetic, cfg.seed, None)
      pairs = set(zip(ds.user_ids[ds.user].tolist(),
                      ds.item_ids[ds.item].tolist()))
      self.assertTrue(pairs <= set(zip(raw.users.tolist(),
                                       raw.items.tolist())))
      steps = {s['step']: s for s in ds.manifest['steps']}
      self.assertEqual(steps['read']['interactions'], 120 * 15)
      removed = sum(s['removed'] for s in ds.manifest['steps'])
      self.assertEqual(len(ds), 120 * 15 - removed)
      self.assertEqual(steps['deduplicate']['removed'],
                       len(raw) - len(set(zip(raw.users, raw.items))))
      self.assertEqual(ds.manifest['config_hash'], prepare.config_hash(cfg))
      # Every split is present and every user has a training interaction.
      counts = np.bincount(ds.split, minlength=3)
      self.assertTrue((counts > 0).all())
      self.assertEqual(set(ds.user[ds.split == 0]), set(ds.user))
      # Features: one row per dataset item, in the dataset's item order.
      feat = store.load(out, 'synthetic_visual')
      self.assertEqual(feat.values.shape, (ds.num_items, 64))
      self.assertTrue(feat.mask.all())
      self.assertEqual(feat.manifest['extractor'], 'synthetic')
      index = {r: k for k, r in enumerate(raw.features['synthetic_text'][1])}
      text = store.load(out, 'synthetic_text').values
      np.testing.assert_array_equal(
          text, raw.features['synthetic_text'][0][
              [index[r] for r in ds.item_ids]])
      # Images, with item-table paths relative to the dataset directory.
      images = [p for p in ds.item_table['image'] if p]
      self.assertLen(images, 10)
      for p in images:
        self.assertTrue(os.path.exists(os.path.join(out, p)), p)
      summary = prepare.format_summary(ds)
      self.assertIn(f'{len(ds):,}', summary)
      self.assertIn('deduplicate', summary)

  def test_same_config_same_dataset_bytes(self):
    with tempfile.TemporaryDirectory() as root:
      a = dataset_lib.load(prepare.prepare(_small(root), os.path.join(
          root, 'a'), quiet=True))
      b = dataset_lib.load(prepare.prepare(_small(root), os.path.join(
          root, 'b'), quiet=True))
    for name in ('user', 'item', 'split', 'timestamp', 'user_ids',
                 'item_ids'):
      np.testing.assert_array_equal(getattr(a, name), getattr(b, name))

  def test_ensure_dataset_reuses_and_rehashes(self):
    with tempfile.TemporaryDirectory() as root:
      small = {'synthetic': {'num_users': 100, 'num_items': 60,
                             'interactions_per_user': 12, 'max_images': 0}}
      data_cfg = ml_collections.ConfigDict({
          'name': 'synthetic', 'root': root, 'split': None,
          'implicit_threshold': None, 'min_user': None, 'min_item': None,
          'cold': None, 'overrides': small})
      out = prepare.ensure_dataset(data_cfg)
      self.assertTrue(os.path.exists(os.path.join(out, dataset_lib.MANIFEST)))
      stamp = os.path.getmtime(os.path.join(out, dataset_lib.MANIFEST))
      self.assertEqual(prepare.ensure_dataset(data_cfg), out)
      self.assertEqual(
          os.path.getmtime(os.path.join(out, dataset_lib.MANIFEST)), stamp)
      data_cfg.split = 'leave_last'
      other = prepare.ensure_dataset(data_cfg)
      self.assertNotEqual(other, out)
      ds = dataset_lib.load(other)
      self.assertEqual(ds.manifest['config']['split'], 'leave_last')
      # Leave-last: at most one test interaction per user.
      self.assertLessEqual(np.bincount(ds.user[ds.split == 2]).max(), 1)
      # A manifest whose hash differs is prepared again.
      path = os.path.join(out, dataset_lib.MANIFEST)
      with open(path, encoding='utf-8') as f:
        manifest = json.load(f)
      manifest['config_hash'] = 'stale'
      with open(path, 'w', encoding='utf-8') as f:
        json.dump(manifest, f)
      data_cfg.split = None
      self.assertEqual(prepare.ensure_dataset(data_cfg), out)
      with open(path, encoding='utf-8') as f:
        self.assertNotEqual(json.load(f)['config_hash'], 'stale')

  def test_emptied_dataset_names_the_step(self):
    with tempfile.TemporaryDirectory() as root:
      cfg = _small(root)
      cfg.min_user = 1000
      with self.assertRaisesRegex(dataset_lib.DataError,
                                  "after step 'k_core'"):
        prepare.prepare(cfg, quiet=True)
      self.assertEqual(os.listdir(root), [])

  def test_cold_item_split_keeps_cold_items_out_of_train(self):
    with tempfile.TemporaryDirectory() as root:
      cfg = _small(root)
      cfg.split = 'cold_item'
      ds = dataset_lib.load(prepare.prepare(cfg, quiet=True))
      train_items = set(ds.item[ds.split == 0].tolist())
      held = set(ds.item[ds.split != 0].tolist())
      self.assertTrue(held)
      self.assertEmpty(train_items & held)
      cold = [s for s in ds.manifest['steps']
              if s['step'] == 'cold_in_heldout'][0]
      self.assertEqual(cold['policy'], 'keep')

  def test_cli(self):
    with tempfile.TemporaryDirectory() as root:
      out = os.path.join(root, 'cli')
      proc = subprocess.run(
          [sys.executable, '-m', 'mmjax.data.prepare',
           '--config', 'synthetic',
           '--config.synthetic.num_users=60', '--config.synthetic.num_items=50',
           '--config.synthetic.max_images=0', f'--config.out_dir={out}'],
          cwd=REPO, capture_output=True, text=True, timeout=120)
      self.assertEqual(proc.returncode, 0, proc.stderr)
      ds = dataset_lib.load(out)
      self.assertEqual(ds.num_users, 60)
      self.assertIn('interactions', proc.stdout)
      proc = subprocess.run(
          [sys.executable, '-m', 'mmjax.data.prepare',
           '--config', 'synthetic',
           '--config.synthetic.num_userz=60'],
          cwd=REPO, capture_output=True, text=True, timeout=120)
      self.assertNotEqual(proc.returncode, 0)
      self.assertIn('num_userz', proc.stderr)


  def test_missing_real_folder_message(self):
    cfg = prepare.load_data_config('ml_lvlm')
    cfg.path = '/nonexistent/movielens-lvlm'
    with self.assertRaisesRegex(dataset_lib.DataError, 'data not found'):
      prepare.build(cfg)



def _extract(out: str, name: str = 'lvlm_x') -> bytes:
  """Stores a representation as an extractor would; returns its .npy bytes."""
  ds = dataset_lib.load(out)
  values = np.random.default_rng([3, ds.num_items]).normal(
      size=(ds.num_items, 5)).astype(np.float32)
  npy = store.save(out, name, values, {'extractor': 'lvlm'}, ds.item_ids)
  with open(npy, 'rb') as f:
    return f.read()


def _read(path: str) -> bytes:
  with open(path, 'rb') as f:
    return f.read()


class PrepareAgainTest(absltest.TestCase):
  """Preparing into a directory that holds features never destroys them."""

  def test_same_dataset_keeps_features_byte_identical(self):
    with tempfile.TemporaryDirectory() as root:
      out = prepare.prepare(_small(root), quiet=True)
      data = _extract(out)
      partial = os.path.join(out, store.FEATURES_DIR, '.partial', 'lvlm_x')
      os.makedirs(partial)
      with open(os.path.join(partial, 'shard_0.npy'), 'wb') as f:
        f.write(b'half an extraction')
      stdout = io.StringIO()
      with contextlib.redirect_stdout(stdout):
        self.assertEqual(prepare.prepare(_small(root)), out)
      self.assertIn('kept 1 stored representations', stdout.getvalue())
      npy, _ = store.feature_paths(out, 'lvlm_x')
      self.assertEqual(_read(npy), data)
      self.assertEqual(_read(os.path.join(partial, 'shard_0.npy')),
                       b'half an extraction')
      self.assertEqual(store.list_features(out),
                       ['lvlm_x', 'synthetic_text', 'synthetic_visual'])
      store.load(out, 'lvlm_x')  # Still this dataset's.
      self.assertEqual(sorted(os.listdir(root)), [os.path.basename(out)])
      self.assertNotIn('item table changed', stdout.getvalue())
      # Same items, other item table (no images now): kept, with a note.
      cfg = _small(root)
      cfg.synthetic.max_images = 0
      stdout = io.StringIO()
      with contextlib.redirect_stdout(stdout):
        prepare.prepare(cfg, out, quiet=True)
      self.assertIn('item table changed since the kept representations',
                    stdout.getvalue())
      self.assertEqual(_read(npy), data)

  def test_other_item_map_moves_features_aside_and_says_so(self):
    with tempfile.TemporaryDirectory() as root:
      out = os.path.join(root, 'ds')
      prepare.prepare(_small(root), out, quiet=True)
      data = _extract(out)
      cfg = _small(root)
      cfg.synthetic.num_items = 70  # Another item map.
      stdout = io.StringIO()
      with contextlib.redirect_stdout(stdout):
        prepare.prepare(cfg, out, quiet=True)
      stale = [e for e in os.listdir(out)
               if e.startswith(prepare.STALE_PREFIX)]
      self.assertLen(stale, 1)
      self.assertIn(f'moved to {os.path.join(out, stale[0])}',
                    stdout.getvalue())
      self.assertIn('lvlm_x', stdout.getvalue())
      self.assertEqual(_read(os.path.join(out, stale[0], 'lvlm_x.npy')), data)
      self.assertNotIn('lvlm_x', store.list_features(out))
      self.assertEqual(dataset_lib.load(out).num_items, 70)
      # A third prepare carries the moved-aside store along as well.
      prepare.prepare(cfg, out, quiet=True)
      self.assertEqual(_read(os.path.join(out, stale[0], 'lvlm_x.npy')), data)

  def test_source_features_alone_are_not_moved_aside(self):
    # They are made again from the source: nothing to keep, nothing to say.
    with tempfile.TemporaryDirectory() as root:
      out = os.path.join(root, 'ds')
      prepare.prepare(_small(root), out, quiet=True)
      cfg = _small(root)
      cfg.synthetic.num_items = 70
      stdout = io.StringIO()
      with contextlib.redirect_stdout(stdout):
        prepare.prepare(cfg, out, quiet=True)
      self.assertEqual(stdout.getvalue(), '')
      self.assertEmpty([e for e in os.listdir(out)
                        if e.startswith(prepare.STALE_PREFIX)])
      self.assertEqual(store.load(out, 'synthetic_visual').values.shape[0],
                       70)

  def test_interrupted_swap_is_finished_by_the_next_prepare(self):
    with tempfile.TemporaryDirectory() as root:
      out = os.path.join(root, 'ds')
      prepare.prepare(_small(root), out, quiet=True)
      data = _extract(out)
      npy, _ = store.feature_paths(out, 'lvlm_x')
      # Killed after the new directory was swapped in, before the old
      # features were carried over.
      with mock.patch.object(prepare, '_carry_features',
                             side_effect=KeyboardInterrupt):
        with self.assertRaises(KeyboardInterrupt):
          prepare.prepare(_small(root), out, quiet=True)
      self.assertEqual(_read(os.path.join(
          out + '.replaced', store.FEATURES_DIR, 'lvlm_x.npy')), data)
      prepare.prepare(_small(root), out, quiet=True)
      self.assertEqual(_read(npy), data)
      self.assertFalse(os.path.exists(out + '.replaced'))
      # Killed between the two renames: only the old directory exists.
      os.replace(out, out + '.replaced')
      prepare.prepare(_small(root), out, quiet=True)
      self.assertEqual(_read(npy), data)
      self.assertEqual(sorted(os.listdir(root)), ['ds'])


class SummaryTest(absltest.TestCase):

  def test_columns_say_their_units(self):
    with tempfile.TemporaryDirectory() as root:
      cfg = _small(root)
      cfg.min_item = 12  # Drops items, so both removal columns are used.
      ds = dataset_lib.load(prepare.prepare(cfg, quiet=True))
    steps = {s['step']: s for s in ds.manifest['steps']}
    dropped = steps['drop_items_without_interactions']['items_removed']
    self.assertEqual(dropped, 80 - ds.num_items)
    self.assertGreater(dropped, 0)
    lines = prepare.format_summary(ds).splitlines()
    self.assertIn(f'  {"train interactions":<30}'
                  f'{int((ds.split == 0).sum()):>12,}', lines)
    header = [k for k, line in enumerate(lines)
              if line.startswith('  preprocessing step')][0]
    self.assertEqual(lines[header].split()[-2:], ['interactions', 'items'])
    self.assertEqual(lines[header + 1].split(), ['removed', 'removed'])
    row = {line.split()[0]: line.split()[1:] for line in lines[header + 2:]}
    # Interactions removed, then items removed; the detail names its unit.
    self.assertEqual(row['drop_items_without_interactions'][:2],
                     ['0', str(dropped)])
    self.assertEqual(row['deduplicate'],
                     [f'{steps["deduplicate"]["removed"]:,}'])
    self.assertEqual(row['read'], ['0', 'interactions_read=1800'])
    self.assertEqual(row['k_core'][0], f'{steps["k_core"]["removed"]:,}')
    self.assertIn('min_interactions_per_item=12,', row['k_core'])

  def test_summary_line(self):
    with tempfile.TemporaryDirectory() as root:
      out = prepare.prepare(_small(root), quiet=True)
      ds = dataset_lib.load(out)
    n = np.bincount(ds.split, minlength=3)
    self.assertEqual(
        prepare.format_summary_line(ds),
        f'dataset synthetic: {ds.num_users} users, {ds.num_items} items, '
        f'{n[0]:,}/{n[1]:,}/{n[2]:,} train/valid/test interactions, in {out}')
    self.assertNotIn('\n', prepare.format_summary_line(ds))
    self.assertTrue(prepare.format_summary_line(ds, 'elsewhere').endswith(
        'in elsewhere'))

  def test_ensure_dataset_prints_the_summary_only_when_it_prepares(self):
    with tempfile.TemporaryDirectory() as root:
      data_cfg = ml_collections.ConfigDict({
          'name': 'synthetic', 'root': root, 'split': None,
          'implicit_threshold': None, 'min_user': None, 'min_item': None,
          'cold': None, 'overrides': {'synthetic': {
              'num_users': 60, 'num_items': 40, 'max_images': 0}}})
      for expected in (True, False):
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
          prepare.ensure_dataset(data_cfg)
        self.assertEqual('preprocessing step' in stdout.getvalue(), expected)
        self.assertEqual(bool(stdout.getvalue()), expected)


def _elliot(folder: str) -> ml_collections.ConfigDict:
  """A fixed Elliot split where user u9 (3 held-out rows) never trains."""
  train = [f'u{u}\ti{(u + k) % 6}\t5' for u in range(4) for k in range(3)]
  test = ['u0\ti5\t5', 'u1\ti0\t5'] + [f'u9\ti{k}\t5' for k in range(3)]
  for name, rows in (('train.tsv', train), ('test.tsv', test)):
    with open(os.path.join(folder, name), 'w') as f:
      f.write('\n'.join(rows) + '\n')
  cfg = prepare.base_config()
  cfg.name, cfg.format, cfg.path = 'tiny', 'elliot', folder
  cfg.split = 'fixed'
  cfg.root = os.path.join(folder, 'out')
  return cfg


class FlagsAndSummaryTest(absltest.TestCase):
  """`None` on the command line, the split options, the cold-user note."""

  def test_none_sets_optional_fields_to_none(self):
    with tempfile.TemporaryDirectory() as root:
      out = os.path.join(root, 'cli')
      proc = subprocess.run(
          [sys.executable, '-m', 'mmjax.data.prepare',
           '--config', 'synthetic',
           '--config.synthetic.num_users=60', '--config.synthetic.num_items=50',
           '--config.synthetic.max_images=0',
           '--config.implicit_threshold=None', '--config.reader_name=None',
           '--config.cold=None',
           f'--config.out_dir={out}'],
          cwd=REPO, capture_output=True, text=True, timeout=120)
      self.assertEqual(proc.returncode, 0, proc.stderr)
      config = dataset_lib.load(out).manifest['config']
      self.assertIsNone(config['implicit_threshold'])
      self.assertIsNone(config['reader_name'])
      self.assertIsNone(config['cold'])
      # A field that is not optional still refuses `None`.
      proc = subprocess.run(
          [sys.executable, '-m', 'mmjax.data.prepare',
           '--config', 'synthetic',
           '--config.min_user=None', f'--config.out_dir={out}-2'],
          cwd=REPO, capture_output=True, text=True, timeout=120)
      self.assertNotEqual(proc.returncode, 0)
      self.assertIn('min_user', proc.stderr)

  def test_optional_fields(self):
    cfg = prepare.load_data_config('ml100k')  # implicit_threshold = 4.0.
    self.assertTrue(prepare.is_optional(cfg, 'implicit_threshold'))
    self.assertTrue(prepare.is_optional(cfg, 'reader_name'))
    self.assertFalse(prepare.is_optional(cfg, 'min_user'))
    self.assertFalse(prepare.is_optional(cfg, 'split'))
    self.assertFalse(prepare.is_optional(cfg, 'no.such'))
    rest, paths = prepare.split_none_overrides(
        ['x', '--config.implicit_threshold=None', '--config.min_user=None',
         '--config.cold=none'], cfg)
    self.assertEqual(paths, ['implicit_threshold'])
    self.assertEqual(rest, ['x', '--config.min_user=None',
                            '--config.cold=none'])
    prepare.set_none(cfg, paths)
    self.assertIsNone(cfg.implicit_threshold)

  def test_reader_argument_it_does_not_take(self):
    with tempfile.TemporaryDirectory() as folder:
      cfg = _elliot(folder)
      cfg.reader_name = 'None'
      with self.assertRaisesRegex(
          dataset_lib.DataError,
          r"reader_name='None': the 'elliot' reader takes no 'name'"):
        prepare.build(cfg)

  def test_fixed_split_summary_and_cold_users_note(self):
    with tempfile.TemporaryDirectory() as folder:
      cfg = _elliot(folder)
      stdout = io.StringIO()
      with contextlib.redirect_stdout(stdout):
        out = prepare.prepare(cfg)
      ds = dataset_lib.load(out)
    text = stdout.getvalue()
    split = [line for line in text.splitlines()
             if line.strip().startswith('split ')]
    self.assertLen(split, 1)
    self.assertTrue(split[0].endswith('kind=fixed'), split[0])
    self.assertNotIn('ratios', text)
    self.assertNotIn('rounding', text)
    note = [line for line in text.splitlines() if line.startswith('WARNING: ')]
    # u9's 3 test rows of the 5 held out: the count, the option that keeps
    # them and the evaluator that reports them, in one line.
    self.assertEqual(note, [
        'WARNING: 3 valid/test interactions (60% of them) of 1 user unseen in '
        'training were DROPPED (cold=drop); keep them with --config.cold=keep '
        '(--config.data.cold=keep in a training config), and the cold-user '
        'evaluator (eval.evaluators kind user_groups; its lowest group, from '
        '0 training interactions, holds them) reports them.'])
    self.assertEqual(prepare.cold_note(ds), note[0])
    # Printed after the table, just before where the dataset went.
    lines = text.splitlines()
    self.assertEqual(lines[-2], note[0])
    self.assertTrue(lines[-1].startswith('dataset written to '), lines[-1])
    line = prepare.format_summary_line(ds)
    self.assertIn('(3 valid/test of cold users/items DROPPED, cold=drop; '
                  'data.cold=keep keeps them)', line)
    with tempfile.TemporaryDirectory() as folder:
      cfg = _elliot(folder)
      cfg.cold = 'keep'
      ds = dataset_lib.load(prepare.prepare(cfg, quiet=True))
    self.assertIsNone(prepare.cold_note(ds))
    self.assertNotIn('WARNING', prepare.format_summary(ds))
    self.assertNotIn('cold', prepare.format_summary_line(ds))


class RestrictCsvTest(absltest.TestCase):

  def _csv(self, text: str) -> str:
    folder = self.enterContext(tempfile.TemporaryDirectory())
    path = os.path.join(folder, 'lvlm.csv')
    with open(path, 'w', encoding='utf-8', newline='') as f:
      f.write(text)
    return path

  def test_multiline_values_are_fine(self):
    path = self._csv('asin,result\n1,"two\nlines"\n2,"one, line"\n')
    self.assertEqual(prepare._csv_keys(path, 'asin'), {'1', '2'})

  def test_unclosed_quote_named_with_file_and_line(self):
    # Row 3 would vanish into row 2's field without a check.
    path = self._csv('asin,result\n1,"ok"\n2,"unclosed\n3,"next"\n')
    with self.assertRaisesRegex(dataset_lib.DataError,
                                f'{path}:3: .*unclosed quote'):
      prepare._csv_keys(path, 'asin')
    path = self._csv('asin,result\n1,"ok"\n2,"unclosed\n3,next\n')
    with self.assertRaisesRegex(dataset_lib.DataError,
                                f'{path}:3: .*unclosed quote'):
      prepare._csv_keys(path, 'asin')
    path = self._csv('asin,result\n1,ok\n2,ok,extra\n')
    with self.assertRaisesRegex(dataset_lib.DataError,
                                f'{path}:3: expected 2 fields'):
      prepare._csv_keys(path, 'asin')


@pytest.mark.shared_data
class PrepareRealTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    if not os.path.isdir(os.path.join(SHARED_DATA, 'movielens-lvlm')):
      self.skipTest(f'{SHARED_DATA}/movielens-lvlm is absent (real data '
                    'lives outside the repository).')
    # The built-in datasets read their raw files under $MMJAX_SHARED_DATA.
    self.enterContext(mock.patch.dict(
        os.environ, {datasets.SHARED_DATA_ENV: SHARED_DATA}))

  def test_ml_lvlm_restriction_and_chrono_split(self):
    cfg = prepare.load_data_config('ml_lvlm')
    self.assertLen(cfg.restrict_items_csv, 12)
    ds, _ = prepare.build(cfg)
    steps = {s['step']: s for s in ds.manifest['steps']}
    self.assertEqual(steps['restrict_items']['allowed_items'], 2490)
    self.assertEqual(steps['restrict_items']['items_kept'], 2397)
    self.assertLessEqual(ds.num_items, 2397)
    # Chronological: no held-out interaction precedes a training one.
    order = np.lexsort((ds.timestamp, ds.user))
    u, t, s = ds.user[order], ds.timestamp[order], ds.split[order]
    train_max = np.full(ds.num_users, -np.inf)
    np.maximum.at(train_max, u[s == 0], t[s == 0])
    held_min = np.full(ds.num_users, np.inf)
    np.minimum.at(held_min, u[s != 0], t[s != 0])
    self.assertTrue((train_max <= held_min).all())

if __name__ == '__main__':
  absltest.main()
