"""Top-K accuracy metrics per user, computed on device from ranked gains.

Every function takes the gains of a user's ranked list, `gains` float
[U_b, K_max] (the gain of the item recommended at rank k, 0 when it is not
relevant), and returns one value per user, float [U_b]. A user's relevant
set is the held-out items of the split whose rating reaches the relevance
threshold t (all held-out items when t is None). Metrics are averaged on the
host over users with at least one relevant item.

Gains (`gain` in the eval config):
  binary: 1 for a relevant item.
  graded: 2^(r - t + 1) - 1 for a relevant item of rating r >= t
    (sisinflab/elliot elliot/evaluation/relevance/relevance.py,
    `DiscountedRelevance`); a rating equal to t has gain 1.

Where the two reference tools differ, `convention` picks one:

  MAP@K (the one real difference):
    mmrec: AP@K = sum_{k<=K} P@k * rel_k / min(|R|, K)
      (enoche/MMRec src/utils/metrics.py, `map_`).
    elliot: AP@K = (1/K) * sum_{k<=K} P@k, the mean of precision at every
      cut-off 1..K whether or not rank k is a hit
      (sisinflab/elliot elliot/evaluation/metrics/accuracy/map/map.py,
      `__user_ap` averages `__user_precision` over n in range(cutoff)).
  NDCG@K ideal cut: both cut the ideal list at min(|R|, K) (MMRec `ndcg_`
    clips `idcg_len` to the list length; Elliot `compute_idcg` takes
    `n = min(len(gains), cutoff)` of the gains sorted in decreasing order). The
    convention does not change it; it is pinned by a test for both.
  Graded gains: MMRec has binary gains only (`ndcg_` scores a hit with 1), so
    `gain='graded'` requires `convention='elliot'` (checked by the Evaluator).
  Recall@K = hits / |R| in both (MMRec `recall_`, Elliot `recall.py`);
  Precision@K = hits / K in both; HitRate@K and MRR@K (Elliot `hit_rate.py`,
  `mrr.py`; MMRec has neither) are the usual definitions.

The discount at rank k (1-based) is 1 / log2(k + 1) in both tools.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from mmjax import types

Array = types.Array

CONVENTIONS = ('mmrec', 'elliot')
NAMES = ('recall', 'ndcg', 'precision', 'hit', 'map', 'mrr')


def discounts(k: int) -> Array:
  """1 / log2(rank + 1) for ranks 1..k, float32 [k]."""
  return 1.0 / jnp.log2(jnp.arange(2, k + 2, dtype=jnp.float32))


def _safe_div(a: Array, b: Array) -> Array:
  # Users without a relevant item (padding rows, users without a cold item)
  # get 0 rather than NaN; the host excludes them by their relevant count.
  return jnp.where(b > 0, a / jnp.maximum(b, 1e-30), 0.0)


def recall(gains: Array, num_relevant: Array, k: int) -> Array:
  """Recall@K = |hits in top K| / |R|.

  Args:
    gains: float [U_b, K_max], K_max >= k, > 0 where rank is relevant.
    num_relevant: int or float [U_b], |R| per user.
    k: the cut-off.

  Returns:
    float32 [U_b].
  """
  hits = (gains[:, :k] > 0).sum(axis=1).astype(jnp.float32)
  return _safe_div(hits, num_relevant.astype(jnp.float32))


def precision(gains: Array, k: int) -> Array:
  """Precision@K = |hits in top K| / K. Shapes as `recall`."""
  return (gains[:, :k] > 0).sum(axis=1).astype(jnp.float32) / k


def hit_rate(gains: Array, k: int) -> Array:
  """HitRate@K = 1 if any of the top K is relevant, else 0. float32 [U_b]."""
  return (gains[:, :k] > 0).any(axis=1).astype(jnp.float32)


def mrr(gains: Array, k: int) -> Array:
  """MRR@K = 1 / (rank of the first relevant item in the top K), 0 if none."""
  hits = gains[:, :k] > 0
  first = jnp.argmax(hits, axis=1)  # [U_b], 0 when there is no hit.
  return jnp.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)


def ndcg(gains: Array, ideal_gains: Array, k: int) -> Array:
  """NDCG@K = DCG@K / IDCG@K.

  DCG@K = sum_{k'<=K} g_{k'} / log2(k' + 1), with g the gain at rank k'.
  IDCG@K = the same sum over the user's relevant gains sorted in decreasing
  order, cut at min(|R|, K) (both conventions).

  Args:
    gains: float [U_b, K_max], gain at each rank (0 when not relevant).
    ideal_gains: float [U_b, W], each user's relevant gains sorted in
      decreasing order and padded with 0 (W may be smaller or larger than k).
    k: the cut-off.

  Returns:
    float32 [U_b]; 0 for a user without relevant items.
  """
  dcg = (gains[:, :k] * discounts(k)[None, : gains[:, :k].shape[1]]).sum(1)
  ideal = ideal_gains[:, :k]
  idcg = (ideal * discounts(ideal.shape[1])[None]).sum(axis=1)
  return _safe_div(dcg, idcg)


def average_precision(
    gains: Array, num_relevant: Array, k: int, convention: str
) -> Array:
  """AP@K (MAP@K once averaged over users); see the module docstring.

  mmrec: sum_{k'<=K} P@k' * rel_{k'} / min(|R|, K).
  elliot: (1/K) * sum_{k'<=K} P@k'.

  Args:
    gains: float [U_b, K_max].
    num_relevant: [U_b], |R|.
    k: the cut-off.
    convention: 'mmrec' or 'elliot'.

  Returns:
    float32 [U_b].
  """
  hits = (gains[:, :k] > 0).astype(jnp.float32)
  ranks = jnp.arange(1, hits.shape[1] + 1, dtype=jnp.float32)
  prec_at = jnp.cumsum(hits, axis=1) / ranks[None]  # [U_b, k]: P@1..P@k.
  if convention == 'mmrec':
    denom = jnp.minimum(num_relevant.astype(jnp.float32), float(k))
    return _safe_div((prec_at * hits).sum(axis=1), denom)
  if convention == 'elliot':
    return prec_at.sum(axis=1) / k
  raise ValueError(f'convention must be one of {CONVENTIONS}, got '
                   f'{convention!r}.')


def compute(
    gains: Array,
    ideal_gains: Array,
    num_relevant: Array,
    ks: Sequence[int],
    convention: str,
) -> dict[str, Array]:
  """All accuracy metrics at every cut-off, named 'recall@20' and so on.

  Args:
    gains: float [U_b, K_max] with K_max >= max(ks).
    ideal_gains: float [U_b, W], relevant gains sorted in decreasing order.
    num_relevant: [U_b], |R|.
    ks: cut-offs.
    convention: 'mmrec' or 'elliot'.

  Returns:
    name -> float32 [U_b].
  """
  if convention not in CONVENTIONS:
    raise ValueError(f'convention must be one of {CONVENTIONS}, got '
                     f'{convention!r}.')
  assert gains.shape[1] >= max(ks), (gains.shape, ks)
  out = {}
  for k in ks:
    out[f'recall@{k}'] = recall(gains, num_relevant, k)
    out[f'ndcg@{k}'] = ndcg(gains, ideal_gains, k)
    out[f'precision@{k}'] = precision(gains, k)
    out[f'hit@{k}'] = hit_rate(gains, k)
    out[f'map@{k}'] = average_precision(gains, num_relevant, k, convention)
    out[f'mrr@{k}'] = mrr(gains, k)
  return out
