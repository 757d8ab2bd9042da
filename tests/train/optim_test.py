"""mmjax/train/optim.py: optax optimisers by name, their kwargs, schedules."""

import glob
import importlib.util
import json
import math
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmjax.train import optim

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def load_config(path, arg=None):
  spec = importlib.util.spec_from_file_location('optim_test_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def small_config():
  return load_config(os.path.join(REPO, 'configs', 'test.py'))


def reference_optimizer(cfg, steps_per_epoch):
  """The optimiser as mmjax built it before optim.name reached all of optax.

  adam and sgd added the weight decay to the gradient, adamw took it as its
  own argument; MMRec's schedule was lr * a ** (step // steps_per_epoch /
  b), written out.
  """
  lr, o = cfg.optim.lr, cfg.optim
  if o.schedule == 'mmrec':
    a, b = o.lr_decay

    def schedule(step):
      return lr * a ** ((step // steps_per_epoch).astype(jnp.float32) / b)
  elif o.schedule == 'cosine':
    schedule = optax.cosine_decay_schedule(
        lr, cfg.train.num_epochs * steps_per_epoch)
  else:
    schedule = optax.constant_schedule(lr)
  parts = [optax.clip_by_global_norm(o.clip_norm)] if o.clip_norm else []
  if o.name == 'adamw':
    return optax.chain(*parts, optax.adamw(schedule,
                                           weight_decay=o.weight_decay))
  if o.weight_decay:
    parts.append(optax.add_decayed_weights(o.weight_decay))
  return optax.chain(*parts, getattr(optax, o.name)(schedule))


def run_updates(tx, num_steps):
  """Params after `num_steps` updates of a small tree with varying grads."""
  params = {'emb': jnp.linspace(-1.0, 1.0, 12).reshape(4, 3),
            'mlp': {'w': jnp.full((3,), 0.5)}}
  state = tx.init(params)
  for step in range(num_steps):
    grads = jax.tree.map(lambda p, s=step: jnp.sin(3.0 * p + s) + 0.1,
                         params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def training_configs():
  """(names, config) of each distinct optim section of the config files."""
  by_optim = {}
  for path in sorted(glob.glob(os.path.join(REPO, 'configs', '*.py'))):
    cfg = load_config(path)
    key = json.dumps([cfg.optim.to_dict(), cfg.train.num_epochs],
                     sort_keys=True)
    names, _ = by_optim.setdefault(key, ([], cfg))
    names.append(os.path.basename(path)[:-3])
  return [(','.join(names), cfg) for names, cfg in by_optim.values()]


class OptimizerTest(parameterized.TestCase):

  def test_every_config_keeps_its_optimizer(self):
    # 3 updates at 1 step an epoch cross two epoch boundaries, where the
    # mmrec schedule (LATTICE, MGCN) decays.
    configs = training_configs()
    self.assertGreaterEqual(sum(len(n.split(',')) for n, _ in configs), 17)
    self.assertIn('mgcn', ','.join(n for n, _ in configs))
    for name, cfg in configs:
      for clip in (None, 0.5):  # clip_norm on top of each config's own.
        cfg.optim.clip_norm = clip
        got, got_state = run_updates(optim.make_optimizer(cfg, 1), 3)
        want, want_state = run_updates(reference_optimizer(cfg, 1), 3)
        # The same state structure: checkpoints of earlier runs restore.
        self.assertEqual(jax.tree.structure(got_state),
                         jax.tree.structure(want_state), name)
        jax.tree.map(lambda g, w, n=name: np.testing.assert_allclose(
            g, w, rtol=1e-6, atol=1e-7, err_msg=n), got, want)

  @parameterized.parameters(
      ('adam', 0.1), ('adamw', 0.1), ('sgd', 0.1), ('sgd', 0.0), ('adam', 0.0))
  def test_weight_decay_matches_the_old_meaning(self, name, wd):
    cfg = small_config()
    cfg.optim.name, cfg.optim.weight_decay = name, wd
    cfg.optim.schedule, cfg.optim.lr_decay = 'mmrec', (0.5, 1.0)
    got, _ = run_updates(optim.make_optimizer(cfg, 2), 5)
    want, _ = run_updates(reference_optimizer(cfg, 2), 5)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(
        g, w, rtol=1e-6, atol=1e-7), got, want)

  def test_any_optax_optimizer_by_name_with_its_kwargs(self):
    self.assertContainsSubset(
        {'adam', 'adamw', 'sgd', 'adagrad', 'rmsprop', 'lion'},
        set(optim.OPTIMIZERS))
    self.assertNotIn('lbfgs', optim.OPTIMIZERS)
    cfg = small_config()
    cfg.optim.name = 'sgd'
    cfg.optim.kwargs = {'momentum': 0.9, 'nesterov': True}
    cfg.optim.weight_decay = 0.01
    got, _ = run_updates(optim.make_optimizer(cfg, 3), 4)
    # SGD with coupled L2 (torch's weight_decay) and Nesterov momentum.
    want, _ = run_updates(optax.chain(
        optax.add_decayed_weights(0.01),
        optax.sgd(cfg.optim.lr, momentum=0.9, nesterov=True)), 4)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-6),
                 got, want)
    cfg.optim.name = 'lion'  # Has its own (decoupled) weight_decay.
    cfg.optim.kwargs = {'b1': 0.95}
    got, _ = run_updates(optim.make_optimizer(cfg, 3), 4)
    want, _ = run_updates(optax.lion(cfg.optim.lr, b1=0.95,
                                     weight_decay=0.01), 4)
    jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-6),
                 got, want)

  @parameterized.parameters(
      ('adma', {}, r"unknown optim.name 'adma'.*adagrad, adam, adamax"),
      ('lbfgs', {}, r'unknown optim.name'),
      ('sgd', {'momentun': 0.9},
       r'optim.kwargs.momentun: optax.sgd takes no such argument; it takes '
       r'momentum, nesterov'),
      ('adam', {'learning_rate': 0.1},
       r'optim.kwargs.learning_rate: set optim.lr and optim.schedule'),
      ('adamw', {'weight_decay': 0.1},
       r'optim.kwargs.weight_decay: set optim.weight_decay'))
  def test_errors_name_what_is_expected(self, name, kwargs, message):
    cfg = small_config()
    cfg.optim.name, cfg.optim.kwargs = name, kwargs
    with self.assertRaisesRegex(ValueError, message):
      optim.make_optimizer(cfg, 1)

  def test_unknown_schedule(self):
    cfg = small_config()
    cfg.optim.schedule = 'cosin'
    with self.assertRaisesRegex(ValueError,
                                'cosin.*constant, mmrec, cosine'):
      optim.make_optimizer(cfg, 1)


class ScheduleTest(absltest.TestCase):

  def test_mmrec_schedule_step_by_step(self):
    # LATTICE's and MGCN's setting: lr 1e-3, lr_decay (0.96, 50), i.e.
    # MMRec's LambdaLR lr * 0.96 ** (epoch / 50), stepped per epoch.
    cfg = small_config()
    cfg.optim.lr, cfg.optim.schedule = 1e-3, 'mmrec'
    cfg.optim.lr_decay = (0.96, 50.0)
    steps_per_epoch = 7
    schedule = optim.make_schedule(cfg, steps_per_epoch)
    for step in range(4 * steps_per_epoch):
      epoch = step // steps_per_epoch
      want = 1e-3 * 0.96 ** (epoch / 50)
      np.testing.assert_allclose(float(schedule(jnp.int32(step))), want,
                                 rtol=1e-6, err_msg=f'step {step}')
      self.assertAlmostEqual(optim.learning_rate(cfg, steps_per_epoch, step),
                             want, delta=want * 1e-6)
    # By hand: 0.96 ** (1 / 50) = exp(ln(0.96) / 50) = exp(-0.000816439)
    # = 0.99918389, cubed 0.99755368; epochs 1 and 3.
    np.testing.assert_allclose(float(schedule(7)), 9.9918389e-4, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(27)), 9.9755368e-4, rtol=1e-6)

  def test_mmrec_schedule_at_a_long_run_epoch_boundary(self):
    # 1e4 steps an epoch (2e7 interactions at batch 2048), epochs 199/200.
    cfg = small_config()
    cfg.optim.lr, cfg.optim.schedule = 1e-3, 'mmrec'
    cfg.optim.lr_decay = (0.5, 2.0)
    for step, epoch in ((1_999_999, 199), (2_000_000, 200), (0, 0)):
      np.testing.assert_allclose(
          optim.learning_rate(cfg, 10_000, step),
          1e-3 * 0.5 ** (epoch / 2), rtol=1e-5, err_msg=str(step))

  def test_learning_rate_is_a_host_value_under_the_transfer_guard(self):
    cfg = small_config()
    cfg.optim.schedule, cfg.optim.lr_decay = 'mmrec', (0.5, 1.0)
    with jax.transfer_guard('disallow'):
      self.assertAlmostEqual(optim.learning_rate(cfg, 4, 8), 0.25e-2,
                             delta=1e-9)

  def test_default_mmrec_decay_is_constant(self):
    cfg = small_config()
    cfg.optim.schedule = 'mmrec'  # lr_decay (1.0, 50.0): MMRec's default.
    for step in (0, 5, 300):
      self.assertAlmostEqual(optim.learning_rate(cfg, 3, step),
                             cfg.optim.lr, delta=1e-9)

  def test_constant_and_cosine(self):
    cfg = small_config()  # lr 1e-2, 2 epochs.
    self.assertAlmostEqual(optim.learning_rate(cfg, 5, 9), 1e-2, delta=1e-9)
    cfg.optim.schedule = 'cosine'
    for step in (0, 3, 5, 9):
      want = 0.5 * 1e-2 * (1 + math.cos(math.pi * step / 10))
      self.assertAlmostEqual(optim.learning_rate(cfg, 5, step), want,
                             delta=1e-8)


if __name__ == '__main__':
  absltest.main()
