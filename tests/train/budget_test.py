"""Results a person can trust at a glance: the budget warning and the console.

A trained run whose best validation is among its last evaluations, with
patience never ending it, is "still improving at the budget": results.json,
the final metrics line, the table and a warning line say so. Runs here plant
the validation metric (the real evaluation runs; only the selection number is
replaced), so which epoch is best does not hang on float ties.
"""

import contextlib
import dataclasses
import io
import json
import os
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax.parallel import mesh as mesh_lib
from mmjax.train import loop
from mmjax.utils import writers
from tests.testing import fixtures

SELECT = 'recall@20'
TRAINER = loop.Trainer


def planted_val(values):
  """Patches Trainer.evaluate: val `SELECT` at epoch e is values[e - 1]."""
  real = TRAINER.evaluate

  def evaluate(self, params, epoch):
    out = real(self, params, epoch)
    summary = dict(out['val'].summary, **{SELECT: values[epoch - 1]})
    out['val'] = dataclasses.replace(out['val'], summary=summary)
    return out

  return mock.patch.object(TRAINER, 'evaluate', evaluate)


def run_config(num_epochs, patience, eval_every=1, name='bprmf'):
  cfg = fixtures.small_config(name)
  cfg.model.num_layers = 0
  cfg.train.num_epochs = num_epochs
  cfg.train.patience = patience
  cfg.train.eval_every_epochs = eval_every
  cfg.ckpt.every_epochs = num_epochs
  return cfg


class AtBudgetRuleTest(parameterized.TestCase):

  @parameterized.parameters(
      # (evals after the best, patience reached, expected)
      (0, False, True),    # Best at the last evaluation.
      (2, False, True),    # FREEDOM's 48 of 50, evaluated every epoch.
      (3, False, False),   # Three flat evaluations: a plateau was seen.
      (10, False, False),
      (0, True, False),    # Patience stopped it: never at the budget.
      (1, True, False),
  )
  def test_rule(self, evals_since_best, patience_reached, expected):
    self.assertEqual(loop.at_budget(evals_since_best, patience_reached),
                     expected)

  def test_warning_names_model_epoch_and_budget(self):
    results = {'model': 'freedom', 'best_epoch': 48, 'num_epochs': 50,
               'at_budget': True}
    self.assertEqual(
        loop.budget_warning(results),
        'warning: freedom: best validation epoch 48 of 50; still improving '
        'at the budget, raise train.num_epochs')
    self.assertIsNone(loop.budget_warning({**results, 'at_budget': False}))

  def test_table_marks_runs_at_budget_and_fitted_models(self):
    best = {'val/recall@20': 0.25, 'test/recall@20': 0.125}
    rows = [
        {'model': 'mostpop', 'best_epoch': 0, 'best': best, 'fitted': True,
         'at_budget': False, 'num_epochs': None},
        {'model': 'bprmf', 'best_epoch': 12, 'best': best, 'fitted': False,
         'at_budget': False, 'num_epochs': 20},
        {'model': 'freedom', 'best_epoch': 48, 'best': best, 'fitted': False,
         'at_budget': True, 'num_epochs': 50},
    ]
    lines = loop.format_table(rows, ('recall@20',)).split('\n')
    self.assertLen(lines, 5)
    self.assertEqual(lines[1].split()[:2], ['mostpop', 'fit'])
    self.assertEqual(lines[2].split()[:3], ['bprmf', '12', '0.2500'])
    self.assertEqual(lines[3].split()[:5],
                     ['freedom', '48', 'of', '50', '*'])
    self.assertIn('still improving at the budget', lines[4])
    # Without a marked row there is no note.
    self.assertLen(loop.format_table(rows[:2], ('recall@20',)).split('\n'),
                   3)


class BudgetRunTest(absltest.TestCase):
  """Real tiny runs through `train_and_evaluate_one`."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ds = fixtures.random_dataset()
    cls.mesh = mesh_lib.make_mesh(1)
    cls.trainers = {}

  def setUp(self):
    super().setUp()
    # One Trainer (and its compiled programs) per model, shared by the runs:
    # a Trainer holds no run state, and the runs differ only in fields it
    # does not read (the budget, patience, evaluation and checkpoint
    # periods; the constant schedule does not depend on num_epochs).
    def cached(cfg, ds, dataset_dir=None, mesh=None):
      assert cfg.optim.schedule == 'constant', cfg.optim.schedule
      name = cfg.model.name
      if name not in self.trainers:
        self.trainers[name] = TRAINER(cfg, ds, dataset_dir, mesh)
      return self.trainers[name]

    patcher = mock.patch.object(loop, 'Trainer', cached)
    patcher.start()
    self.addCleanup(patcher.stop)

  def run_one(self, cfg, on_epoch_end=None, workdir=None):
    workdir = workdir or tempfile.mkdtemp(prefix='mmjax_budget_')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      results = loop.train_and_evaluate_one(cfg, workdir, self.ds,
                                            mesh=self.mesh,
                                            on_epoch_end=on_epoch_end)
    with open(os.path.join(workdir, loop.RESULTS)) as f:
      written = json.load(f)
    # 'best' may hold NaN (cold-item means), which no dict compares equal.
    self.assertEqual({k: v for k, v in written.items() if k != 'best'},
                     {k: v for k, v in results.items() if k != 'best'})
    self.assertEqual(written['best'][f'val/{SELECT}'],
                     results['best'][f'val/{SELECT}'])
    final = writers.read_jsonl(os.path.join(workdir, writers.METRICS))[-1]
    self.assertTrue(final['final'])
    self.assertEqual(final['at_budget'], results['at_budget'])
    return results, out.getvalue()

  def test_best_at_the_last_epoch_is_at_budget(self):
    # One evaluation, at the last epoch: the best is at the end whatever
    # the metric's value.
    results, out = self.run_one(run_config(3, patience=0, eval_every=3))
    self.assertEqual(results['best_epoch'], 3)
    self.assertEqual(results['num_epochs'], 3)
    self.assertTrue(results['at_budget'])
    self.assertFalse(results['stopped_early'])
    self.assertIn('warning: bprmf: best validation epoch 3 of 3; still '
                  'improving at the budget, raise train.num_epochs', out)

  def test_early_stop_is_not_at_budget(self):
    with planted_val([0.5, 0.4, 0.3, 0.2, 0.1, 0.0]):
      results, out = self.run_one(run_config(6, patience=2))
    self.assertEqual((results['best_epoch'], results['epochs_run']), (1, 3))
    self.assertTrue(results['stopped_early'])
    self.assertFalse(results['at_budget'])
    self.assertIn('epoch 3/6', out)
    self.assertIn('(early stop: 2 evaluations without gain)', out)
    self.assertNotIn('epoch 4/6', out)
    self.assertNotIn('warning', out)

  def test_patience_at_the_last_epoch_is_no_early_stop(self):
    with planted_val([0.5, 0.4]):
      results, out = self.run_one(run_config(2, patience=1))
    self.assertEqual((results['best_epoch'], results['epochs_run']), (1, 2))
    self.assertNotIn('early stop', out)
    self.assertFalse(results['stopped_early'])
    # Patience saw the plateau, so it is not "still improving" either.
    self.assertFalse(results['at_budget'])

  def test_window_of_three_evaluations(self):
    # Without patience: the best two evaluations before the end is marked,
    # three before is not.
    with planted_val([0.1, 0.2, 0.5, 0.3, 0.3]):
      marked, out = self.run_one(run_config(5, patience=0))
    self.assertEqual(marked['best_epoch'], 3)
    self.assertTrue(marked['at_budget'])
    self.assertIn('best validation epoch 3 of 5', out)
    with planted_val([0.1, 0.5, 0.3, 0.3, 0.3]):
      unmarked, out = self.run_one(run_config(5, patience=0))
    self.assertEqual(unmarked['best_epoch'], 2)
    self.assertFalse(unmarked['at_budget'])
    self.assertNotIn('warning', out)

  def test_on_epoch_end_follows_the_log_and_precedes_the_checkpoint(self):
    workdir = tempfile.mkdtemp(prefix='mmjax_budget_')
    seen = []

    def on_epoch_end(epoch):
      logged = [r['epoch'] for r in writers.read_jsonl(
          os.path.join(workdir, writers.METRICS)) if 'train/loss' in r]
      latest = os.path.join(workdir, 'checkpoints', 'latest')
      saved = sorted(int(n) for n in os.listdir(latest) if n.isdigit()
                     ) if os.path.isdir(latest) else []
      seen.append((epoch, logged, saved))

    cfg = run_config(3, patience=0)
    cfg.ckpt.every_epochs = 2
    self.run_one(cfg, on_epoch_end, workdir)
    self.assertEqual(seen, [(1, [1], []), (2, [1, 2], []),
                            (3, [1, 2, 3], [2])])

  def test_fitted_model_prints_one_line_and_is_never_at_budget(self):
    calls = []
    results, out = self.run_one(run_config(3, patience=0, name='mostpop'),
                                calls.append)
    self.assertEqual(calls, [])  # A fitted model has no epochs.
    self.assertEqual(results['best_epoch'], 0)
    # The best holds the evaluators' metrics, not the timings.
    self.assertIn('test/recall@20', results['best'])
    self.assertFalse([k for k in results['best'] if k.startswith('perf/')])
    self.assertTrue(results['fitted'])
    self.assertFalse(results['at_budget'])
    self.assertIsNone(results['num_epochs'])
    lines = out.strip().split('\n')
    self.assertLen(lines, 1)
    self.assertRegex(lines[0],
                     r'^\[mostpop\] fitted in \d+\.\d\ds \| val/recall@20 '
                     r'0\.\d{4}$')
    np.testing.assert_allclose(float(lines[0].split()[-1]),
                               results['best']['val/recall@20'], atol=5e-5)


if __name__ == '__main__':
  absltest.main()
