"""The optimiser of the `optim` config section: any optax optimiser by name.

  optim.name: an optax optimiser that takes a learning rate (`OPTIMIZERS`:
    adam, adamw, sgd, adagrad, rmsprop, lion, ...), called as
    `optax.<name>(schedule, **optim.kwargs)` (big_vision's `optax_name` and
    `optax` fields, with the learning rate kept apart).
  optim.kwargs: the optimiser's other arguments, e.g. {'b2': 0.99} for adam
    or {'momentum': 0.9, 'nesterov': True} for sgd; empty: optax's defaults.
    On the command line the section is one value:
    `--config.optim.kwargs="{'momentum': 0.9}"` (lock_config refuses new
    keys one at a time).
  optim.lr: the base learning rate.
  optim.weight_decay: for an optimiser with a `weight_decay` argument
    (adamw, lion, lamb, adan, ...) that argument (decoupled decay); for the
    others (adam, sgd, adagrad, ...) an L2 term added to the gradient before
    the optimiser, as torch's `weight_decay` does (MMRec's Adam).
  optim.clip_norm: clip the gradient by its global norm first (None: no
    clipping).
  optim.schedule: constant | mmrec | cosine
    mmrec: lr * a ** (epoch / b), (a, b) = optim.lr_decay, with epoch =
      step // steps_per_epoch: MMRec's `learning_rate_scheduler` (default
      [1.0, 50], i.e. constant) through torch's LambdaLR, stepped once per
      epoch. It is `optax.exponential_decay` with one transition per epoch,
      staircase, and decay rate a ** (1 / b).
    cosine: cosine decay to 0 over train.num_epochs.

Every schedule, the constant one included, is a callable, so the optimiser
state has the same structure whichever is chosen (a checkpoint resumes under
another schedule).
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import optax

SCHEDULES = ('constant', 'mmrec', 'cosine')

# The optax optimisers a config may name: those whose first argument is the
# learning rate and that take a schedule there (all present in optax 0.2.5,
# the oldest pyproject.toml allows; a fixed list, not discovered from
# `dir(optax)`, so that the names a
# config may use, and validate.py's copy, do not change with the installed
# optax). Left out: optimistic_adam, rprop and sm3 (no schedule), noisy_sgd
# (needs its own PRNG key), lbfgs (its update needs the loss function).
OPTIMIZERS = (
    'adabelief', 'adadelta', 'adafactor', 'adagrad', 'adam', 'adamax',
    'adamaxw', 'adamw', 'amsgrad', 'fromage', 'lamb', 'lars', 'lion',
    'novograd', 'radam', 'rmsprop', 'sgd', 'yogi')
# name -> optax function.
_OPTIMIZER_FNS = {name: getattr(optax, name) for name in OPTIMIZERS}


def make_schedule(cfg: Any, steps_per_epoch: int) -> optax.Schedule:
  """The learning-rate schedule of `cfg.optim` (see the module doc).

  Raises:
    ValueError: an unknown schedule.
  """
  lr = float(cfg.optim.lr)
  kind = cfg.optim.get('schedule', 'constant') or 'constant'
  if kind == 'constant':
    return optax.constant_schedule(lr)
  if kind == 'mmrec':
    a, b = (float(v) for v in cfg.optim.lr_decay)
    # The staircase floors step / steps_per_epoch in float32, exact while a
    # run has fewer than 2**24 steps (a 2e7-interaction dataset at batch
    # 2048 does 1e4 steps an epoch: 2e6 in 200 epochs).
    return optax.exponential_decay(
        init_value=lr, transition_steps=steps_per_epoch,
        decay_rate=a ** (1.0 / b), staircase=True)
  if kind == 'cosine':
    total = max(int(cfg.train.num_epochs) * steps_per_epoch, 1)
    return optax.cosine_decay_schedule(lr, total)
  raise ValueError(f'unknown optim.schedule {kind!r}; expected one of '
                   f'{", ".join(SCHEDULES)}.')


def learning_rate(cfg: Any, steps_per_epoch: int, step: int) -> float:
  """The learning rate of update `step` (0-based) under `cfg.optim`.

  A host value for the logs: the rate of epoch e's (1-based) last update is
  `learning_rate(cfg, steps_per_epoch, e * steps_per_epoch - 1)`. The optax
  schedule puts its scalars on the device, which is allowed here even inside
  a `jax.transfer_guard('disallow')` block.
  """
  with jax.transfer_guard('allow'):
    return float(make_schedule(cfg, steps_per_epoch)(step))


def optimizer_kwargs(cfg: Any) -> dict[str, Any]:
  """`cfg.optim.kwargs` checked against `optax.<cfg.optim.name>`.

  Raises:
    ValueError: an unknown optimiser, or an argument it does not take (or
      one that has its own field: learning_rate, weight_decay), naming the
      arguments it takes.
  """
  name = cfg.optim.name
  if name not in _OPTIMIZER_FNS:
    raise ValueError(f'unknown optim.name {name!r}; expected an optax '
                     f'optimiser: {", ".join(OPTIMIZERS)}.')
  kwargs = cfg.optim.get('kwargs', None) or {}
  kwargs = kwargs.to_dict() if hasattr(kwargs, 'to_dict') else dict(kwargs)
  params = inspect.signature(_OPTIMIZER_FNS[name]).parameters
  own = {'learning_rate': 'optim.lr and optim.schedule',
         'weight_decay': 'optim.weight_decay'}
  takes = [p for p in params if p not in own]
  for key in kwargs:
    if key in own:
      raise ValueError(f'optim.kwargs.{key}: set {own[key]} instead.')
    if key not in takes:
      raise ValueError(f'optim.kwargs.{key}: optax.{name} takes no such '
                       f'argument; it takes {", ".join(takes) or "none"}.')
  return kwargs


def make_optimizer(cfg: Any, steps_per_epoch: int
                   ) -> optax.GradientTransformation:
  """The optax transformation of `cfg.optim` (see the module doc).

  Raises:
    ValueError: an unknown optimiser or schedule, or a bad optim.kwargs.
  """
  kwargs = optimizer_kwargs(cfg)
  schedule = make_schedule(cfg, steps_per_epoch)
  fn = _OPTIMIZER_FNS[cfg.optim.name]
  wd = float(cfg.optim.get('weight_decay', 0.0) or 0.0)
  parts = []
  if cfg.optim.get('clip_norm', None):
    parts.append(optax.clip_by_global_norm(float(cfg.optim.clip_norm)))
  if 'weight_decay' in inspect.signature(fn).parameters:
    kwargs['weight_decay'] = wd
  elif wd:
    parts.append(optax.add_decayed_weights(wd))
  parts.append(fn(schedule, **kwargs))
  return optax.chain(*parts)
