r"""AttributeItemKNN: item kNN over an item representation (content-based).

Gantner, Rendle, Freudenthaler & Schmidt-Thieme, "MyMediaLite: a free
recommender system library" (RecSys 2011), the attribute-aware item kNN that
Elliot's AttributeItemKNN cites; MMRec's ItemKNNCBF is the same model after
Dacrema, Cremonesi & Jannach, "Are we really making much progress?" (RecSys
2019). Closed form (`fit`, no training loop).

With x_i the item's representation (any feature modality of the store: one-hot
keywords such as `keywords_qwen2_keywords`, or a dense MiniLM vector), R the
binary training matrix [U, I] and |x| the L2 norm:

  s_ij   = x_i . x_j / (|x_i| |x_j| + shrink)     (cosine; shrink 0: exact)
  N_k(i) = the k items with the largest s_ij, the item itself included
           unless `model.exclude_self`
  'candidate' (Elliot, default):  score(u, i) = sum_{j in N_k(i)} R_uj s_ij
  'history'   (MMRec):            score(u, i) = sum_j R_uj s_ji [i in N_k(j)]

Memory I * k: `fit` scores item blocks of `model.block_size` against all
items ([B, I] at a time) and keeps neighbours int32 [I, k] and weights
float32 [I, k]; `score` works as ItemKNN's (mmjax/models/itemknn.py).

Modalities: `model.modality` names one of ctx.features; empty uses them all,
concatenated in sorted order (MMRec concatenates its visual and textual
features the same way; with `features.transform='l2'` each modality weighs
the same in the cosine, with 'none' the raw vectors are joined, as MMRec).
Items lacking the modality (False in ctx.masks; the store's zero row): with one
modality they are nobody's neighbour and have no neighbours (their slots weigh
0), so they score 0; when concatenating, an item lacking every modality is
treated so, and one lacking only some keeps zeros in those parts (as MMRec's
concatenation of zero rows).

Defaults: Elliot's (`neighbors` 40, `shrink` 0, self included, 'candidate').
The `mmrec` variant of configs/attributeitemknn.py sets MMRec's
ItemKNNCBF.yaml: `neighbors` 10 (knn_k), `shrink` 10, direction 'history'.

Differences from the references:
  * Elliot (attribute_item_knn_similarity.py): the same 'candidate' scores,
    except that Elliot scores the ratings matrix unless `implicit: True` (we
    always use the binary matrix, implicit feedback), drops zero similarities
    before its top-k (a zero contributes nothing, so the scores agree) and
    builds the dense [I, I] cosine first; its attributes are always one-hot.
  * MMRec (itemknncbf.py): 'history' direction with self included and
    shrink in the denominator, the same; MMRec builds the dense [I, I]
    similarity and the dense [U, I] score matrix, and divides 0 by 0 into NaN
    for an item with a zero feature row (MMRec's datasets have none), where
    we give the item no neighbours.
  * Ties at the k-th neighbour go to the lower item id (`lax.top_k`); torch's
    and numpy's orders on ties are unspecified (one-hot attributes tie
    often, so a tied k-th neighbour, and with it a few scores, may differ).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from mmjax import types
from mmjax.models import context as ctx_lib
from mmjax.models import itemknn


def item_representation(ctx: ctx_lib.ModelContext, cfg: Any
                        ) -> tuple[types.Array, types.Array]:
  """The representation the similarity uses (module docstring).

  Returns:
    (float32 [I, F], bool [I] True where the item has it).

  Raises:
    ValueError: no feature in ctx, or `model.modality` is not one of them.
  """
  if not ctx.features:
    raise ValueError('attributeitemknn needs an item representation: set '
                     'features.sources, e.g. {"keywords": '
                     '"keywords_qwen2_keywords"}.')
  modality = cfg.modality or ''
  if modality:
    if modality not in ctx.features:
      raise ValueError(f'model.modality={modality!r} is not among the '
                       f'configured features {sorted(ctx.features)}.')
    names = [modality]
  else:
    names = sorted(ctx.features)
  x = jnp.concatenate(
      [jnp.asarray(ctx.features[m], jnp.float32) for m in names], axis=1)
  present = jnp.zeros((ctx.num_items,), bool)
  for m in names:
    present = present | jnp.asarray(ctx.masks[m], bool)
  return x, present


def fit(key: types.PRNGKey, ctx: ctx_lib.ModelContext, cfg: Any
        ) -> types.Params:
  """The top-k cosine neighbours of every item over its representation.

  Returns:
    {'neighbors': int32 [I, k], 'weights': float32 [I, k], 'graph'} as
    ItemKNN's `fit`.
  """
  del key  # Deterministic.
  x, present = item_representation(ctx, cfg)
  x = jnp.where(present[:, None], x, 0.0)
  sq_norms = jnp.sum(x * x, axis=1)  # [I]

  def dots(ids):  # [B] -> [B, I]
    return x[ids] @ x.T

  neighbors, weights = itemknn.topk_similarity(
      dots, sq_norms, present & (sq_norms > 0),
      int(cfg.neighbors),
      shrink=float(cfg.shrink), eps=0.0,
      exclude_self=bool(cfg.exclude_self),
      block_size=int(cfg.block_size))
  return itemknn.make_params(neighbors, weights, cfg)


def score(params: types.Params, ctx: ctx_lib.ModelContext,
          users: types.Array, cfg: Any) -> types.Array:
  """[U_b, I] neighbourhood scores of a user block (module docstring)."""
  hist = itemknn.user_history(ctx, users)
  return itemknn.neighbourhood_scores(hist, params['graph'])
