"""Top-K accuracy metrics per user, computed on device from ranked gains.

`compute` takes the gains of a user's ranked list, `gains` float
[U_b, K_max] (the gain of the item recommended at rank k, 0 when it is not
relevant), and returns one value per user, float [U_b], for every metric
and cut-off. A user's relevant
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

import jax
import jax.numpy as jnp
import numpy as np

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


def prefix_sums(x: Array, ks: Sequence[int]) -> Array:
  """[U, n_ks]: the sum of each row's first k entries (all, if fewer), per k.

  A product with the 0/1 matrix M[r, j] = (r < ks[j]); HIGHEST precision
  keeps float32 sums exact on accelerators whose default is lower.
  """
  ranks = np.arange(x.shape[1])[:, None]
  upto = (ranks < np.asarray(list(ks))[None]).astype(np.float32)
  return jnp.dot(x, upto, precision=jax.lax.Precision.HIGHEST)


def compute(
    gains: Array,
    ideal_gains: Array,
    num_relevant: Array,
    ks: Sequence[int],
    convention: str,
) -> dict[str, Array]:
  """All accuracy metrics at every cut-off, named 'recall@20' and so on.

  With hits the ranks whose gain is > 0 and |R| = num_relevant:
    recall@K = |hits in top K| / |R|; precision@K = |hits in top K| / K;
    hit@K = 1 if any of the top K is a hit; mrr@K = 1 / (rank of the first
    hit), 0 without one in the top K;
    ndcg@K = DCG@K / IDCG@K, DCG@K = sum_{k'<=K} g_{k'} / log2(k' + 1),
    IDCG@K the same over `ideal_gains` cut at min(W, K);
    map@K: AP@K of the convention (module docstring).
  Users without a relevant item get 0.

  All cut-offs in one pass: sums over the top k of every cut-off k at once,
  as products with 0/1 matrices (`prefix_sums`). Why: the evaluation
  program computes these for accuracy and again for cold items, at three
  cut-offs; one reduction per metric and cut-off (or a cumulative sum per
  quantity) cost XLA:CPU 1-2 s to compile on every cold start, for [U_b, K]
  work that runs in microseconds; a small matmul compiles in milliseconds.
  Counts (recall, precision, hit, MRR) are exact; sums of discounted gains
  may differ from a sum in another order in the last float32 bits.

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
  ks = tuple(int(k) for k in ks)
  k_max = max(ks)
  assert gains.shape[1] >= k_max, (gains.shape, ks)
  gains = gains[:, :k_max].astype(jnp.float32)
  cut = jnp.asarray(ks, jnp.float32)[None]  # [1, n_ks]
  hits = (gains > 0).astype(jnp.float32)
  hits_at = prefix_sums(hits, ks)  # [U_b, n_ks]: hits in the top k.
  num_rel = num_relevant.astype(jnp.float32)[:, None]
  dcg_at = prefix_sums(gains * discounts(k_max)[None], ks)
  # The ideal list cut at min(W, k) (`prefix_sums` stops at the list's end).
  ideal = ideal_gains[:, :k_max].astype(jnp.float32)
  idcg_at = prefix_sums(ideal * discounts(ideal.shape[1])[None], ks)
  first = jnp.argmax(hits, axis=1)[:, None]  # First hit's rank - 1.
  # P@1..P@K_max: hits in the top r over r.
  prec = (prefix_sums(hits, range(1, k_max + 1))
          / jnp.arange(1, k_max + 1, dtype=jnp.float32)[None])
  if convention == 'mmrec':
    ap_at = _safe_div(prefix_sums(prec * hits, ks), jnp.minimum(num_rel, cut))
  else:
    ap_at = prefix_sums(prec, ks) / cut
  columns = {
      'recall': _safe_div(hits_at, num_rel),
      'ndcg': _safe_div(dcg_at, idcg_at),
      'precision': hits_at / cut,
      'hit': (hits_at > 0).astype(jnp.float32),
      'map': ap_at,
      'mrr': jnp.where(hits_at > 0, 1.0 / (first + 1.0), 0.0),
  }
  return {f'{name}@{k}': columns[name][:, j]
          for j, k in enumerate(ks) for name in NAMES}
