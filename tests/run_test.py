"""`mmjax.run`: one run as a package API, on a tiny cold-item run.

LightGCN on configs/test.py's synthetic data (cold-item split, 3 epochs)
with one evaluator of each kind: the RunResult agrees with the files, the
extra evaluators' metrics are in metrics.jsonl and results.json, a finished
run is read back and resumed as is, and re-evaluating the restored best
checkpoint reproduces every recorded metric exactly.
"""

import dataclasses
import json
import os
import shutil
import tempfile

from absl.testing import absltest
import ml_collections
import numpy as np

from mmjax import run as run_lib
from mmjax.eval import ranking
from mmjax.graph import kernel
from mmjax.train import loop
from mmjax.utils import runinfo
from mmjax.utils import writers
from tests.testing import fixtures

INF = float('inf')
EVALUATORS = {
    'again': {'kind': 'ranking', 'split': 'test'},
    'cold': {'kind': 'cold_items_only', 'split': 'test'},
    'cold_at_best': {'kind': 'cold_items_only', 'split': 'test',
                     'every': 'best'},
    'groups': {'kind': 'user_groups', 'split': 'test',
               'groups': (0, 10, INF)},
}


def as_dict(result):
  """A RunResult (or a dict of them) as plain data: NaN equals NaN."""
  if isinstance(result, dict):
    return {k: dataclasses.asdict(v) for k, v in result.items()}
  return dataclasses.asdict(result)


def make_config(data_root, arg=None):
  cfg = fixtures.load_config('test', arg)
  cfg.data.root = data_root
  cfg.data.split = 'cold_item'
  cfg.train.num_epochs = 3
  cfg.eval.evaluators = ml_collections.ConfigDict(EVALUATORS)
  return cfg


class RunTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='mmjax_run_')
    cls.data_root = os.path.join(cls.tmp, 'data')
    cls.cfg = make_config(cls.data_root)
    cls.workdir = os.path.join(cls.tmp, 'run')
    cls.result = run_lib.run(cls.cfg, cls.workdir)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_result_agrees_with_the_files(self):
    r = self.result
    with open(os.path.join(self.workdir, 'results.json')) as f:
      results = json.load(f)
    self.assertEqual(r.model, 'lightgcn')
    self.assertEqual(r.workdir, os.path.abspath(self.workdir))
    self.assertEqual(r.best_epoch, results['best_epoch'])
    self.assertBetween(r.best_epoch, 1, 3)
    self.assertEqual((r.epochs_run, r.num_epochs, r.fitted), (3, 3, False))
    np.testing.assert_equal(r.metrics, results['best'])
    self.assertEqual(r.val['recall@20'], results['best']['val/recall@20'])
    self.assertEqual(r.test['ndcg@20'], results['best']['test/ndcg@20'])
    self.assertEqual(set(r.evaluators), {'val', 'test', *EVALUATORS})
    self.assertEqual(set(r.per_user),
                     {'val', 'test', 'again', 'cold', 'cold_at_best'})
    for path in (r.config_path, r.metrics_path, r.results_path,
                 r.checkpoint_dir, *r.per_user.values()):
      self.assertTrue(os.path.exists(path), path)
    self.assertEqual(os.path.basename(r.per_user['val']),
                     'per_user_valid.npz')
    np.testing.assert_equal(
        as_dict(run_lib.RunResult.from_workdir(self.workdir)), as_dict(r))
    np.testing.assert_equal(as_dict(run_lib.load(self.workdir)), as_dict(r))

  def test_extra_evaluators_in_metrics_and_results(self):
    r = self.result
    # The same split and key as 'test': the same numbers.
    np.testing.assert_equal(r.evaluators['again'], r.test)
    np.testing.assert_equal(r.evaluators['cold_at_best'], r.evaluators['cold'])
    self.assertIn('warm_above_median', r.evaluators['cold'])
    lines = [x for x in writers.read_jsonl(r.metrics_path)
             if 'val/recall@20' in x]
    self.assertLen(lines, 3)
    best = -1.0
    for x in lines:
      self.assertIn('cold/recall@20', x)
      self.assertIn('again/recall@20', x)
      self.assertIn('groups/num_users/group=0-10', x)
      # Only at a new best validation value.
      improved = x['val/recall@20'] > best
      best = max(best, x['val/recall@20'])
      self.assertEqual('cold_at_best/recall@20' in x, improved)
    final = writers.read_jsonl(r.metrics_path)[-1]
    self.assertEqual(final['best/cold/recall@20'],
                     r.evaluators['cold']['recall@20'])
    # Model selection reads 'val/' only.
    self.assertEqual(r.best_epoch, 1 + int(np.argmax(
        [x['val/recall@20'] for x in lines])))
    # The groups: per-user test recall of the best epoch averaged by
    # training-history length, in numpy.
    ds, _ = loop.load_dataset(self.cfg)
    saved = ranking.load_per_user(r.per_user['test'])
    counts = np.bincount(ds.user[ds.split == 0], minlength=ds.num_users)
    counts = counts[saved['users']]
    recall = saved['per_user']['recall@20']
    groups = r.evaluators['groups']
    for name, sel in (('0-10', counts < 10), ('10-inf', counts >= 10)):
      self.assertEqual(groups[f'num_users/group={name}'], sel.sum())
      if sel.any():
        self.assertAlmostEqual(groups[f'recall@20/group={name}'],
                               recall[sel].mean(), places=12)

  def test_evaluate_checkpoint_reproduces_the_recorded_metrics(self):
    restored = run_lib.restore_best(self.workdir)
    self.assertEqual(restored.best_epoch, self.result.best_epoch)
    self.assertEqual(restored.config.model.name, 'lightgcn')
    again = run_lib.evaluate_checkpoint(self.workdir, restored=restored)
    np.testing.assert_equal(again, self.result.metrics)
    # An evaluator asked for afterwards, on the same state and key.
    new = run_lib.evaluate_checkpoint(
        self.workdir, {'late': {'kind': 'cold_items_only'}},
        restored=restored)
    np.testing.assert_equal(
        new, {f'late/{k}': v for k, v in
              self.result.evaluators['cold'].items()})
    only = run_lib.evaluate_checkpoint(self.workdir, ['test'],
                                       restored=restored)
    np.testing.assert_equal(
        only, {f'test/{k}': v for k, v in self.result.test.items()})

  def test_runinfo_records_the_propagation_path(self):
    # LightGCN on the 8-device mesh: the kernel's rows split over 'data'
    # where the kernel serves, else the segment_sum reference.
    info = runinfo.read(self.workdir)['propagation']
    want = ('kernel_row_split(data=8)' if kernel.available()
            else 'segment_sum')
    self.assertEqual(info['paths'], [want])
    self.assertEqual(info['kernel']['mode'], kernel.settings().mode)

  def test_finished_run_resumes_as_is_and_guard(self):
    again = run_lib.run(self.cfg, self.workdir)
    np.testing.assert_equal(as_dict(again), as_dict(self.result))
    other = make_config(self.data_root, 'mostpop')
    with self.assertRaisesRegex(runinfo.WorkdirError, 'model.name'):
      run_lib.run(other, self.workdir)
    workdir = os.path.join(self.tmp, 'overwritten')
    shutil.copytree(self.workdir, workdir)
    result = run_lib.run(other, workdir, overwrite=True)
    self.assertEqual((result.model, result.fitted, result.best_epoch),
                     ('mostpop', True, 0))
    # MostPop never propagates; the resumed LightGCN keeps its first
    # start's path.
    self.assertEqual(runinfo.read(workdir)['propagation']['paths'], [])
    self.assertLen(runinfo.read(self.workdir)['propagation']['paths'], 1)
    self.assertIsNone(result.checkpoint_dir)
    self.assertLen([d for d in os.listdir(self.tmp)
                    if d.startswith('overwritten.old-')], 1)

  def test_multi_model_config_returns_a_dict(self):
    cfg = make_config(self.data_root, 'mostpop')
    cfg.models = ('mostpop',)
    cfg.per_model = ml_collections.ConfigDict(
        {'mostpop': cfg.model.to_dict()})
    workdir = os.path.join(self.tmp, 'multi')
    results = run_lib.run(cfg, workdir)
    self.assertEqual(list(results), ['mostpop'])
    result = results['mostpop']
    self.assertEqual(result.workdir, os.path.join(workdir, 'mostpop'))
    np.testing.assert_equal(as_dict(run_lib.load(workdir)), as_dict(results))
    # A closed-form model is fitted again: the same metrics.
    np.testing.assert_equal(run_lib.evaluate_checkpoint(result.workdir),
                            result.metrics)
    with self.assertRaisesRegex(ValueError, 'multi-model'):
      run_lib.restore_best(workdir)


if __name__ == '__main__':
  absltest.main()
