"""`runinfo.check_resumable` and `runinfo.archive`: a workdir resumes only a
run of the same config (up to `runinfo.RESUMABLE`), and a refusal names the
differing keys and the ways on; `runinfo.write` leaves no stale git.diff.
The command line's refusal (nothing written) is tested in
tests/launch_errors_test.py."""

import datetime
import json
import os
import shutil
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized

from mmjax.utils import runinfo
from tests.testing import fixtures


class CheckResumableTest(parameterized.TestCase):

  def tmpdir(self):
    # tempfile, not create_tempdir: pytest does not parse absl's flags.
    path = tempfile.mkdtemp(prefix='mmjax_guard_')
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  def setUp(self):
    super().setUp()
    self.workdir = os.path.join(self.tmpdir(), 'run')
    fixtures.finished_run(self.workdir, fixtures.load_config())

  def test_same_config_resumes(self):
    runinfo.check_resumable(self.workdir, fixtures.load_config())

  def test_absent_or_empty_workdir_is_fresh(self):
    runinfo.check_resumable(os.path.join(self.workdir, 'nope'),
                            fixtures.load_config())
    empty = self.tmpdir()
    runinfo.check_resumable(empty, fixtures.load_config('test', 'bprmf'))

  @parameterized.parameters(
      ('train.num_epochs', 5),
      ('ckpt.every_epochs', 3),
      ('ckpt.keep', 5),
      ('data.root', '/elsewhere/data'),
      ('mesh.coordinator', 'host:1234'),
      ('mesh.process_id', 1),
  )
  def test_allowed_difference_resumes(self, key, value):
    self.assertIn(key, runinfo.RESUMABLE)
    runinfo.check_resumable(
        self.workdir, fixtures.with_value(fixtures.load_config(), key, value))

  @parameterized.parameters(
      ('train.num_epochs', 1, "train.num_epochs: 2 -> 1"),
      ('model.embed_dim', 32, 'model.embed_dim: 16 -> 32'),
      ('optim.lr', 1e-3, 'optim.lr: 0.01 -> 0.001'),
      ('mesh.data', 4, 'mesh.data: -1 -> 4'),
      ('eval.batch_users', 64, 'eval.batch_users: 128 -> 64'),
      ('seed', 1, 'seed: 0 -> 1'),
  )
  def test_other_difference_is_refused(self, key, value, shown):
    with self.assertRaises(runinfo.WorkdirError) as cm:
      runinfo.check_resumable(
          self.workdir, fixtures.with_value(fixtures.load_config(), key, value))
    message = str(cm.exception)
    self.assertIn(shown, message)
    self.assertIn('another --workdir', message)
    self.assertIn('--overwrite', message)

  def test_another_model_is_refused_naming_the_key(self):
    # The case: a LightGCN workdir given a BPR-MF config.
    with self.assertRaisesRegex(
        runinfo.WorkdirError,
        r"model.name: 'lightgcn' -> 'bprmf'; model.num_layers: 1 -> 0"):
      runinfo.check_resumable(self.workdir,
                              fixtures.load_config('test', 'bprmf'))

  def test_longer_cosine_schedule_is_refused(self):
    # The cosine schedule spans train.num_epochs: training longer would
    # not continue the same trajectory.
    workdir = os.path.join(self.tmpdir(), 'cos')
    fixtures.finished_run(workdir, fixtures.with_value(
        fixtures.load_config(), 'optim.schedule', 'cosine'))
    cfg = fixtures.with_value(fixtures.load_config(), 'optim.schedule',
                              'cosine')
    cfg.train.num_epochs = 5
    with self.assertRaisesRegex(runinfo.WorkdirError,
                                'train.num_epochs: 2 -> 5'):
      runinfo.check_resumable(workdir, cfg)

  def test_config_without_results_may_be_replaced(self):
    # A start that failed before training left config.json only.
    os.remove(os.path.join(self.workdir, 'metrics.jsonl'))
    runinfo.check_resumable(self.workdir, fixtures.load_config('test', 'bprmf'))

  def test_multi_model_results_in_subfolders_count(self):
    workdir = os.path.join(self.tmpdir(), 'quick')
    fixtures.finished_run(workdir, fixtures.load_config('quickstart'),
                          results_in='bprmf')
    self.assertTrue(runinfo.has_results(workdir))
    cfg = fixtures.load_config('quickstart')
    cfg.per_model.lightgcn.num_layers = 2
    with self.assertRaisesRegex(runinfo.WorkdirError,
                                'per_model.lightgcn.num_layers: 3 -> 2'):
      runinfo.check_resumable(workdir, cfg)

  def test_folder_that_holds_no_run_is_refused(self):
    folder = self.tmpdir()
    with open(os.path.join(folder, 'notes.txt'), 'w') as f:
      f.write('mine')
    with self.assertRaisesRegex(runinfo.WorkdirError, 'holds no run'):
      runinfo.check_resumable(folder, fixtures.load_config())

  def test_many_differences_are_counted(self):
    cfg = fixtures.load_config()
    for i, key in enumerate(('seed', 'model.embed_dim', 'optim.lr',
                             'train.batch_size', 'eval.batch_users',
                             'train.patience', 'model.reg_weight')):
      fixtures.with_value(cfg, key, 100 + i)
    with self.assertRaisesRegex(runinfo.WorkdirError, r'and 2 more\)'):
      runinfo.check_resumable(self.workdir, cfg)

  def test_config_differences(self):
    old = {'a': {'b': 1, 'c': [10, 20]}, 'd': 'x'}
    new = {'a': {'b': 1, 'c': [10, 50]}, 'e': 2}
    self.assertEqual(runinfo.config_differences(old, new),
                     [('a.c', [10, 20], [10, 50]), ('d', 'x', '<absent>'),
                      ('e', '<absent>', 2)])
    cfg = fixtures.load_config()
    self.assertEqual(runinfo.config_differences(
        runinfo.config_dict(cfg), json.loads(
            cfg.to_json_best_effort(indent=2, sort_keys=True))), [])

  def test_empty_section_equals_an_absent_one(self):
    # A run recorded before `eval.evaluators` existed resumes under a config
    # whose section is empty; a filled one is still a difference.
    old = {'eval': {'topk': [20]}}
    self.assertEqual(runinfo.config_differences(
        old, {'eval': {'topk': [20], 'evaluators': {}}}), [])
    self.assertEqual(runinfo.config_differences(
        old, {'eval': {'topk': [20], 'evaluators': {'cold': {'kind': 'x'}}}}),
        [('eval.evaluators.cold.kind', '<absent>', 'x')])

  def test_resumable_keys_exist(self):
    flat = runinfo.flatten_config(runinfo.config_dict(fixtures.load_config()))
    self.assertContainsSubset(runinfo.RESUMABLE, flat)

  def test_none_equals_an_absent_key(self):
    # An optional field added later (a None placeholder) is no difference;
    # a value where there was none still is.
    old = {'data': {'name': 'synthetic'}}
    self.assertEqual(runinfo.config_differences(
        old, {'data': {'name': 'synthetic', 'cutoffs': None}}), [])
    self.assertEqual(runinfo.config_differences(
        old, {'data': {'name': 'synthetic', 'cutoffs': [5]}}),
        [('data.cutoffs', '<absent>', [5])])


class WriteTest(absltest.TestCase):

  def test_git_diff_describes_this_start(self):
    workdir = tempfile.mkdtemp(prefix='mmjax_guard_')
    self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
    path = os.path.join(workdir, runinfo.DIFF)
    with open(path, 'w') as f:
      f.write('the diff of an earlier start')
    # A start from a clean tree removes the earlier diff.
    clean = ({'git_dirty': False}, '')
    with mock.patch.object(runinfo, 'collect', return_value=clean):
      runinfo.write(workdir, fixtures.load_config())
    self.assertFalse(os.path.exists(path))
    dirty = ({'git_dirty': True}, 'the diff of this start')
    with mock.patch.object(runinfo, 'collect', return_value=dirty):
      runinfo.write(workdir, fixtures.load_config())
    with open(path) as f:
      self.assertEqual(f.read(), 'the diff of this start')


class ArchiveTest(absltest.TestCase):

  def test_moves_aside_with_the_time(self):
    root = tempfile.mkdtemp(prefix='mmjax_guard_')
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    workdir = os.path.join(root, 'run')
    fixtures.finished_run(workdir, fixtures.load_config())
    when = datetime.datetime(2026, 1, 2, 3, 4, 5)
    moved = runinfo.archive(workdir, when)
    self.assertEqual(moved, os.path.join(root, 'run.old-20260102-030405'))
    self.assertFalse(os.path.exists(workdir))
    self.assertTrue(os.path.exists(os.path.join(moved, 'metrics.jsonl')))
    fixtures.finished_run(workdir, fixtures.load_config())
    self.assertEqual(runinfo.archive(workdir + '/', when), moved + '-2')
    self.assertIsNone(runinfo.archive(workdir, when))


if __name__ == '__main__':
  absltest.main()
