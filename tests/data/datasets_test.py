"""Naming a dataset: built-in names, a data config file anywhere, inline data,
and where data is read and written (mmjax/data/datasets.py)."""

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

from absl.testing import absltest
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import datasets
from mmjax.data import prepare

# A fixed Elliot split: users u0-u3 train on 3 items each; u9 appears only in
# test (3 rows), so cold=drop removes those 3 of the 5 held-out rows.
TRAIN = [f'u{u}\ti{(u + k) % 6}\t5' for u in range(4) for k in range(3)]
TEST = ['u0\ti5\t5', 'u1\ti0\t5'] + [f'u9\ti{k}\t5' for k in range(3)]

DATA_CONFIG_FILE = textwrap.dedent("""\
    from mmjax.data import datasets


    def get_config(arg=None):
      config = datasets.base_config()
      config.format = 'elliot'
      config.path = %r
      config.split = 'fixed'
      config.cold = arg or 'drop'
      return config
    """)


def _no_mmjax_env() -> dict[str, str]:
  return {k: v for k, v in os.environ.items() if not k.startswith('MMJAX_')}


class DatasetsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = self.enterContext(tempfile.TemporaryDirectory())
    self.elliot = os.path.join(self.tmp, 'recipes')
    os.makedirs(self.elliot)
    for name, rows in (('train.tsv', TRAIN), ('test.tsv', TEST)):
      with open(os.path.join(self.elliot, name), 'w', encoding='utf-8') as f:
        f.write('\n'.join(rows) + '\n')
    self.root = os.path.join(self.tmp, 'data')

  def _section(self, **fields):
    section = datasets.training_section(fields.pop('name'))
    section.root = self.root
    for key, value in fields.items():
      section[key] = value
    return section

  def _file(self, name='mydata.py'):
    path = os.path.join(self.tmp, 'configs_elsewhere', name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
      f.write(DATA_CONFIG_FILE % self.elliot)
    return path

  def _quiet_ensure(self, section):
    with contextlib.redirect_stdout(io.StringIO()):
      return prepare.ensure_dataset(section)

  def test_builtin_names_and_variants(self):
    self.assertEqual(sorted(datasets.BUILTIN), ['ml100k', 'ml_lvlm',
                                                'synthetic'])
    cfg = datasets.load('synthetic:visual')
    self.assertEqual((cfg.name, cfg.synthetic.preset, cfg.split),
                     ('synthetic_visual', 'visual', 'random'))
    with self.assertRaisesRegex(datasets.UnknownDataset,
                                "'nope'.*ml100k, ml_lvlm, synthetic"):
      datasets.load('nope')
    with self.assertRaisesRegex(datasets.UnknownDataset, "variant 'bogus'"):
      datasets.load('synthetic:bogus')
    with self.assertRaisesRegex(datasets.UnknownDataset, 'no such data config'):
      datasets.load(os.path.join(self.tmp, 'absent.py'))

  def test_data_config_file_anywhere(self):
    path = self._file()
    out = self._quiet_ensure(self._section(name=path))
    cfg = datasets.load(path)
    # Named after the file; the same directory prepare() picks for it.
    self.assertEqual(cfg.name, 'mydata')
    cfg.root = self.root
    self.assertEqual(out, prepare.dataset_dir(cfg))
    self.assertStartsWith(os.path.basename(out), 'mydata-')
    ds = dataset_lib.load(out)
    # cold=drop: u9's 3 test rows are gone; u0's and u1's stay.
    self.assertEqual(np.bincount(ds.split, minlength=3).tolist(), [12, 0, 2])
    # ':arg' reaches get_config(arg): cold=keep keeps u9's rows.
    kept = dataset_lib.load(self._quiet_ensure(self._section(
        name=path + ':keep')))
    self.assertEqual(np.bincount(kept.split, minlength=3).tolist(),
                     [12, 0, 5])

  def test_file_with_a_misspelt_field_is_refused(self):
    path = self._file('typo.py')
    with open(path, 'a', encoding='utf-8') as f:
      f.write('\n\n_get = get_config\n\n\ndef get_config(arg=None):\n'
              '  c = _get(arg)\n  c.splt = "random"\n  return c\n')
    with self.assertRaisesRegex(dataset_lib.DataError,
                                f'{path}: unknown data config field.*splt'):
      datasets.load(path)

  def test_inline_data_is_the_same_dataset_as_its_file(self):
    inline = self._section(name='mydata', format='elliot', path=self.elliot,
                           split='fixed', cold='drop')
    from_file = self._section(name=self._file())
    self.assertEqual(self._quiet_ensure(inline),
                     self._quiet_ensure(from_file))
    # Inline fields replace a built-in's values; None keeps them.
    cfg = datasets.resolve_training_data(self._section(
        name='ml100k', implicit_threshold=3.0, ratios=(0.6, 0.2, 0.2)))
    self.assertEqual((cfg.format, cfg.implicit_threshold, cfg.ratios,
                      cfg.min_user), ('recbole', 3.0, (0.6, 0.2, 0.2), 5))

  def test_unknown_name_without_format_and_misspelt_override(self):
    with self.assertRaisesRegex(datasets.UnknownDataset,
                                "'recipes'.*inline with format and path"):
      datasets.resolve_training_data(self._section(name='recipes'))
    section = self._section(name='synthetic')
    section.overrides = {'synthetic': {'num_userz': 5}}
    with self.assertRaisesRegex(dataset_lib.DataError,
                                "no data config field 'num_userz'"):
      datasets.resolve_training_data(section)

  def test_data_root_and_shared_data_come_from_the_environment(self):
    with mock.patch.dict(os.environ, _no_mmjax_env(), clear=True):
      self.assertEqual(datasets.data_root(), os.path.abspath('data'))
      self.assertEqual(datasets.data_root('/x/y'), '/x/y')
      path = datasets.load('ml_lvlm').path
      self.assertEqual(path, '$MMJAX_SHARED_DATA/movielens-lvlm')
      with self.assertRaisesRegex(
          dataset_lib.DataError,
          r'\$MMJAX_SHARED_DATA/movielens-lvlm: data not found.*'
          'MMJAX_SHARED_DATA.*not set'):
        prepare.build(datasets.load('ml_lvlm'))
      os.environ['MMJAX_DATA'] = self.root
      os.environ['MMJAX_SHARED_DATA'] = '/raw'
      self.assertEqual(datasets.data_root(), self.root)
      self.assertEqual(datasets.resolve_training_data(
          datasets.training_section('ml100k')).root, self.root)
      self.assertEqual(datasets.load('ml100k').path, '/raw/ml-100k-recbole')

  def test_prepare_from_the_command_line_alone(self):
    # Inline fields only, from a working directory outside the checkout and
    # without MMJAX_DATA: the dataset goes to ./data, named after the path.
    proc = subprocess.run(
        [sys.executable, '-m', 'mmjax.data.prepare', '--config.format=elliot',
         f'--config.path={self.elliot}', '--config.split=fixed'],
        cwd=self.tmp, env=_no_mmjax_env(), capture_output=True, text=True,
        timeout=120)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    warning = [line for line in proc.stdout.splitlines()
               if line.startswith('WARNING: 3 valid/test interactions')]
    self.assertLen(warning, 1)
    inline = self._section(name='recipes', format='elliot', path=self.elliot,
                           split='fixed')
    inline.root = os.path.join(self.tmp, 'data')
    out = prepare.dataset_dir(datasets.resolve_training_data(inline))
    self.assertIn(f'dataset written to {out}', proc.stdout)
    # No dataset named at all: one line saying how to name one.
    proc = subprocess.run(
        [sys.executable, '-m', 'mmjax.data.prepare'], cwd=self.tmp,
        env=_no_mmjax_env(), capture_output=True, text=True, timeout=120)
    self.assertEqual(proc.returncode, 1)
    self.assertIn('error: no dataset: pass --config', proc.stderr)

  def test_a_field_outside_its_choices_is_named_before_reading(self):
    cfg = datasets.load(self._file())
    cfg.path = os.path.join(self.tmp, 'absent')  # Never read: checked first.
    for field, value in (('split', 'fixd'), ('cold', 'kep'),
                         ('format', 'eliot'), ('rounding', 'x')):
      bad = datasets.load(self._file())
      bad.path = cfg.path
      bad[field] = value
      with self.assertRaisesRegex(
          dataset_lib.DataError,
          f"dataset 'mydata': {field}='{value}': expected one of "):
        prepare.build(bad)
    # An option only the data can refuse: still a DataError naming it.
    cfg = datasets.load(self._file())
    cfg.split, cfg.ratios = 'random', (0.5, 0.1, 0.1)
    with self.assertRaisesRegex(dataset_lib.DataError,
                                "'mydata'.*ratios must be three"):
      prepare.build(cfg)

  def test_absolute_spec(self):
    # What launch records in config.json: the same file from any directory.
    with contextlib.chdir(self.tmp):
      spec = datasets.absolute_spec(os.path.join('elsewhere', 'my.py:keep'))
    self.assertEqual(spec, os.path.join(os.path.realpath(self.tmp),
                                        'elsewhere', 'my.py:keep'))
    self.assertEqual(datasets.absolute_spec('synthetic:visual'),
                     'synthetic:visual')
    self.assertEqual(datasets.absolute_spec('recipes'), 'recipes')

if __name__ == '__main__':
  absltest.main()
