"""Optimisers from the `optim` config section (optax).

  optim.name: adam | adamw | sgd
  optim.lr: base learning rate
  optim.weight_decay: adam/sgd: coupled L2 added to the gradient (torch's
    `weight_decay`, what MMRec's Adam uses); adamw: decoupled decay.
  optim.clip_norm: clip by global norm first (None: no clipping)
  optim.schedule: constant | mmrec | cosine
    mmrec: lr * a ** (epoch / b), (a, b) = optim.lr_decay; MMRec's
      `learning_rate_scheduler` (default [1.0, 50], i.e. constant), applied
      per epoch through torch's LambdaLR: the rate is constant within an
      epoch, epoch = step // steps_per_epoch.
    cosine: cosine decay to 0 over train.num_epochs.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax


def make_schedule(cfg: Any, steps_per_epoch: int) -> optax.Schedule:
  """The learning-rate schedule of `cfg.optim` (see the module doc)."""
  lr = float(cfg.optim.lr)
  kind = cfg.optim.get('schedule', 'constant') or 'constant'
  if kind == 'constant':
    return optax.constant_schedule(lr)
  if kind == 'mmrec':
    a, b = (float(v) for v in cfg.optim.lr_decay)

    def schedule(step):
      epoch = (step // steps_per_epoch).astype(jnp.float32)
      return lr * a ** (epoch / b)

    return schedule
  if kind == 'cosine':
    total = max(int(cfg.train.num_epochs) * steps_per_epoch, 1)
    return optax.cosine_decay_schedule(lr, total)
  raise ValueError(f'unknown optim.schedule {kind!r}; use constant, mmrec or '
                   'cosine.')


def make_optimizer(cfg: Any, steps_per_epoch: int
                   ) -> optax.GradientTransformation:
  """The optax transformation of `cfg.optim`.

  Raises:
    ValueError: an unknown optimiser or schedule.
  """
  schedule = make_schedule(cfg, steps_per_epoch)
  name = cfg.optim.name
  wd = float(cfg.optim.get('weight_decay', 0.0) or 0.0)
  parts = []
  if cfg.optim.get('clip_norm', None):
    parts.append(optax.clip_by_global_norm(float(cfg.optim.clip_norm)))
  if name == 'adam':
    if wd:
      parts.append(optax.add_decayed_weights(wd))
    parts.append(optax.adam(schedule))
  elif name == 'adamw':
    parts.append(optax.adamw(schedule, weight_decay=wd))
  elif name == 'sgd':
    if wd:
      parts.append(optax.add_decayed_weights(wd))
    parts.append(optax.sgd(schedule))
  else:
    raise ValueError(f'unknown optim.name {name!r}; use adam, adamw or sgd.')
  return optax.chain(*parts)
