"""Beyond-accuracy metrics: coverage, Gini, EPC novelty, ARP, APLT.

Definitions follow sisinflab/elliot (elliot/evaluation/metrics/novelty/EPC,
bias/arp, bias/aplt, diversity/gini_index, coverage/item_coverage, and
elliot/evaluation/popularity). Item popularity pop(i) is the number of
distinct users with i in their training history.

Per user (computed on device, `top_items` int [U_b, K_max]):
  ARP@K  = (1/K) sum_{k<=K} pop(i_k).
  APLT@K = (1/K) |{k <= K : i_k in the long tail}|.
  EPC@K  = sum_{k<=K} rel(i_k) disc(k) (1 - pop(i_k)/U_train)
           / sum_{k<=K} disc(k),
    disc(k) = 1/log2(k + 1), rel binary, U_train = users with a training
    interaction (Elliot's `EPC`: relevance-aware, rank-discounted).

Like every metric here, the per-user values are averaged over the evaluated
users (those with at least one relevant held-out item); Elliot averages ARP
and APLT over every user it recommends to, which differs only when some users
have no relevant held-out item.

Over all evaluated users (on the host, from the top-K lists):
  coverage@K = |union of the users' top K| / I.
  gini@K = sum_{j=1..I} (2j - I - 1) c_(j) / ((I - 1) sum_j c_j), where c_(j)
    are the per-item recommendation counts in the top K sorted ascending
    (unrecommended items count 0): 0 when every item is recommended equally
    often, 1 when one item takes every slot.

Long tail: items sorted by decreasing pop are added to the short head until
their cumulative popularity reaches `head_share` of all training
interactions (Elliot `Popularity.get_short_head`, `pop_ratio` = 0.8 by
default); every other item, including items without training interactions, is
in the long tail.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from mmjax import types
from mmjax.eval import metrics

Array = types.Array


def item_popularity(
    user: np.ndarray, item: np.ndarray, num_items: int
) -> np.ndarray:
  """Distinct users per item, int64 [I], from training (user, item) pairs."""
  if len(user) == 0:
    return np.zeros(num_items, np.int64)
  pairs = np.unique(user.astype(np.int64) * num_items + item)
  return np.bincount(pairs % num_items, minlength=num_items).astype(np.int64)


def long_tail_mask(pop: np.ndarray, head_share: float = 0.8) -> np.ndarray:
  """bool [I]: True for long-tail items (see the module docstring).

  Ties in popularity are ordered by item id, so the split is deterministic.
  """
  if not 0.0 < head_share <= 1.0:
    raise ValueError(f'head_share must be in (0, 1], got {head_share}.')
  order = np.lexsort((np.arange(len(pop)), -pop))  # Decreasing popularity.
  total = pop.sum()
  tail = np.ones(len(pop), bool)
  if total == 0:
    return tail
  cum = np.cumsum(pop[order])
  # The head takes items up to and including the first that reaches the share.
  n_head = int(np.searchsorted(cum, head_share * total, side='left')) + 1
  tail[order[:n_head]] = False
  return tail


def novelty(pop: np.ndarray, num_train_users: int) -> np.ndarray:
  """float32 [I]: 1 - pop(i) / U_train, EPC's per-item novelty."""
  return (1.0 - pop / max(num_train_users, 1)).astype(np.float32)


def compute(top_items: Array, gains: Array, pop: Array, tail: Array,
            nov: Array, ks: Sequence[int]) -> dict[str, Array]:
  """ARP, APLT and EPC at every cut-off, named 'arp@20' and so on.

  The per-user formulas of the module docstring, from one gather per item
  statistic and sums over the top k of every cut-off at once, as in
  `metrics.compute` (few ops to compile, whatever the cut-offs).

  Args:
    top_items: int [U_b, K_max], K_max >= max(ks).
    gains: float [U_b, K_max], > 0 where the item is relevant.
    pop: float [I]; tail: bool [I]; nov: float [I] (`novelty`).
    ks: cut-offs.

  Returns:
    name -> float32 [U_b].
  """
  ks = tuple(int(k) for k in ks)
  k_max = max(ks)
  top = top_items[:, :k_max]
  cut = jnp.asarray(ks, jnp.float32)[None]
  disc = metrics.discounts(k_max)
  rel = (gains[:, :k_max] > 0).astype(jnp.float32)
  columns = {
      'arp': metrics.prefix_sums(pop[top].astype(jnp.float32), ks) / cut,
      'aplt': metrics.prefix_sums(tail[top].astype(jnp.float32), ks) / cut,
      'epc': (metrics.prefix_sums(rel * disc[None] * nov[top], ks)
              / metrics.prefix_sums(disc[None], ks)),
  }
  return {f'{name}@{k}': columns[name][:, j]
          for j, k in enumerate(ks) for name in ('arp', 'aplt', 'epc')}


def coverage(top_items: np.ndarray, num_items: int, k: int) -> float:
  """Share of the catalogue in at least one user's top K (host, float)."""
  if len(top_items) == 0:
    return 0.0
  return len(np.unique(top_items[:, :k])) / num_items


def gini(top_items: np.ndarray, num_items: int, k: int) -> float:
  """Gini index of the recommendation counts in the top K (host, float)."""
  counts = np.sort(
      np.bincount(top_items[:, :k].ravel(), minlength=num_items)
  ).astype(np.float64)
  n = num_items
  if n < 2 or counts.sum() == 0:
    return 0.0
  j = np.arange(1, n + 1, dtype=np.float64)
  return float(((2 * j - n - 1) * counts).sum() / ((n - 1) * counts.sum()))
