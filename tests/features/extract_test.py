"""Tests for the extraction CLI: shards, resume, --shard i/n, merge, store."""

import io
import json
import os
import shutil
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.features import base
from mmjax.features import extract
from mmjax.features import keywords
from tests.testing import extraction
from tests.testing import fixtures

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


class _Interrupt(Exception):
  pass


class TitleStatsExtractor(base.Extractor):
  """A real, trivial extractor: [len(title), word count] plus extra text.

  It exercises what the neural extractors share with it: per-item failures
  (titles containing 'Heat' fail; the titles in `spec.unparsed` fail as an
  unparsed LVLM answer does; `spec.fail_all` fails every item), `extra`
  outputs (the upper-cased title, as an LVLM stores its generated text) and
  lookup by dotted module path.
  """

  def __init__(self, spec):
    self.name = spec.name
    self.scale = float(spec.get('scale', 1.0))
    self.unparsed = tuple(spec.get('unparsed', ()))
    self.fail_all = bool(spec.get('fail_all', False))
    # Normalise titles as the keyword pipeline does (lemmatised with
    # simplemma, an extraction extra), so a missing extra can be shown.
    self.normalize = bool(spec.get('normalize', False))

  def manifest(self):
    return {'extractor': 'title_stats'}

  def extract(self, batch):
    if self.normalize:
      for row in batch.rows:
        keywords.normalize(row['title'])
    values = np.zeros((len(batch), 2), np.float32)
    failed = {}
    for k, (it, row) in enumerate(zip(batch.items, batch.rows)):
      if 'Heat' in row['title'] or self.fail_all:
        failed[int(it)] = 'no parsable answer'
      elif row['title'] in self.unparsed:
        failed[int(it)] = 'unparsed LVLM answer: too few slots'
      else:
        values[k] = [len(row['title']) * self.scale,
                     len(row['title'].split())]
    if self.fail_all:
      return base.BatchResult(np.zeros((len(batch), 0), np.float32), failed)
    upper = [row['title'].upper() for row in batch.rows]
    return base.BatchResult(values, failed, {'generated_text': upper})


def make_extractor(spec, ds):
  del ds
  return TitleStatsExtractor(spec)


class ExtractTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = fixtures.new_tempdir(self)
    self.ds = extraction.make_dataset(self.dir)

  def _load(self, name, directory=None):
    return store.load(directory or self.dir, name)

  def test_stores_every_representation_with_manifest(self):
    outcomes = extract.run(extraction.weightfree_config(self.dir))
    self.assertEqual([o.status for o in outcomes], ['stored', 'stored'])
    self.assertEqual([len(o.computed_shards) for o in outcomes], [4, 4])
    hist = self._load('hist')
    self.assertEqual(hist.values.shape, (13, 64))
    np.testing.assert_allclose(hist.values.sum(1), 1.0, rtol=1e-6)
    self.assertTrue(hist.mask.all())
    m = hist.manifest
    self.assertEqual(m['extractor'], 'weightfree.color_histogram')
    self.assertEqual(m['item_map_hash'],
                     dataset_lib.item_map_hash(self.ds.item_ids))
    self.assertEqual(m['spec']['bins'], 4)
    # Partials are removed after the merge.
    self.assertFalse(os.path.exists(
        os.path.join(self.dir, 'features', extract.PARTIAL_DIR, 'hist')))
    # A second run finds the representation stored for the same spec.
    again = extract.run(extraction.weightfree_config(self.dir))
    self.assertEqual([o.status for o in again], ['skipped', 'skipped'])

  def test_features_copied_from_another_dataset_are_extracted_again(self):
    # Two datasets with the same item map (m0..m12) but different sources:
    # features copied from one into the other would be refused at load, so
    # extraction must redo them instead of skipping them as stored.
    other = os.path.join(self.dir, 'other')
    os.makedirs(other)
    extraction.make_dataset(other)
    for root, source in ((self.dir, 'tiny:first'), (other, 'tiny:second')):
      path = os.path.join(root, dataset_lib.MANIFEST)
      with open(path, encoding='utf-8') as f:
        manifest = json.load(f)
      manifest['source'] = source
      with open(path, 'w', encoding='utf-8') as f:
        json.dump(manifest, f)
    extract.run(extraction.weightfree_config(self.dir))
    shutil.copytree(os.path.join(self.dir, 'features'),
                    os.path.join(other, 'features'))
    with self.assertRaisesRegex(dataset_lib.DataError, 'extracted for'):
      self._load('hist', other)
    again = extract.run(extraction.weightfree_config(other))
    self.assertEqual([o.status for o in again], ['stored', 'stored'])
    self.assertEqual(self._load('hist', other).manifest['dataset']['source'],
                     'tiny:second')

  def test_interrupted_run_resumes_without_recomputing(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'hist'
    seen = []

    def stop_after_two(name, k):
      seen.append((name, k))
      if len(seen) == 2:
        raise _Interrupt()

    with self.assertRaises(_Interrupt):
      extract.run(cfg, on_shard=stop_after_two)
    self.assertEqual(seen, [('hist', 0), ('hist', 1)])
    resumed = []
    (outcome,) = extract.run(cfg, on_shard=lambda n, k: resumed.append(k))
    self.assertEqual(resumed, [2, 3])  # Shards 0 and 1 are not recomputed.
    self.assertEqual(outcome.status, 'stored')
    ref_dir = fixtures.new_tempdir(self)
    extraction.make_dataset(ref_dir)
    ref_cfg = extraction.weightfree_config(ref_dir)
    ref_cfg.only = 'hist'
    extract.run(ref_cfg)
    a, b = self._load('hist'), self._load('hist', ref_dir)
    np.testing.assert_array_equal(a.values, b.values)
    with open(os.path.join(self.dir, 'features', 'hist.npy'), 'rb') as f1, \
        open(os.path.join(ref_dir, 'features', 'hist.npy'), 'rb') as f2:
      self.assertEqual(f1.read(), f2.read())

  def test_shard_split_then_merge_equals_single_run(self):
    cfg = extraction.weightfree_config(self.dir)
    o0 = extract.run(cfg, shard=(0, 2))
    self.assertEqual([o.status for o in o0], ['pending', 'pending'])
    self.assertEqual(o0[0].computed_shards, [0, 2])
    for o in extract.run(cfg, merge=True):
      self.assertEqual(o.status, 'failed')
      self.assertIn('shards missing', o.error)
    o1 = extract.run(cfg, shard=(1, 2))
    # The second process finds every shard complete and merges.
    self.assertEqual([o.status for o in o1], ['stored', 'stored'])
    self.assertEqual(o1[0].computed_shards, [1, 3])
    ref_dir = fixtures.new_tempdir(self)
    extraction.make_dataset(ref_dir)
    extract.run(extraction.weightfree_config(ref_dir, shard_size=100,
                                             batch_size=13))
    for name in ('hist', 'tfidf'):
      np.testing.assert_allclose(self._load(name).values,
                                 self._load(name, ref_dir).values, atol=1e-7)

  def test_merge_lock_lets_one_process_merge(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'hist'
    extract.run(cfg, shard=(0, 2))
    # Another process is merging (its lock exists) when shard 1/2 finishes:
    # this one leaves the representation pending instead of racing it.
    lock = os.path.join(self.dir, 'features', extract.PARTIAL_DIR, 'hist',
                        extract.MERGE_LOCK)
    os.mkdir(lock)
    (o,) = extract.run(cfg, shard=(1, 2))
    self.assertEqual((o.status, o.computed_shards), ('pending', [1, 3]))
    self.assertNotIn('hist', store.list_features(self.dir))
    # That process died: an explicit --merge takes over its lock.
    (o,) = extract.run(cfg, merge=True)
    self.assertEqual(o.status, 'stored')
    m = self._load('hist').manifest
    self.assertGreater(m['compute_seconds'], 0.0)
    self.assertFalse(os.path.exists(lock))

  def _finished_shards_no_merge(self, cfg):
    """Writes every shard of cfg's one representation; the merge never runs."""

    def die_after_last_shard(name, k):
      del name
      if k == 3:
        raise _Interrupt()

    with self.assertRaises(_Interrupt):
      extract.run(cfg, on_shard=die_after_last_shard)
    partial = os.path.join(self.dir, 'features', extract.PARTIAL_DIR,
                           cfg.only)
    return partial, os.path.join(partial, extract.MERGE_LOCK)

  def _leave_lock(self, lock, **owner_changes):
    """Writes the lock a merging process leaves behind, with its owner."""
    os.makedirs(lock, exist_ok=True)
    owner = extract.lock_owner()
    owner.update(owner_changes)
    with open(os.path.join(lock, extract.OWNER_FILE), 'w') as f:
      json.dump(owner, f)

  def test_restart_finishes_a_merge_killed_midway(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'hist'
    partial, lock = self._finished_shards_no_merge(cfg)
    # Killed while merging: its lock stays, naming a process that is gone.
    gone = subprocess.Popen(['true'])
    gone.wait()
    self._leave_lock(lock, pid=gone.pid, start='12345')
    (o,) = extract.run(cfg)  # A plain restart, no --merge.
    self.assertEqual((o.status, o.computed_shards), ('stored', []))
    self.assertFalse(os.path.exists(partial))
    ref_dir = fixtures.new_tempdir(self)
    extraction.make_dataset(ref_dir)
    ref_cfg = extraction.weightfree_config(ref_dir)
    ref_cfg.only = 'hist'
    extract.run(ref_cfg)
    with open(os.path.join(self.dir, 'features', 'hist.npy'), 'rb') as f1, \
        open(os.path.join(ref_dir, 'features', 'hist.npy'), 'rb') as f2:
      self.assertEqual(f1.read(), f2.read())
    m, ref = self._load('hist').manifest, self._load('hist', ref_dir).manifest
    for key in ('time', 'compute_seconds'):
      del m[key], ref[key]
    del m['spec']['dataset_dir'], ref['spec']['dataset_dir']
    self.assertEqual(m, ref)

  def test_restart_cleans_up_a_merge_killed_after_saving(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'hist'
    extract.run(cfg)
    # Killed between store.save and removing its shards: they and the lock
    # of the dead process are left beside the stored representation.
    partial = os.path.join(self.dir, 'features', extract.PARTIAL_DIR, 'hist')
    os.makedirs(partial)
    self._leave_lock(os.path.join(partial, extract.MERGE_LOCK), start='0')
    (o,) = extract.run(cfg)
    self.assertEqual(o.status, 'skipped')
    self.assertFalse(os.path.exists(partial))

  def test_lock_of_a_live_reused_or_foreign_owner(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'hist'
    _, lock = self._finished_shards_no_merge(cfg)
    # This very process holds it: alive, so the merge is left to it.
    self._leave_lock(lock)
    (o,) = extract.run(cfg)
    self.assertEqual(o.status, 'pending')
    self.assertIn(f'pid {os.getpid()} on host', o.note)
    # Held on another host: cannot be checked from here. The CLI names the
    # command that finishes it and exits non-zero.
    self._leave_lock(lock, host='elsewhere.example')
    out = io.StringIO()
    argv = ['extract.py', '--config', 'c.py', '--shard', '1/2',
            '--config.only=x']
    self.assertEqual(extract.cli(cfg, argv=argv, out=out), 1)
    text = out.getvalue()
    self.assertIn('LOCKED hist:', text)
    self.assertIn('elsewhere.example', text)
    self.assertIn('python -m mmjax.features.extract --config c.py --merge '
                  '--config.only=hist', text)
    self.assertNotIn('hist', store.list_features(self.dir))
    # Our pid, but a process started at another time (the pid was reused):
    # the owner is gone and a plain restart merges.
    self.assertIsNotNone(extract._process_start(os.getpid()))
    self._leave_lock(lock, start='0')
    (o,) = extract.run(cfg)
    self.assertEqual(o.status, 'stored')
    self.assertFalse(os.path.exists(lock))

  def test_stored_line_counts_failed_and_unparsed_items(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.representations = ml_collections.ConfigDict({
        'hist': cfg.representations.hist,
        'stats': {'extractor': 'tests.features.extract_test',
                  'unparsed': ['Sabrina', 'Balto']}})
    out = io.StringIO()
    self.assertEqual(extract.cli(cfg, argv=['x'], out=out), 0)
    features = os.path.join(self.dir, 'features')
    # 'Heat' fails, 'Sabrina' and 'Balto' are unparsed: 10 of 13 stored.
    self.assertEqual(out.getvalue().splitlines(), [
        f'stored all 13 items of hist: {features}/hist.npy',
        'stored 10 of 13 items of stats (1 failed, 2 unparsed: see '
        f'{features}/stats.json)'])
    self.assertEqual(self._load('stats').manifest['num_failed'], 3)

  def test_one_failing_representation_does_not_stop_the_others(self):
    cfg = extraction.weightfree_config(self.dir)
    # 'dead' runs first (alphabetical order) and fails every item.
    cfg.representations.dead = {'extractor': 'tests.features.extract_test',
                                'fail_all': True}
    out = io.StringIO()
    self.assertEqual(extract.cli(cfg, argv=['x'], out=out), 1)
    lines = out.getvalue().splitlines()
    self.assertTrue(lines[0].startswith(
        'FAILED dead: every item failed, nothing to store (no parsable '
        'answer: 13; shards removed'), lines[0])
    self.assertTrue(lines[1].startswith('stored all 13 items of hist'))
    self.assertTrue(lines[2].startswith('stored all 13 items of tfidf'))
    self.assertEqual(lines[3], '1 of 3 representations not stored (the '
                     'others were extracted):')
    self.assertEqual(lines[4].split(), ['representation', 'status', 'reason'])
    self.assertEqual(lines[5].split()[:4], ['dead', 'failed', 'every', 'item'])
    self.assertTrue(lines[6].startswith('Fix these and run the same command'))
    self.assertLen(lines, 7)
    self.assertEqual(store.list_features(self.dir), ['hist', 'tfidf'])
    # Its failed shards were removed, so the fixed spec runs, not refused
    # for partials of another configuration.
    cfg.representations.dead.fail_all = False
    out = io.StringIO()
    self.assertEqual(extract.cli(cfg, argv=['x'], out=out), 0)
    self.assertEqual(out.getvalue().splitlines()[1:],
                     ['skipped hist: already stored for this spec',
                      'skipped tfidf: already stored for this spec'])

  def test_explicit_merge_joins_complete_shards(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'tfidf'

    def die_after_last_shard(name, k):
      del name
      if k == 3:
        raise _Interrupt()  # Every shard written, the merge never ran.

    with self.assertRaises(_Interrupt):
      extract.run(cfg, on_shard=die_after_last_shard)
    self.assertNotIn('tfidf', store.list_features(self.dir))
    (outcome,) = extract.run(cfg, merge=True)
    self.assertEqual((outcome.status, outcome.computed_shards), ('stored', []))
    f = self._load('tfidf')
    np.testing.assert_allclose(np.linalg.norm(f.values, axis=1), 1.0,
                               rtol=1e-6)
    # Once stored for this spec, later runs (merge or not) skip it.
    (again,) = extract.run(cfg, merge=True)
    self.assertEqual(again.status, 'skipped')

  def test_partials_of_another_spec_refused(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'hist'
    extract.run(cfg, shard=(0, 2))
    cfg.representations.hist.bins = 5
    (o,) = extract.run(cfg, shard=(1, 2))
    self.assertEqual(o.status, 'failed')
    self.assertIn('another configuration', o.error)
    with self.assertRaisesRegex(ValueError, 'another configuration'):
      extract.run(cfg, shard=(1, 2), keep_going=False)
    cfg.overwrite = True
    extract.run(cfg)
    self.assertEqual(self._load('hist').values.shape, (13, 125))

  def test_failed_items_are_masked_and_reasoned(self):
    os.remove(os.path.join(self.dir, 'images', 'm3.png'))
    with open(os.path.join(self.dir, 'images', 'm5.png'), 'wb') as f:
      f.write(b'not a png at all')
    extract.run(extraction.weightfree_config(self.dir))
    hist = self._load('hist')
    self.assertEqual(np.flatnonzero(~hist.mask).tolist(), [3, 5])
    np.testing.assert_array_equal(hist.values[[3, 5]], 0.0)
    self.assertIn('missing', hist.manifest['failed']['3'])
    self.assertIn('unreadable', hist.manifest['failed']['5'])
    self.assertEqual(hist.manifest['num_failed'], 2)
    self.assertTrue(np.all(hist.values[hist.mask].sum(1) > 0.99))

  def test_extra_outputs_and_dotted_extractor_path(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.representations = ml_collections.ConfigDict(
        {'stats': {'extractor': 'tests.features.extract_test'}})
    extract.run(cfg)
    f = self._load('stats')
    self.assertEqual(f.manifest['extractor'], 'title_stats')
    np.testing.assert_array_equal(f.values[0], [9, 2])  # 'Toy Story'.
    self.assertEqual(f.manifest['failed'], {'5': 'no parsable answer'})
    self.assertEqual(f.manifest['extra_files'], ['stats.generated_text.jsonl'])
    with open(os.path.join(self.dir, 'features',
                           'stats.generated_text.jsonl')) as fh:
      lines = [json.loads(x) for x in fh]
    self.assertLen(lines, 13)  # Failed items keep their text too.
    self.assertEqual(lines[5], {'item': 5, 'raw_id': 'm5',
                                'generated_text': 'HEAT'})
    self.assertEqual([x['item'] for x in lines], list(range(13)))

  def test_cli_user_errors_are_one_line(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'hist,histo'
    err = io.StringIO()
    with mock.patch.object(sys, 'stderr', err):
      self.assertEqual(extract.cli(cfg, out=io.StringIO()), 1)
    self.assertEqual(err.getvalue().count('\n'), 1)
    self.assertIn("unknown representations ['histo']", err.getvalue())
    # An extra that is not installed (simplemma hidden from the import
    # system) names the make target instead of a traceback.
    cfg = extraction.weightfree_config(self.dir)
    cfg.representations = ml_collections.ConfigDict(
        {'stats': {'extractor': 'tests.features.extract_test',
                   'normalize': True}})
    out = io.StringIO()
    with mock.patch.dict(sys.modules, {'simplemma': None}):
      self.assertEqual(extract.cli(cfg, out=out), 1)
    self.assertIn(
        '`simplemma` is not installed: it is part of the extraction extras; '
        'install them with `make install-extract`.', out.getvalue())
    self.assertNotIn('Traceback', out.getvalue())

  def test_unknown_extractor(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.representations = ml_collections.ConfigDict(
        {'x': {'extractor': 'no_such_thing'}})
    with self.assertRaisesRegex(ValueError, 'unknown extractor'):
      extract.run(cfg)

  def test_float16_store(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.store_dtype = 'float16'
    extract.run(cfg)
    f16 = store.load(self.dir, 'hist', keep_dtype=True)
    self.assertEqual(f16.values.dtype, np.float16)
    self.assertEqual(f16.manifest['dtype'], 'float16')
    # Asking for float32 again re-extracts instead of skipping.
    cfg.store_dtype = 'float32'
    self.assertEqual([o.status for o in extract.run(cfg)], ['stored'] * 2)
    f32 = store.load(self.dir, 'hist', keep_dtype=True)
    self.assertEqual(f32.values.dtype, np.float32)
    np.testing.assert_allclose(f32.values, f16.values, rtol=1e-3, atol=1e-4)

  def test_float16_overflow_is_an_error_that_keeps_the_shards(self):
    cfg = extraction.weightfree_config(self.dir)
    cfg.store_dtype = 'float16'
    cfg.representations = ml_collections.ConfigDict({'big': {
        'extractor': 'tests.features.extract_test', 'scale': 1e4}})
    (o,) = extract.run(cfg)
    self.assertEqual(o.status, 'failed')
    self.assertIn('beyond float16 range', o.error)
    self.assertEqual(store.list_features(self.dir), [])
    # The finished shards are merged as float32 without recomputing.
    cfg.store_dtype = 'float32'
    computed = []
    (o,) = extract.run(cfg, on_shard=lambda n, k: computed.append(k))
    self.assertEqual((o.status, computed), ('stored', []))
    f = store.load(self.dir, 'big')
    self.assertEqual(f.values[0, 0], len(extraction.TITLES[0]) * 1e4)

  def test_duplicate_item_ids_refused(self):
    ds = dataset_lib.load(self.dir)
    ds.item_ids = ds.item_ids.copy()
    ds.item_ids[4] = ds.item_ids[2]
    dataset_lib.save(ds, self.dir)
    with self.assertRaisesRegex(dataset_lib.DataError, 'more than once'):
      extract.run(extraction.weightfree_config(self.dir))

  def test_csv_column_joined_into_rows(self):
    csv_path = os.path.join(self.dir, 'out.csv')
    with open(csv_path, 'wb') as f:
      f.write(b'asin,result\n')
      f.write(b'm0,"[Genre] {Comedy},\nsecond line"\n')
      f.write(b'm1,Dark horror poster\n')
      f.write(b'm2,bad \xff\xfe bytes\n')
      f.write(b'zz,not in the dataset\n')
      for i in range(3, 13):
        if i != 7:
          f.write(f'm{i},plain text number {i} poster\n'.encode())
    cfg = extraction.weightfree_config(self.dir)
    cfg.only = 'lvlm_tfidf'
    cfg.representations.lvlm_tfidf = {
        'extractor': 'weightfree', 'method': 'tfidf', 'fields': ['lvlm'],
        'csv': {'path': csv_path, 'key': 'asin', 'column': 'result',
                'field': 'lvlm'}}
    extract.run(cfg)
    f = self._load('lvlm_tfidf')
    self.assertEqual(sorted(f.manifest['failed']), ['2', '7'])
    self.assertIn('UTF-8', f.manifest['failed']['2'])
    self.assertIn('not in out.csv', f.manifest['failed']['7'])
    self.assertEqual(f.manifest['csv_counts'],
                     {'rows': 13, 'not_in_dataset': 1, 'duplicate_rows': 0})
    vocab_has_second = f.values[0].any()
    self.assertTrue(vocab_has_second)
    self.assertLen(f.manifest['csv_sha256'], 64)
    # Same spec, same CSV: skipped. The CSV edited (item 7 added): stale,
    # so it is extracted again rather than skipped.
    self.assertEqual(extract.run(cfg)[0].status, 'skipped')
    with open(csv_path, 'ab') as fh:
      fh.write(b'm7,a late answer poster\n')
    self.assertEqual(extract.run(cfg)[0].status, 'stored')
    self.assertEqual(sorted(self._load('lvlm_tfidf').manifest['failed']),
                     ['2'])

  def test_cli_and_no_torch_on_weightfree_path(self):
    config_path = os.path.join(_ROOT, 'configs', 'features', 'weightfree.py')
    code = (
        'import sys\n'
        'sys.argv = ["extract", "--config", %r, "--config.dataset_dir", %r,'
        ' "--config.shard_size", "5", "--config.quiet", "True"]\n'
        'import mmjax.features\n'
        'from mmjax.features import extract\n'
        'from absl import app\n'
        'try:\n'
        '  app.run(extract.main)\n'
        'except SystemExit:\n'
        '  pass\n'
        # Every module imports without torch: only building a neural
        # extractor loads it.
        'import importlib, pkgutil\n'
        'for m in pkgutil.iter_modules(mmjax.features.__path__):\n'
        '  importlib.import_module("mmjax.features." + m.name)\n'
        'import mmjax.data.store\n'
        'assert "torch" not in sys.modules, "torch was imported"\n'
        'assert "transformers" not in sys.modules\n'
        'print("NO_TORCH_OK")\n' % (config_path, self.dir))
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, cwd=_ROOT, env=env, timeout=300)
    self.assertIn('NO_TORCH_OK', proc.stdout, proc.stderr[-2000:])
    names = store.list_features(self.dir)
    for name in ('image_color_hist', 'image_pixels', 'text_tfidf'):
      self.assertIn(name, names)
    with open(os.path.join(self.dir, 'features', 'text_tfidf.json')) as f:
      self.assertTrue(json.load(f)['weight_free'])


class CheckResultTest(absltest.TestCase):

  def test_contract_violations_are_caught(self):
    batch = base.ItemBatch(np.array([4, 5], np.int32), np.array(['a', 'b']),
                           [{}, {}], [None, None])
    ok = np.ones((2, 3), np.float32)
    base.check_result(base.BatchResult(ok), batch, 'x')
    nan = ok.copy()
    nan[1, 0] = np.nan
    with self.assertRaisesRegex(ValueError, 'NaN or inf for items \\[5\\]'):
      base.check_result(base.BatchResult(nan), batch, 'x')
    # A NaN row is fine when the item is marked failed (it is zeroed later).
    base.check_result(base.BatchResult(nan, {5: 'bad'}), batch, 'x')
    with self.assertRaisesRegex(ValueError, 'float32'):
      base.check_result(base.BatchResult(ok.astype(np.float64)), batch, 'x')
    with self.assertRaisesRegex(ValueError, 'not in the batch'):
      base.check_result(base.BatchResult(ok, {9: 'x'}), batch, 'x')
    with self.assertRaisesRegex(ValueError, r'\[b, 0\]'):
      base.check_result(base.BatchResult(np.zeros((2, 0), np.float32),
                                         {4: 'x'}), batch, 'x')
    with self.assertRaisesRegex(ValueError, 'extra'):
      base.check_result(base.BatchResult(ok, {}, {'t': ['a']}), batch, 'x')


class BatchHelpersTest(absltest.TestCase):

  def _batch(self, rows):
    n = len(rows)
    return base.ItemBatch(np.arange(10, 10 + n, dtype=np.int32),
                          np.array([f'm{i}' for i in range(n)]), rows,
                          [None] * n)

  def test_scatter_result_places_rows_and_fails_non_finite(self):
    batch = self._batch([{}] * 4)
    enc = np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, np.inf]], np.float32)
    r = base.scatter_result(batch, [0, 2, 3], enc, {11: 'no image'},
                            {'t': list('abcd')})
    base.check_result(r, batch, 'test')
    np.testing.assert_array_equal(r.values, [[1, 2], [0, 0], [0, 0], [0, 0]])
    self.assertEqual(r.failed[11], 'no image')
    self.assertIn('non-finite', r.failed[12])
    self.assertIn('non-finite', r.failed[13])
    self.assertEqual(r.extra, {'t': list('abcd')})
    empty = base.scatter_result(batch, [], None,
                                {i: 'x' for i in range(10, 14)})
    self.assertEqual(empty.values.shape, (4, 0))
    base.check_result(empty, batch, 'test')

  def test_batch_texts_keeps_the_first_reason(self):
    batch = self._batch([{'title': 'Heat', 'genres': 'Action|Crime'},
                         {'title': '  ', 'genres': None},
                         {'title': '', 'genres': ''}])
    texts, failed = base.batch_texts(batch, ['title', 'genres'],
                                     failed={12: 'image file missing'})
    self.assertEqual(texts, ['Heat. Action, Crime', '', ''])
    self.assertEqual(failed, {11: "empty text in fields ['title', 'genres']",
                              12: 'image file missing'})


class ParseShardTest(absltest.TestCase):

  def test_parse(self):
    self.assertEqual(extract.parse_shard('1/3'), (1, 3))
    self.assertEqual(extract.parse_shard(None), (0, 1))
    for bad in ('3/3', 'x', '1/0', '-1/2'):
      with self.assertRaises(ValueError):
        extract.parse_shard(bad)


if __name__ == '__main__':
  absltest.main()
