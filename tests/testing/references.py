"""Loop-based and dense re-implementations that the tests compare against."""

import math

import numpy as np


def ranking_metrics(ranked, relevant, k, convention):
  """Loop-based metrics of one user (PAIR evaluation_metrics.py style).

  Args:
    ranked: item ids, best first.
    relevant: dict item -> gain (> 0).
    k: cut-off.
    convention: 'mmrec' or 'elliot'.
  """
  top = list(ranked[:k])
  hit = [1.0 if i in relevant else 0.0 for i in top]
  n_hit = sum(hit)
  prec = [sum(hit[: j + 1]) / (j + 1) for j in range(k)]
  dcg = sum(relevant.get(i, 0.0) / math.log2(j + 2) for j, i in enumerate(top))
  ideal = sorted(relevant.values(), reverse=True)[:k]
  idcg = sum(g / math.log2(j + 2) for j, g in enumerate(ideal))
  first = next((j for j, h in enumerate(hit) if h), None)
  if convention == 'mmrec':
    ap = sum(p * h for p, h in zip(prec, hit)) / min(len(relevant), k)
  else:
    ap = sum(prec) / k
  return {
      f'recall@{k}': n_hit / len(relevant),
      f'precision@{k}': n_hit / k,
      f'hit@{k}': float(n_hit > 0),
      f'ndcg@{k}': dcg / idcg,
      f'mrr@{k}': 0.0 if first is None else 1 / (first + 1),
      f'map@{k}': ap,
  }


# --- ItemKNN with dense [I, I] matrices.


def itemknn_cosine(r, shrink, eps):
  """Shrunk cosine similarity of the items of `r` [U, I], and which have any
  interaction."""
  c = r.T @ r
  n = np.sqrt(np.diag(c))
  den = n[:, None] * n[None, :] + shrink + eps
  return c / np.where(den > 0, den, 1.0), n > 0


def itemknn_topk(sim, k, valid, exclude_self=True):
  """Dense top-k per row, ties to the lower id; -inf slots weigh 0."""
  sim = np.array(sim, np.float64)
  sim[~valid, :] = -np.inf
  sim[:, ~valid] = -np.inf
  if exclude_self:
    np.fill_diagonal(sim, -np.inf)
  order = np.argsort(-sim, axis=1, kind='stable')[:, :k]
  vals = np.take_along_axis(sim, order, axis=1)
  return order, np.where(np.isfinite(vals), vals, 0.0)


def itemknn_scores(r, nbr, w, direction='candidate', classic=False):
  """Scores [U, I] of users `r` [U, I] from each item's neighbours `nbr` and
  weights `w` [I, k]; `classic` divides by the summed weights."""
  num_items = r.shape[1]
  s = np.zeros((num_items, num_items))  # s[i, j]: j in N_k(i)
  for i in range(num_items):
    for j, v in zip(nbr[i], w[i]):
      s[i, j] += v
  out = r @ s.T if direction == 'candidate' else r @ s
  if classic:
    den = w.sum(1)
    out = np.where(den != 0, out / np.where(den != 0, den, 1.0), 0.0)
  return out
