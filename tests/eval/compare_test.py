"""Run comparison: paired tests, Holm correction, bootstrap, hash refusal."""

import copy
import json
import os
import subprocess
import sys
import tempfile

from absl.testing import absltest
import numpy as np

from mmjax.eval import compare
from mmjax.eval import ranking

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def write_run(root, name, users, values, split_hash='abc', split='test',
              config=None):
  os.makedirs(os.path.join(root, name), exist_ok=True)
  if config is not None:
    with open(os.path.join(root, name, 'config.json'), 'w') as f:
      json.dump(config, f)
  result = ranking.EvalResult(
      per_user={k: np.asarray(v, np.float64) for k, v in values.items()},
      users=np.asarray(users, np.int32), summary={},
      top_items=np.zeros((len(users), 1), np.int32))
  ranking.save_per_user(
      result, os.path.join(root, name, f'per_user_{split}.npz'),
      split_hash=split_hash, split=split, name=name)
  return os.path.join(root, name)


class HolmTest(absltest.TestCase):

  def test_hand_computed(self):
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> 0.06
    # (monotone).
    np.testing.assert_allclose(
        compare.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # Capped at 1; NaN stays NaN and is not counted.
    np.testing.assert_allclose(
        compare.holm([0.6, np.nan, 0.2]), [0.6, np.nan, 0.4])
    np.testing.assert_allclose(compare.holm([0.7, 0.9]), [1.0, 1.0])


class CompareTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.n = 400
    self.users = rng.permutation(self.n)
    self.base = rng.uniform(size=self.n)

  def test_planted_difference_is_detected(self):
    rng = np.random.default_rng(1)
    better = self.base + 0.05 + rng.normal(0, 0.05, self.n)
    # The run lists its users in another order: compare aligns them.
    order = rng.permutation(self.n)
    rows = compare.compare(
        {'base': (self.users, self.base),
         'better': (self.users[order], better[order])},
        metric='recall@20', num_boot=2000)
    (row,) = rows
    self.assertEqual((row['a'], row['b'], row['n']), ('base', 'better', 400))
    self.assertLess(row['p_ttest_holm'], 1e-6)
    self.assertLess(row['p_wilcoxon_holm'], 1e-6)
    self.assertBetween(row['diff'], 0.04, 0.06)
    self.assertLess(row['ci_low'], row['diff'])
    self.assertGreater(row['ci_high'], row['diff'])
    self.assertGreater(row['ci_low'], 0.0)
    self.assertGreater(row['cohen_d'], 0.5)

  def test_no_difference_is_not_detected(self):
    rng = np.random.default_rng(2)
    same = self.base + rng.normal(0, 0.05, self.n)
    same -= same.mean() - self.base.mean()  # Equal means exactly.
    (row,) = compare.compare({'a': (self.users, self.base),
                              'b': (self.users, same)}, num_boot=2000)
    self.assertGreater(row['p_ttest'], 0.5)
    self.assertGreater(row['p_wilcoxon'], 0.05)
    self.assertLess(row['ci_low'], 0.0)
    self.assertGreater(row['ci_high'], 0.0)
    (row,) = compare.compare({'a': (self.users, self.base),
                              'b': (self.users, self.base)})
    self.assertEqual((row['p_ttest'], row['p_wilcoxon'], row['cohen_d']),
                     (1.0, 1.0, 0.0))

  def test_effect_size_and_seeded_bootstrap(self):
    users = np.arange(3)
    a = np.zeros(3)
    results = {'a': (users, a), 'b': (users, a + [1.0, 2.0, 3.0])}
    (row,) = compare.compare(results, num_boot=500, seed=3)
    self.assertAlmostEqual(row['cohen_d'], 2.0)  # mean 2 / sd 1.
    (again,) = compare.compare(results, num_boot=500, seed=3)
    self.assertEqual((row['ci_low'], row['ci_high']),
                     (again['ci_low'], again['ci_high']))
    self.assertBetween(row['ci_low'], 1.0, 2.0)

  def test_holm_across_table_and_all_pairs(self):
    rng = np.random.default_rng(4)
    results = {f'r{j}': (self.users, self.base + rng.normal(0.01 * j, 0.1,
                                                            self.n))
               for j in range(4)}
    rows = compare.compare(results, all_pairs=True, num_boot=200)
    self.assertLen(rows, 6)
    np.testing.assert_allclose([r['p_ttest_holm'] for r in rows],
                               compare.holm([r['p_ttest'] for r in rows]))
    self.assertLen(compare.compare(results, num_boot=200), 3)

  def test_refuses_different_users(self):
    with self.assertRaisesRegex(ValueError, 'different users'):
      compare.compare({'a': (self.users, self.base),
                       'b': (self.users[:-1], self.base[:-1])})


class RunFilesTest(absltest.TestCase):

  def test_refuses_mismatched_hashes(self):
    with tempfile.TemporaryDirectory() as tmp:
      users, v = np.arange(5), {'recall@20': np.ones(5)}
      a = write_run(tmp, 'a', users, v, split_hash='h1')
      b = write_run(tmp, 'b', users, v, split_hash='h2')
      with self.assertRaisesRegex(compare.HashMismatchError, "'a' and 'b'"):
        compare.load_runs([a, b], 'test')
      with self.assertRaisesRegex(FileNotFoundError, 'per_user_val'):
        compare.load_runs([a, b], 'valid')
      # The training loop names the validation file per_user_val.npz.
      c = write_run(tmp, 'c', users, v, split='val')
      d = write_run(tmp, 'd', users, v, split='valid')
      self.assertLen(compare.load_runs([c, d], 'val'), 2)

  def test_cli_prints_table(self):
    rng = np.random.default_rng(5)
    users = np.arange(200)
    base = rng.uniform(size=200)
    with tempfile.TemporaryDirectory() as tmp:
      runs = [
          write_run(tmp, 'mostpop', users,
                    {'recall@20': base, 'ndcg@20': base / 2}),
          write_run(tmp, 'lightgcn', users,
                    {'recall@20': base + 0.1, 'ndcg@20': base / 2 + 0.05}),
      ]
      bad = write_run(tmp, 'other', users, {'recall@20': base},
                      split_hash='zzz')
      cmd = [sys.executable, '-m', 'mmjax.eval.compare', *runs,
             '--metric=recall@20,ndcg@20', '--num_boot=200']
      out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout
      self.assertIn('lightgcn', out)
      self.assertIn('recall@20', out)
      self.assertIn('ndcg@20', out)
      self.assertIn('+0.1000', out)
      proc = subprocess.run(cmd[:4] + [bad], cwd=ROOT, capture_output=True,
                            text=True)
      self.assertNotEqual(proc.returncode, 0)
      self.assertIn('different datasets or splits', proc.stderr)


# The shape of a training config.json (mmjax/train/defaults.py), cut down.
BASE_CONFIG = {
    'seed': 0,
    'data': {'name': 'synthetic', 'root': None, 'split': None},
    'features': {'sources': {}, 'transform': 'none', 'control': 'none',
                 'control_modalities': []},
    'model': {'name': 'lightgcn', 'embed_dim': 64, 'num_layers': 2,
              'reg_weight': 1e-4},
    'optim': {'name': 'adam', 'lr': 1e-3, 'weight_decay': 0.0},
    'train': {'num_epochs': 10, 'batch_size': 2048},
    'ckpt': {'every_epochs': 5, 'keep': 2},
    'mesh': {'data': -1, 'coordinator': None, 'process_id': 0},
}


def config(**dotted):
  """BASE_CONFIG with dotted keys set ('optim.lr': 0.01)."""
  c = copy.deepcopy(BASE_CONFIG)
  for key, value in dotted.items():
    *sections, last = key.split('.')
    node = c
    for s in sections:
      node = node.setdefault(s, {})
    node[last] = value
  return c


class LabelTest(absltest.TestCase):

  def labels(self, runs):
    """run_labels of (path, dotted overrides or None) pairs."""
    paths = [p for p, _ in runs]
    configs = [None if o is None else config(**o) for _, o in runs]
    return compare.run_labels(paths, configs)

  def test_equal_folder_names_of_two_sweeps(self):
    # Two sweeps, each with lr=0.001 and lr=0.01 folders: one of lightgcn
    # at two embedding sizes, one of vbpr (features) on another dataset.
    vbpr = {'model.name': 'vbpr', 'model.num_layers': 0,
            'data.name': 'ml_lvlm', 'features.sources': {'visual': 'clip'}}
    got = self.labels([
        ('a/lr=0.001', {'model.embed_dim': 32}),
        ('a/lr=0.01', {'model.embed_dim': 32, 'optim.lr': 0.01}),
        ('b/lr=0.001', {'model.embed_dim': 64}),
        ('c/lr=0.001', vbpr),
        ('c/lr=0.01', {**vbpr, 'optim.lr': 0.01}),
    ])
    self.assertEqual(got, [
        'lightgcn(embed_dim=32,lr=0.001)', 'lightgcn(embed_dim=32,lr=0.01)',
        'lightgcn(embed_dim=64,lr=0.001)',
        # data.name differs between models only: the model tells them apart.
        'vbpr(visual=clip,lr=0.001)', 'vbpr(visual=clip,lr=0.01)'])

  def test_representation_and_control(self):
    text = {'model.name': 'vbpr', 'features.sources': {'textual': 'minilm'}}
    got = self.labels([
        ('runs/bprmf', {'model.name': 'bprmf'}),
        ('runs/v1', text),
        ('runs/v2', {**text, 'features.control': 'shuffle'}),
        ('runs/v3', {'model.name': 'vbpr',
                     'features.sources': {'textual': 'qwen_kw'}}),
    ])
    # bprmf has no features: neither representation nor control applies.
    self.assertEqual(got, ['bprmf', 'vbpr(textual=minilm,control=none)',
                           'vbpr(textual=minilm,control=shuffle)',
                           'vbpr(textual=qwen_kw,control=none)'])
    # Unless the control is all that tells two runs of a model apart.
    got = self.labels([('a/bprmf', {'model.name': 'bprmf'}),
                       ('b/bprmf', {'model.name': 'bprmf',
                                    'features.control': 'noise'})])
    self.assertEqual(got, ['bprmf(control=none)', 'bprmf(control=noise)'])

  def test_short_names_stay_unambiguous(self):
    got = self.labels([
        ('x/1', {'optim.lr': 0.01, 'model.lr': 1}),
        ('x/2', {'optim.lr': 0.02, 'model.lr': 2}),
    ])
    self.assertEqual(got, ['lightgcn(model.lr=1,optim.lr=0.01)',
                           'lightgcn(model.lr=2,optim.lr=0.02)'])

  def test_bookkeeping_keys_and_equal_configs_fall_back_to_paths(self):
    # Only where datasets and checkpoints go differs: the configs compute
    # the same thing, so only the paths tell the runs apart.
    got = self.labels([
        ('s1/lr=0.001', {'data.root': '/d1', 'ckpt.keep': 1}),
        ('s2/lr=0.001/', {'data.root': '/d2', 'ckpt.keep': 3}),
        ('s2/bprmf', {'model.name': 'bprmf'}),
    ])
    self.assertEqual(got, ['s1/lr=0.001', 's2/lr=0.001', 'bprmf'])
    # Runs without config.json: folder names, or paths where they clash.
    self.assertEqual(self.labels([('a/x', None), ('b/x', None),
                                  ('b/y', None)]), ['a/x', 'b/x', 'y'])
    with self.assertRaisesRegex(ValueError, 'a/x is given twice'):
      self.labels([('a/x', None), ('a/x/', None)])

  def test_load_runs_labels_runs_from_their_config(self):
    users, v = np.arange(5), {'recall@20': np.ones(5)}
    with tempfile.TemporaryDirectory() as tmp:
      a = write_run(tmp, 'sweep1/lr=0.001', users, v,
                    config=config(**{'model.embed_dim': 32}))
      b = write_run(tmp, 'sweep2/lr=0.001', users, v,
                    config=config(**{'model.embed_dim': 64}))
      c = write_run(tmp, 'sweep3/lr=0.001', users, v,
                    config=config(**{'model.embed_dim': 64}))
      self.assertEqual(list(compare.load_runs([a, b], 'test')),
                       ['lightgcn(embed_dim=32)', 'lightgcn(embed_dim=64)'])
      self.assertEqual(list(compare.load_runs([b, c], 'test')),
                       [os.path.normpath(b), os.path.normpath(c)])
      with open(os.path.join(c, 'config.json'), 'w') as f:
        f.write('{"model": ')
      with self.assertRaisesRegex(ValueError, 'sweep3/lr=0.001/config.json: '
                                  'not a JSON config'):
        compare.load_runs([b, c], 'test')


if __name__ == '__main__':
  absltest.main()
