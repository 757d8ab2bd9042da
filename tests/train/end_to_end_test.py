"""End to end on the synthetic default data: LightGCN beats MostPop.

The issue asks for Recall@20 >= 1.5x MostPop with the test config on the
synthetic default (configs/data/synthetic.py: preset 'both', 2000 users x
1000 items, 20 interactions per user, collaborative clusters of 10 items).
Measured at seed 0 on 2026-11-23: MostPop val Recall@20 0.069, LightGCN
0.263 at epoch 8 (3.8x); EASE, a strong closed-form reference, reaches 4.6x.
"""

import importlib.util
import os
import tempfile

from absl.testing import absltest

from mmjax.parallel import mesh as mesh_lib
from mmjax.train import loop

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def default_data_config():
  path = os.path.join(REPO, 'configs', 'test.py')
  spec = importlib.util.spec_from_file_location('mmjax_test_config_e2e', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  cfg = module.get_config()
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
      if epoch % 2 == 0:
        best = max(best, trainer.evaluate(state.params, epoch)['val']
                   .summary['recall@20'])
    self.assertGreater(pop_recall, 0.05)
    self.assertGreaterEqual(best, 1.5 * pop_recall, (best, pop_recall))


if __name__ == '__main__':
  absltest.main()
