"""Building blocks shared by the models: initialisers, feature access, losses.

Each mirrors the PyTorch call the references use (named in its docstring), so
a model written against them initialises and normalises as MMRec does.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types


def modalities(ctx: Any) -> list[tuple[types.Array, types.Array]]:
  """(features [I, F_m], mask [I]) per modality, in the context's order."""
  names = list(ctx.features)
  if not names:
    raise ValueError('this model needs at least one item feature modality.')
  return [(ctx.features[n], ctx.masks[n]) for n in names]


def xavier_uniform(key: types.PRNGKey, shape: tuple[int, int]) -> types.Array:
  """torch.nn.init.xavier_uniform_ for a [fan_a, fan_b] matrix."""
  bound = (6.0 / (shape[0] + shape[1])) ** 0.5
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def xavier_normal(key: types.PRNGKey, shape: tuple[int, int]) -> types.Array:
  """torch.nn.init.xavier_normal_ for a [fan_a, fan_b] matrix."""
  std = (2.0 / (shape[0] + shape[1])) ** 0.5
  return std * jax.random.normal(key, shape, jnp.float32)


def linear_init(key: types.PRNGKey, in_dim: int, out_dim: int) -> dict:
  """torch.nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)), W and b."""
  bound = 1.0 / max(in_dim, 1) ** 0.5
  k_w, k_b = jax.random.split(key)
  return {
      'w': jax.random.uniform(k_w, (in_dim, out_dim), jnp.float32, -bound,
                              bound),
      'b': jax.random.uniform(k_b, (out_dim,), jnp.float32, -bound, bound),
  }


def l2_normalize(x: types.Array, eps: float = 1e-12) -> types.Array:
  """torch.nn.functional.normalize(x, p=2, dim=-1)."""
  sq = jnp.sum(x * x, axis=-1, keepdims=True)
  # sqrt at 0 has an infinite derivative; a zero row (an item without
  # content, zero bias at init) must not turn the gradient into NaN.
  norm = jnp.sqrt(jnp.maximum(sq, eps * eps))
  return x / norm


def weighted_mean(x: types.Array, weight: types.Array) -> types.Array:
  """sum(w x) / max(sum(w), 1): the mean over real (unpadded) rows."""
  return jnp.sum(weight * x) / jnp.maximum(weight.sum(), 1.0)


def bpr_logsigmoid(
    s_pos: types.Array, s_neg: types.Array, mask: types.Array
) -> types.Array:
  """-log sigmoid(s_pos - s_neg), mean over the k negatives, then the rows.

  FREEDOM's and LATTICE's own `bpr_loss` (no 1e-10 inside the log).

  Args:
    s_pos: [B] positive scores.
    s_neg: [B, k] negative scores.
    mask: float32 [B], 1 for real rows.
  """
  per = -jax.nn.log_sigmoid(s_pos[:, None] - s_neg).mean(axis=1)
  return weighted_mean(per, mask)
