"""MostPop: every user gets the items ranked by training popularity.

Closed form (`fit`): the score of item i is its number of training
interactions, the same for every user. Ties (common among rare items) are
broken by the evaluator's seeded key, never by item id. Training items are
masked by the evaluator, so a user is never recommended an item already seen.
Same as MMRec's and Elliot's MostPop, except for the seeded tie-break
(Elliot sorts by popularity and then id; MMRec's top-k prefers low ids).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from mmjax import types
from mmjax.models import context as ctx_lib


def fit(key: types.PRNGKey, ctx: ctx_lib.ModelContext, cfg: Any
        ) -> types.Params:
  del key, cfg
  return {'popularity': jnp.asarray(ctx.item_popularity, jnp.float32)}


def score(params: types.Params, ctx: ctx_lib.ModelContext,
          users: types.Array, cfg: Any) -> types.Array:
  """[U_b, I]: the popularity row, repeated for each user."""
  del ctx, cfg
  pop = params['popularity']
  return jnp.broadcast_to(pop[None, :], (users.shape[0], pop.shape[0]))


def embed(params: types.Params, ctx: ctx_lib.ModelContext, cfg: Any
          ) -> tuple[types.Array, types.Array]:
  """A one-dimensional factorisation of `score`: users 1, items popularity."""
  del cfg
  pop = params['popularity']
  return jnp.ones((ctx.num_users, 1), jnp.float32), pop[:, None]
