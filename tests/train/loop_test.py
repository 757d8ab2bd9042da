"""The compiled epoch: determinism, 8 devices = 1, one compile, ctx as an
argument, optimiser schedules, metrics-file rollback, config variants."""

import dataclasses
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from mmjax import models
from mmjax.data import dataset as dataset_lib
from mmjax.graph import kernel
from mmjax.parallel import mesh as mesh_lib
from mmjax.train import loop
from mmjax.train import optim
from mmjax.train import sampler
from mmjax.utils import config_args
from mmjax.utils import writers
from tests.testing import fixtures

P = jax.sharding.PartitionSpec


class EpochTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.ds = fixtures.random_dataset()

  def test_same_seed_same_params_bitwise(self):
    cfg = fixtures.small_config()
    _, a, _ = fixtures.train(cfg, self.ds, mesh_lib.make_mesh(8), 2)
    trainer, b, _ = fixtures.train(cfg, self.ds, mesh_lib.make_mesh(8), 2)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # Several epochs, one compile: the epoch index is an argument.
    self.assertEqual(trainer.epoch_fn._cache_size(), 1)
    cfg.seed = 1
    _, c, _ = fixtures.train(cfg, self.ds, mesh_lib.make_mesh(8), 2)
    self.assertFalse(np.array_equal(np.asarray(a.params['user_emb']),
                                    np.asarray(c.params['user_emb'])))

  def test_eight_devices_equal_one_sgd(self):
    cfg = fixtures.small_config(optimizer='sgd')
    _, one, m1 = fixtures.train(cfg, self.ds, mesh_lib.make_mesh(1), 3)
    _, eight, m8 = fixtures.train(cfg, self.ds, mesh_lib.make_mesh(8), 3)
    np.testing.assert_array_equal(np.asarray(one.step), 3 * 4)
    for x, y in zip(jax.tree.leaves(one.params), jax.tree.leaves(eight.params)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5,
                                 atol=1e-6)
    np.testing.assert_allclose(m1['train/loss'], m8['train/loss'], rtol=1e-5)

  def test_step_loss_and_grads_eight_vs_one(self):
    cfg = fixtures.small_config()
    model = models.get_model('lightgcn')
    outs = []
    for n in (1, 8):
      mesh = mesh_lib.make_mesh(n)
      trainer = loop.Trainer(cfg, self.ds, mesh=mesh)
      params = trainer.init_state().params
      rows = mesh_lib.data_sharded(mesh)

      def step(params, ctx, td, key):
        index = jnp.arange(64, dtype=jnp.int32)
        mask = (index < 60).astype(jnp.float32)
        batch = loop.sharded_batch(td, index, mask, key, 2, True, rows)
        grad_fn = jax.value_and_grad(
            lambda p: model.loss(p, batch, ctx, key, cfg.model)[0])
        return grad_fn(params), batch

      (loss, grads), batch = jax.jit(step)(
          params, trainer.ctx, trainer.td, jax.random.key(5))
      if n > 1:  # A one-device mesh reports its sharding as P().
        self.assertEqual(batch['users'].sharding.spec, P('data'))
        self.assertLen(batch['users'].sharding.device_set, n)
        shards = batch['users'].addressable_shards
        self.assertEqual({s.data.shape for s in shards}, {(64 // n,)})
      outs.append((loss, grads))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-7)
    for x, y in zip(jax.tree.leaves(outs[0][1]), jax.tree.leaves(outs[1][1])):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5,
                                 atol=1e-7)

  def test_epoch_splits_propagation_rows_over_devices(self):
    if not kernel.available():
      self.skipTest(f'propagation kernel not in use: {kernel.status()}')
    cfg = fixtures.small_config()
    trainer = loop.Trainer(cfg, self.ds, mesh=mesh_lib.make_mesh(8))
    state = trainer.init_state()
    epoch = jax.device_put(np.int32(1), trainer.repl)
    with jax.set_mesh(trainer.mesh):
      text = trainer.epoch_fn.lower(state, trainer.ctx, trainer.td, epoch,
                                    trainer.data_key,
                                    trainer.train_key).as_text()
    # The kernel computes a block of ceil(N / 8) rows per device, gathered.
    nodes = self.ds.num_users + self.ds.num_items
    self.assertIn('all_gather', text)
    self.assertIn(f'tensor<{-(-nodes // 8)}x{cfg.model.embed_dim}xf32>', text)

  def test_program_size_does_not_grow_with_edges(self):
    cfg = fixtures.small_config()
    mesh = mesh_lib.make_mesh(1)
    sizes, edges = [], []
    for per_user in (4, 24):
      # The same largest degree, so the same binary-search depth.
      ds = fixtures.random_dataset(per_user=per_user, first_user=24)
      trainer = loop.Trainer(cfg, ds, mesh=mesh)
      state = trainer.init_state()
      text = trainer.epoch_fn.lower(
          state, trainer.ctx, trainer.td, np.int32(1), trainer.data_key,
          trainer.train_key).as_text()
      sizes.append(len(text))
      edges.append(trainer.ctx.graph.num_edges)
    self.assertGreater(edges[1], 4 * edges[0])
    # Only shapes' digits differ; a graph folded in as a constant would add
    # > 10 bytes per edge (> 10k here).
    self.assertLess(abs(sizes[1] - sizes[0]), 500, (sizes, edges))

  def test_batch_size_must_divide_devices(self):
    cfg = fixtures.small_config()
    cfg.train.batch_size = 60
    with self.assertRaisesRegex(ValueError, 'multiple of the 8 devices'):
      loop.Trainer(cfg, self.ds, mesh=mesh_lib.make_mesh(8))


class EvaluatorsTest(absltest.TestCase):

  def test_default_and_extra_evaluators(self):
    ds = fixtures.random_dataset()
    cfg = fixtures.small_config('bprmf')
    self.assertEqual(dict(cfg.eval.evaluators), {})
    trainer = loop.Trainer(cfg, ds, mesh=mesh_lib.make_mesh(1))
    self.assertEqual(trainer.evaluator_names, ['val', 'test'])
    params = trainer.init_state().params
    plain = trainer.evaluate(params, 3)
    self.assertEqual(list(plain), ['val', 'test'])
    self.assertNotIn('recall@20/group=0-5', plain['test'].summary)
    cfg.eval.evaluators = {'again': {'kind': 'ranking', 'split': 'test'},
                           'late': {'kind': 'ranking', 'split': 'val',
                                    'every': 'best'}}
    trainer = loop.Trainer(cfg, ds, mesh=mesh_lib.make_mesh(1))
    self.assertEqual(trainer.names_every('eval'), ['val', 'test', 'again'])
    self.assertEqual(trainer.names_every('best'), ['late'])
    got = trainer.evaluate(params, 3)
    self.assertEqual(list(got), ['val', 'test', 'again'])
    # An extra evaluator of a split breaks ties with the split's key.
    self.assertTrue(jnp.array_equal(
        jax.random.key_data(trainer.eval_key(3, 'again')),
        jax.random.key_data(trainer.eval_key(3, 'test'))))
    for name in ('val', 'test'):
      self.assertEqual(got[name].summary, plain[name].summary)
    self.assertEqual(got['again'].summary, plain['test'].summary)
    late = trainer.evaluate(params, 3, ['late'], given=got)
    self.assertEqual(late['late'].summary, plain['val'].summary)
    with self.assertRaisesRegex(KeyError, 'nope'):
      trainer.evaluate(params, 3, ['nope'])
    # Asking again for an evaluator it has is fine; another one by that
    # name is refused.
    self.assertEqual(trainer.add_evaluators(
        {'again': {'kind': 'ranking', 'split': 'test'}}), ['again'])
    with self.assertRaisesRegex(ValueError, 'other settings'):
      trainer.add_evaluators({'again': {'kind': 'ranking', 'split': 'val'}})


class RunTest(absltest.TestCase):

  def test_learning_rate_logged_per_epoch(self):
    # MMRec's schedule changes the rate every epoch: epoch e's last update
    # (step e * S - 1) runs at lr * a ** ((e - 1) / b).
    cfg = fixtures.small_config('bprmf')
    cfg.model.num_layers = 0
    cfg.optim.schedule = 'mmrec'
    cfg.optim.lr = 0.1
    cfg.optim.lr_decay = (0.5, 2.0)
    cfg.train.num_epochs = 3
    workdir = tempfile.mkdtemp()
    loop.train_and_evaluate_one(cfg, workdir, fixtures.random_dataset(),
                                mesh=mesh_lib.make_mesh(1))
    lines = [line for line in writers.read_jsonl(
        os.path.join(workdir, writers.METRICS))
             if 'train/loss' in line]
    self.assertEqual([line['epoch'] for line in lines], [1, 2, 3])
    for line in lines:
      np.testing.assert_allclose(line['train/lr'],
                                 0.1 * 0.5 ** ((line['epoch'] - 1) / 2.0),
                                 rtol=1e-6)

  def test_log_norms_are_the_steps_global_norms(self):
    cfg = fixtures.small_config()
    cfg.train.log_norms = True
    trainer = loop.Trainer(cfg, fixtures.random_dataset(),
                           mesh=mesh_lib.make_mesh(1))
    state = trainer.init_state()
    index = jnp.arange(64, dtype=jnp.int32)
    batch = sampler.make_batch(trainer.td, index, jnp.ones(64),
                               jax.random.key(1), 1, True)
    step = jax.jit(loop.make_train_step(trainer.model, trainer.tx, cfg))
    new, metrics, _ = step(state, batch, trainer.ctx, jax.random.key(2))
    grads = jax.jit(jax.grad(lambda p: trainer.model.loss(
        p, batch, trainer.ctx, jax.random.key(2), cfg.model)[0]))(state.params)
    updates = jax.tree.map(lambda a, b: a - b, new.params, state.params)
    l2 = lambda t: np.sqrt(sum(np.sum(np.square(np.asarray(x)))  # noqa: E731
                               for x in jax.tree.leaves(t)))
    np.testing.assert_allclose(metrics['l2_grads'], l2(grads), rtol=1e-4)
    np.testing.assert_allclose(metrics['l2_updates'], l2(updates), rtol=1e-3)
    cfg.train.log_norms = False
    step = loop.make_train_step(trainer.model, trainer.tx, cfg)
    metrics = jax.eval_shape(step, state, batch, trainer.ctx,
                             jax.random.key(2))[1]
    self.assertNotIn('l2_grads', metrics)

  def test_no_validation_split_refused_before_training(self):
    ds = fixtures.random_dataset()
    # An Elliot fixed split without val.tsv: validation rows are training.
    ds = dataclasses.replace(ds, split=np.where(
        ds.split == dataset_lib.VALID, dataset_lib.TRAIN, ds.split
    ).astype(ds.split.dtype))
    workdir = tempfile.mkdtemp()
    with self.assertRaisesRegex(ValueError, 'no validation interactions.*'
                                "eval.select_metric='recall@20'"):
      loop.train_and_evaluate_one(fixtures.small_config(), workdir, ds,
                                  mesh=mesh_lib.make_mesh(1))
    self.assertFalse(os.path.exists(os.path.join(workdir, 'checkpoints')))
    self.assertFalse(os.path.exists(os.path.join(workdir, writers.METRICS)))


class ScheduleTest(parameterized.TestCase):

  def test_mmrec_schedule(self):
    cfg = fixtures.small_config()
    cfg.optim.schedule = 'mmrec'
    cfg.optim.lr = 0.1
    cfg.optim.lr_decay = (0.5, 2.0)
    schedule = optim.make_schedule(cfg, steps_per_epoch=10)
    for step, epoch in ((0, 0), (9, 0), (10, 1), (45, 4)):
      np.testing.assert_allclose(float(schedule(jnp.int32(step))),
                                 0.1 * 0.5 ** (epoch / 2.0), rtol=1e-6)

  def test_default_mmrec_decay_is_constant(self):
    cfg = fixtures.small_config()
    cfg.optim.schedule = 'mmrec'
    schedule = optim.make_schedule(cfg, steps_per_epoch=3)
    np.testing.assert_allclose(float(schedule(jnp.int32(300))), cfg.optim.lr,
                               rtol=1e-6)

  @parameterized.parameters('adam', 'adamw', 'sgd')
  def test_optimizers_step(self, name):
    cfg = fixtures.small_config(optimizer=name)
    cfg.optim.weight_decay = 0.1
    cfg.optim.clip_norm = 1.0
    tx = optim.make_optimizer(cfg, 1)
    params = {'w': jnp.ones(3)}
    updates, _ = tx.update({'w': jnp.full(3, 10.0)}, tx.init(params), params)
    self.assertTrue(np.all(np.asarray(updates['w']) < 0))

  def test_unknown_optimizer(self):
    cfg = fixtures.small_config(optimizer='lionn')
    with self.assertRaisesRegex(ValueError, 'unknown optim.name'):
      optim.make_optimizer(cfg, 1)


class UtilsTest(absltest.TestCase):

  def test_truncate_after(self):
    path = os.path.join(tempfile.mkdtemp(), 'metrics.jsonl')
    w = writers.JsonlWriter(path)
    for e in (1, 2, 3):
      w.write_scalars(e * 10, {'epoch': e, 'train/loss': 1.0 / e})
    w.write_scalars(30, {'final': True, 'epoch': 3})
    w.close()
    with open(path, 'a') as f:
      f.write('{"step": 40, "epo')  # A torn line of a killed write.
    self.assertEqual(writers.truncate_after(path, 2), 3)
    self.assertEqual([r['epoch'] for r in writers.read_jsonl(path)], [1, 2])

  def test_parse_arg(self):
    args = config_args.parse_arg('runlocal,features=clip,k=3', runlocal=False,
                                 features='none', k=1)
    self.assertEqual((args.runlocal, args.features, args.k),
                     (True, 'clip', 3))
    with self.assertRaisesRegex(ValueError, 'unknown config variant'):
      config_args.parse_arg('nope', runlocal=False)
    with self.assertRaisesRegex(ValueError, 'expected int'):
      config_args.parse_arg('k=x', k=1)

  def test_sampler_data_is_an_argument(self):
    td = sampler.make_train_data(fixtures.random_dataset())
    leaves = jax.tree.leaves(td)
    # users, items, indptr, shifted, candidates: device arrays, not constants.
    self.assertLen(leaves, 5)
    self.assertTrue(dataclasses.is_dataclass(td))


if __name__ == '__main__':
  absltest.main()
