"""The train state: arrays only (big_vision style), trivially checkpointed.

Unlike flax's TrainState it holds no `apply_fn`/`tx` and no key: the model and
the optimiser are closed over by the step factory, and keys are regenerated
from (seed, step), so a restored state continues exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import optax

from mmjax import types


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
  """step int32 [], params (pytree), opt_state (optax state pytree)."""

  step: types.Array
  params: types.Params
  opt_state: optax.OptState


def create_train_state(model: Any, tx: optax.GradientTransformation,
                       key: types.PRNGKey, ctx: Any, model_cfg: Any
                       ) -> TrainState:
  """Initial state; jit it (STYLE.md: no eager set-up under the guard).

  `model_cfg` is the model's own section (`cfg.model`).
  """
  params = model.init(key, ctx, model_cfg)
  return TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params,
                    opt_state=tx.init(params))
