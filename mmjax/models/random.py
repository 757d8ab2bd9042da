"""Random: every user gets uniformly random scores, seeded (a floor baseline).

Closed form (`fit`, no training): params hold only the key `fit` is given,
the run's init key `fold_in(key(seed), STREAM_INIT)`. The score of user u is
a row of I uniform draws from the key `fold_in(<that key>, u)`, so a user's
scores depend on the seed and the user id only: not on the block size, the block's other
users, the device count or the evaluation epoch. The evaluator masks training
items, so Recall@K is about K / I per relevant item (K / (number of unmasked
items), exactly, in expectation).

Same as Elliot's Random (a seeded shuffle of the unseen items); MMRec has no
Random model. Elliot draws from numpy's global generator seeded once per run,
so its ranking of a user depends on the order users are served in.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types
from mmjax.models import context as ctx_lib


def fit(key: types.PRNGKey, ctx: ctx_lib.ModelContext, cfg: Any
        ) -> types.Params:
  """{'key': uint32 [2]}: the data of `key`, the run's init key."""
  del ctx, cfg
  return {'key': jax.random.key_data(key)}


def score(params: types.Params, ctx: ctx_lib.ModelContext,
          users: types.Array, cfg: Any) -> types.Array:
  """float32 [U_b, I] in [0, 1): one seeded stream per user id."""
  del cfg
  key = jax.random.wrap_key_data(params['key'])

  def row(user):
    return jax.random.uniform(jax.random.fold_in(key, user),
                              (ctx.num_items,), jnp.float32)

  return jax.vmap(row)(users)
