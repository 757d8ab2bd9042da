"""Tests of `python -m mmjax.data.export`: round trips through our readers."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import export
from mmjax.data import prepare
from mmjax.data import readers
from mmjax.data import store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
SOURCES = {'textual': 'synthetic_text', 'visual': 'synthetic_visual'}


def _triples(user, item, split) -> list[tuple[int, int, int]]:
  return sorted(zip(np.asarray(user).astype(int).tolist(),
                    np.asarray(item).astype(int).tolist(),
                    np.asarray(split).astype(int).tolist()))


class ExportTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='mmjax_export_')
    cfg = prepare.load_data_config('synthetic')
    cfg.synthetic.num_users = 60
    cfg.synthetic.num_items = 40
    cfg.synthetic.interactions_per_user = 10
    cfg.synthetic.max_images = 0
    cfg.synthetic.feature_dim = 6
    cls.dataset_dir = prepare.prepare(cfg, os.path.join(cls.root, 'ds'),
                                      quiet=True)
    cls.ds = dataset_lib.load(cls.dataset_dir)
    cls.stored = {m: store.load(cls.dataset_dir, r).values
                  for m, r in SOURCES.items()}
    # A representation with a failed item: exported as its zero row.
    cls.partial = cls.stored['textual'].copy()
    cls.partial[0] = 0
    store.save(cls.dataset_dir, 'partial_text', cls.partial, {},
               cls.ds.item_ids, failed={0: 'no description'})

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _out(self) -> str:
    return os.path.join(self.enterContext(tempfile.TemporaryDirectory()),
                        'out')

  def test_mmrec_round_trip(self):
    out = self._out()
    record = export.export(self.dataset_dir, 'mmrec', out, SOURCES)
    self.assertCountEqual(os.listdir(out), [
        'out.inter', 'image_feat.npy', 'text_feat.npy', 'out.yaml',
        'export.json'])
    raw = readers.read_mmrec(out)
    ds = self.ds
    # Internal ids are written: the file's rows are the dataset's, in order.
    np.testing.assert_array_equal(raw.users.astype(int), ds.user)
    np.testing.assert_array_equal(raw.items.astype(int), ds.item)
    np.testing.assert_array_equal(raw.split, ds.split)
    np.testing.assert_array_equal(raw.timestamp, ds.timestamp)
    for modality, key in (('visual', 'image'), ('textual', 'text')):
      values, rows = raw.features[key]
      np.testing.assert_array_equal(rows, np.arange(ds.num_items).astype(str))
      np.testing.assert_array_equal(values, self.stored[modality])
    with open(os.path.join(out, 'export.json'), encoding='utf-8') as f:
      self.assertEqual(json.load(f)['features']['visual']['representation'],
                       'synthetic_visual')
    self.assertEqual(record['split_hash'], dataset_lib.split_hash(ds))
    with open(os.path.join(out, 'out.yaml'), encoding='utf-8') as f:
      self.assertIn("inter_file_name: 'out.inter'", f.read())

  def test_elliot_round_trip(self):
    out = self._out()
    export.export(self.dataset_dir, 'elliot', out, SOURCES)
    raw = readers.read_elliot(out)
    ds = self.ds
    self.assertEqual(_triples(raw.users, raw.items, raw.split),
                     _triples(ds.user, ds.item, ds.split))
    self.assertCountEqual(raw.features, ['textual', 'visual'])
    for modality, (values, rows) in raw.features.items():
      order = np.argsort(rows.astype(int))
      np.testing.assert_array_equal(rows.astype(int)[order],
                                    np.arange(ds.num_items))
      np.testing.assert_array_equal(values[order], self.stored[modality])

  def test_interactions_only(self):
    out = self._out()
    export.export(self.dataset_dir, 'mmrec', out, {}, name='plain')
    self.assertCountEqual(os.listdir(out),
                          ['plain.inter', 'plain.yaml', 'export.json'])
    self.assertLen(readers.read_mmrec(out), len(self.ds))

  def test_errors_leave_nothing_behind(self):
    out = self._out()
    with self.assertRaisesRegex(dataset_lib.DataError,
                                'no such dataset directory'):
      export.export(os.path.join(self.root, 'nope'), 'mmrec', out, SOURCES)
    with self.assertRaisesRegex(
        dataset_lib.DataError,
        r"no representation 'clip' \(stored: partial_text, synthetic_text, "
        r'synthetic_visual\)'):
      export.export(self.dataset_dir, 'mmrec', out, {'visual': 'clip'})
    with self.assertRaisesRegex(ValueError, 'must be one of mmrec, elliot'):
      export.export(self.dataset_dir, 'recbole', out, SOURCES)
    self.assertFalse(os.path.exists(out))
    self.assertFalse(os.path.exists(out + '.partial'))
    os.makedirs(out)
    with open(os.path.join(out, 'mine.txt'), 'w') as f:
      f.write('keep me')
    with self.assertRaisesRegex(ValueError, 'exists and is not empty'):
      export.export(self.dataset_dir, 'mmrec', out, SOURCES)
    self.assertEqual(os.listdir(out), ['mine.txt'])

  def test_parse_features(self):
    self.assertEqual(export.parse_features('textual=a, visual=b'),
                     {'textual': 'a', 'visual': 'b'})
    self.assertEqual(export.parse_features(None), {})
    for bad in ('textual', 'textual=', 'a=x,a=y'):
      with self.assertRaises(ValueError):
        export.parse_features(bad)

  def test_cli(self):
    out = self._out()
    cmd = [sys.executable, '-m', 'mmjax.data.export', '--dataset_dir',
           self.dataset_dir, '--format', 'mmrec']
    proc = subprocess.run(
        cmd + ['--out', out, '--features',
               'textual=partial_text,visual=synthetic_visual'],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn(f'{len(self.ds.item_ids)} items', proc.stdout)
    self.assertIn('textual: partial_text (dim 6, 1 items without a feature',
                  proc.stdout)
    np.testing.assert_array_equal(np.load(os.path.join(out, 'text_feat.npy')),
                                  self.partial)
    # Errors are one line on stderr, exit 1.
    proc = subprocess.run(
        cmd + ['--out', out + '2', '--features', 'visual=clip'], cwd=REPO,
        capture_output=True, text=True, timeout=120)
    self.assertEqual(proc.returncode, 1)
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1)
    self.assertIn("no representation 'clip' (stored: partial_text,", lines[0])
    self.assertFalse(os.path.exists(out + '2'))


if __name__ == '__main__':
  absltest.main()
