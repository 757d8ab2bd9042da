"""End to end on the synthetic data: LightGCN beats MostPop; the quick start's
console reads at a glance.

The issue asks for Recall@20 >= 1.5x MostPop with the test config on the
synthetic default (mmjax/data/datasets.py: preset 'both', 2000 users x
1000 items, 20 interactions per user, collaborative clusters of 10 items).
Measured at seed 0 on 2026-11-23: MostPop val Recall@20 0.069, LightGCN
0.263 at epoch 8 (3.8x); EASE, a strong closed-form reference, reaches 4.6x.
"""

import contextlib
import importlib.util
import io
import os
import tempfile

from absl.testing import absltest

from mmjax.parallel import mesh as mesh_lib
from mmjax.train import defaults
from mmjax.train import loop

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def load_config(name):
  path = os.path.join(REPO, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'mmjax_{name}_e2e', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def default_data_config():
  cfg = load_config('test')
  with cfg.unlocked():
    cfg.data.overrides = {}  # The synthetic default, not the tiny one.
  cfg.data.root = os.path.join(tempfile.gettempdir(), 'mmjax_e2e_data')
  return cfg


class EndToEndTest(absltest.TestCase):

  def test_lightgcn_beats_mostpop(self):
    cfg = default_data_config()
    ds, data_dir = loop.load_dataset(cfg)
    mesh = mesh_lib.make_mesh(1)
    cfg.eval.topk = (20,)
    cfg.eval.batch_users = 1024
    mostpop = cfg.copy_and_resolve_references()
    mostpop.model.name = 'mostpop'
    pop = loop.Trainer(mostpop, ds, data_dir, mesh)
    pop_recall = pop.evaluate(pop.fit(), 0)['val'].summary['recall@20']

    cfg.model.update(dict(name='lightgcn', embed_dim=64, num_layers=3,
                          reg_weight=1e-2))
    cfg.optim.lr = 1e-2
    cfg.train.batch_size = 2048
    trainer = loop.Trainer(cfg, ds, data_dir, mesh)
    state, best = trainer.init_state(), 0.0
    for epoch in range(1, 9):
      state, _ = trainer.run_epoch(state, epoch)
      if epoch % 4 == 0:  # Its 0.26 is far above the 1.5x MostPop bar.
        best = max(best, trainer.evaluate(state.params, epoch)['val']
                   .summary['recall@20'])
    self.assertGreater(pop_recall, 0.05)
    self.assertGreaterEqual(best, 1.5 * pop_recall, (best, pop_recall))


class QuickstartConsoleTest(absltest.TestCase):

  def test_console(self):
    cfg = load_config('quickstart')
    defaults.tiny_data(cfg)  # 300 users x 200 items, 3 epochs.
    cfg.models = ('mostpop', 'bprmf')  # LightGCN adds nothing to the console.
    cfg.mesh.data = 1
    tmp = tempfile.mkdtemp(prefix='mmjax_quickstart_')
    cfg.data.root = os.path.join(tmp, 'data')
    loop.load_dataset(cfg)  # Prepared (and its table printed) once, here.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      rows = loop.train_and_evaluate(cfg, os.path.join(tmp, 'run'))
    lines = out.getvalue().strip().split('\n')
    # The dataset in one line, not prepare's table.
    self.assertRegex(lines[0], r'^dataset synthetic: 300 users, 200 items, ')
    self.assertNotIn('preprocessing', out.getvalue())
    # MostPop: one line, its fit time and validation metric.
    mostpop = [line for line in lines if line.startswith('[mostpop]')]
    self.assertLen(mostpop, 1)
    self.assertRegex(mostpop[0], r'fitted in .*s \| val/recall@20 0\.\d{4}$')
    # BPR-MF: three epochs, patience 4 never reached: no early stop, and
    # its best (one of two evaluations) is at the budget.
    self.assertLen([line for line in lines
                    if line.startswith('[bprmf] epoch')], 3)
    self.assertNotIn('early stop', out.getvalue())
    self.assertEqual([r['at_budget'] for r in rows], [False, True])
    self.assertIn('warning: bprmf: best validation epoch', out.getvalue())
    table = lines[-4:]
    self.assertEqual(table[1].split()[:2], ['mostpop', 'fit'])
    self.assertEqual(table[2].split()[2:5], ['of', '3', '*'])
    self.assertIn('still improving at the budget', table[3])


if __name__ == '__main__':
  absltest.main()
