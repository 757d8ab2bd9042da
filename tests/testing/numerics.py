"""Comparisons of rankings that hold on any CPU model and device count.

A float32 score computed on device and its float64 numpy reference, or the
same score computed on 1 and on 8 devices, differ by a few ulps, and by how
much depends on the CPU model and on XLA's reduction order. Two rankings of
such scores agree only where the scores are further apart than that error:
near-ties may come out in either order (16 of 370 top items differed on an
Intel CPU in a test that passed on AMD). So a test compares item ids exactly
only where the reference scores are separated by more than a stated
tolerance, and elsewhere checks that the chosen items score as high as the
reference's, within it. Exact ties are not near-ties of this kind: the
evaluator orders them by a seeded key, and tests that plant them build
scores that are exact in float32.
"""

import numpy as np


def _desc(scores: np.ndarray) -> np.ndarray:
  return -np.sort(-np.asarray(scores, np.float64), axis=1)


def topk_margin(scores: np.ndarray, k: int, ordered: bool = True
                ) -> np.ndarray:
  """Per row, how far the top k is from changing under small errors.

  Args:
    scores: [R, I] reference scores; -inf marks excluded items.
    k: the list length.
    ordered: True: the smallest gap between neighbours among the k + 1
      largest scores (the order of the top k is fixed); False: only the gap
      between the k-th and the (k + 1)-th (the set is fixed).

  Returns:
    float64 [R]. A perturbation of every score by less than half the margin
    leaves the row's top k unchanged. Gaps next to -inf, and rows with at
    most k finite scores, count as infinite (nothing to choose).
  """
  desc = _desc(scores)[:, :k + 1]
  if desc.shape[1] <= k:
    return np.full(len(desc), np.inf)
  with np.errstate(invalid='ignore'):
    gaps = desc[:, :-1] - desc[:, 1:]
  gaps = np.where(np.isfinite(desc[:, 1:]), gaps, np.inf)
  return gaps.min(axis=1) if ordered else gaps[:, k - 1]


def assert_same_ranking(got: np.ndarray, scores: np.ndarray, atol: float,
                        err_msg: str = '') -> np.ndarray:
  """Asserts `got` is a descending top-K of `scores`, up to near-ties.

  Each row of `got` must hold distinct items whose reference scores equal,
  within `atol`, the K largest reference scores in order. Where a reference
  score is more than 2 * atol from every other, this pins the item id: so
  wherever the reference leaves no near-tie, the ids are compared exactly.

  Args:
    got: int [R, K] ranked item ids.
    scores: [R, I] reference scores (float64 is best); -inf for excluded
      items.
    atol: the numerical error allowed between the two computations.
    err_msg: prefix of the failure message.

  Returns:
    bool [R]: rows whose top K the reference fixes (margin > 2 * atol), so
    that `got` equals the reference's ids there. Tests assert that most rows
    are fixed, so that a weak tolerance cannot hide a wrong ranking.
  """
  got = np.asarray(got)
  scores = np.asarray(scores, np.float64)
  r, k = got.shape
  assert scores.shape[0] == r, (scores.shape, got.shape)
  for row in range(r):
    assert len(set(got[row].tolist())) == k, (
        f'{err_msg} row {row}: repeated items {got[row]}')
  np.testing.assert_allclose(
      np.take_along_axis(scores, got, axis=1), _desc(scores)[:, :k],
      rtol=0, atol=atol, err_msg=f'{err_msg} scores of the ranked items')
  fixed = topk_margin(scores, k) > 2 * atol
  want = np.argsort(-scores, axis=1, kind='stable')[:, :k]
  np.testing.assert_array_equal(got[fixed], want[fixed],
                                err_msg=f'{err_msg} ids where no near-tie')
  return fixed


def recall_bounds(scores: np.ndarray, held: np.ndarray, k: int,
                  atol: float) -> tuple[float, float]:
  """Recall@k of one user, as low and as high as near-ties allow.

  Items scoring more than `atol` above the k-th largest score are in the top
  k whatever the numerical error; items more than `atol` below it are out.
  The items in between may go either way.

  Args:
    scores: [I] reference scores; -inf for excluded items.
    held: int [n] relevant items.
    k: the cut-off.
    atol: the numerical error allowed.

  Returns:
    (low, high); equal when no relevant item is near the cut-off.
  """
  scores = np.asarray(scores, np.float64)
  finite = np.isfinite(scores)
  kth = -np.sort(-scores)[min(k, len(scores)) - 1]
  if not np.isfinite(kth):  # Fewer than k candidates: all are ranked.
    sure = possible = finite
  else:
    sure = scores > kth + atol
    possible = finite & (scores >= kth - atol)
  held = np.asarray(held)
  return (float(np.mean(sure[held])) if len(held) else 0.0,
          float(np.mean(possible[held])) if len(held) else 0.0)
