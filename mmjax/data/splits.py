"""Splits: one label (TRAIN / VALID / TEST) per interaction.

Kinds (a data config's `split`; its options `ratios`, `rounding`, `cutoffs`
and `cold_share` are fields beside it, see mmjax/data/datasets.py):
  random        per user, a seeded random share `ratios` (train, valid, test).
  chrono        per user, by timestamp (MMRec's 8:1:1 is ratios=(.8,.1,.1)).
  leave_last    per user: last -> test, second last -> valid (users with
                fewer than 3 interactions keep everything they can in train:
                2 -> train + test, 1 -> train).
  temporal      global cut: train below the first cut-off, valid below the
                second, test from it on. Cut-offs are the timestamp quantiles
                at the cumulative `ratios` (MMRec's 0rating2inter rule), or
                absolute timestamps `cutoffs=(t_valid, t_test)`.
  fixed         the labels that came with the source files.
  cold_item     a seeded share `cold_share` of items is held out entirely:
                half of them (rounded down) to valid, the rest to test; every
                interaction of the other items is train.

Per-user counts for `random` and `chrono` (`rounding`):
  'mmrec' (default) follows MMRec's preprocessing/1splitting.ipynb: a user
      with n < 10 interactions gets one valid and one test interaction; else
      held = floor(n * (ratios[1] + ratios[2])) interactions are held out,
      n_valid = floor(held * ratios[1] / (ratios[1] + ratios[2])) of them to
      valid and the rest to test (8:1:1, n = 25: held 5 -> 2 valid, 3 test).
  'round': n_valid = round(n * ratios[1]), n_test = round(n * ratios[2])
      (numpy's round-half-to-even).
Either way counts are capped so that at least one interaction stays in train
(n = 2: train + test; n = 1: train). Users are ordered by timestamp (chrono)
or by a seeded random key (random); ties in time are broken by the seeded
key, so the result is deterministic even for equal timestamps.

Cold handling (`cold`): after labelling, held-out interactions whose user or
item never occurs in train are `drop`ped (counted; the default of the warm
splits), or kept (`keep`, the default of `cold_item`, where cold items are the
point), or only cold users are dropped (`drop_users`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmjax.data import dataset as dataset_lib

TRAIN, VALID, TEST = dataset_lib.TRAIN, dataset_lib.VALID, dataset_lib.TEST
KINDS = ('random', 'chrono', 'leave_last', 'temporal', 'fixed', 'cold_item')
COLD = ('drop', 'keep', 'drop_users')
ROUNDING = ('mmrec', 'round')


def _positions(user: np.ndarray, order_key: np.ndarray, tie: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
  """Per interaction: its rank within the user by (key, tie), and user count."""
  order = np.lexsort((tie, order_key, user))
  counts = np.bincount(user)
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
  pos = np.empty(len(user), np.int64)
  pos[order] = np.arange(len(user)) - starts[user[order]]
  return pos, counts[user]


def _by_ratio(pos: np.ndarray, count: np.ndarray,
              ratios: tuple[float, float, float], rounding: str
              ) -> np.ndarray:
  """Labels by within-user rank: the last n_test test, n_valid before valid."""
  if rounding == 'mmrec':
    held_share = ratios[1] + ratios[2]
    held = np.floor(count * held_share + 1e-9).astype(np.int64)
    n_valid = (np.floor(held * ratios[1] / held_share + 1e-9).astype(np.int64)
               if held_share > 0 else np.zeros_like(held))
    n_test = held - n_valid
    small = count < 10
    n_valid = np.where(small, int(ratios[1] > 0), n_valid)
    n_test = np.where(small, int(ratios[2] > 0), n_test)
  elif rounding == 'round':
    n_valid = np.round(count * ratios[1]).astype(np.int64)
    n_test = np.round(count * ratios[2]).astype(np.int64)
  else:
    raise ValueError(f'rounding must be one of {ROUNDING}, got {rounding!r}.')
  # Keep at least one training interaction per user; valid gives way first,
  # so a user with two interactions still has a test one.
  overflow = np.maximum(n_valid + n_test - (count - 1), 0)
  cut_valid = np.minimum(overflow, n_valid)
  n_valid = n_valid - cut_valid
  n_test = np.maximum(n_test - (overflow - cut_valid), 0)
  n_train = count - n_valid - n_test
  label = np.full(len(pos), TRAIN, np.int8)
  label[pos >= n_train] = VALID
  label[pos >= n_train + n_valid] = TEST
  return label


def _check_ratios(ratios) -> tuple[float, float, float]:
  ratios = tuple(float(r) for r in ratios)
  if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6:
    raise ValueError(f'split ratios must be three non-negative numbers summing '
                     f'to 1, got {ratios}.')
  return ratios


def assign(user: np.ndarray, item: np.ndarray, timestamp: np.ndarray | None,
           fixed: np.ndarray | None, *, kind: str, seed: int,
           ratios=(0.8, 0.1, 0.1), cold_share: float = 0.2,
           rounding: str = 'mmrec', cutoffs=()) -> np.ndarray:
  """Labels every interaction; returns int8 [n].

  Args:
    user: int [n] ids (any dense ids).
    item: int [n] ids.
    timestamp: int [n] or None (needed by chrono, leave_last, temporal).
    fixed: int8 [n] labels from the source (needed by fixed).
    kind: one of KINDS.
    seed: drives every random choice.
    ratios: (train, valid, test) shares.
    cold_share: share of items held out by cold_item.
    rounding: per-user count rule of random and chrono (see module doc).
    cutoffs: () or absolute (t_valid, t_test) timestamps for temporal.
  """
  if kind not in KINDS:
    raise ValueError(f'unknown split kind {kind!r}; known: {KINDS}.')
  n = len(user)
  rng = np.random.default_rng([seed, 0x5B117])
  tie = rng.permutation(n)
  if kind == 'fixed':
    if fixed is None:
      raise ValueError("split kind 'fixed' needs split labels from the source "
                       '(MMRec x_label or Elliot train/val/test files).')
    return fixed.astype(np.int8)
  if kind in ('chrono', 'leave_last', 'temporal') and timestamp is None:
    raise ValueError(f'split kind {kind!r} needs timestamps; the source has '
                     'none.')
  if kind == 'random':
    pos, count = _positions(user, np.zeros(n, np.int64), tie)
    return _by_ratio(pos, count, _check_ratios(ratios), rounding)
  if kind == 'chrono':
    pos, count = _positions(user, timestamp, tie)
    return _by_ratio(pos, count, _check_ratios(ratios), rounding)
  if kind == 'leave_last':
    pos, count = _positions(user, timestamp, tie)
    label = np.full(n, TRAIN, np.int8)
    label[(pos == count - 1) & (count >= 2)] = TEST
    label[(pos == count - 2) & (count >= 3)] = VALID
    return label
  if kind == 'temporal':
    if cutoffs:
      if len(cutoffs) != 2 or cutoffs[0] > cutoffs[1]:
        raise ValueError('temporal cutoffs must be (t_valid, t_test) with '
                         f't_valid <= t_test, got {tuple(cutoffs)}.')
      q1, q2 = cutoffs
    else:
      r = _check_ratios(ratios)
      q1, q2 = np.quantile(timestamp, [r[0], r[0] + r[1]])
    label = np.full(n, TEST, np.int8)
    label[timestamp < q2] = VALID
    label[timestamp < q1] = TRAIN
    return label
  # cold_item
  if not 0 < cold_share < 1:
    raise ValueError(f'cold_share must lie in (0, 1), got {cold_share}.')
  items = np.unique(item)
  held = rng.permutation(items)[:max(2, int(round(len(items) * cold_share)))]
  to_valid = held[:len(held) // 2]
  label = np.full(n, TRAIN, np.int8)
  label[np.isin(item, held)] = TEST
  label[np.isin(item, to_valid)] = VALID
  return label


def handle_cold(user: np.ndarray, item: np.ndarray, label: np.ndarray,
                policy: str, steps: list[dict[str, Any]]) -> np.ndarray:
  """Returns a keep mask [n] for held-out interactions of cold users/items."""
  if policy not in COLD:
    raise ValueError(f'cold must be one of {COLD}, got {policy!r}.')
  train = label == TRAIN
  warm_user = np.zeros(user.max() + 1, bool)
  warm_user[user[train]] = True
  warm_item = np.zeros(item.max() + 1, bool)
  warm_item[item[train]] = True
  held = ~train
  cold_user = held & ~warm_user[user]
  cold_item = held & ~warm_item[item]
  steps.append({'step': 'cold_in_heldout', 'policy': policy,
                'cold_user_interactions': int(cold_user.sum()),
                'cold_item_interactions': int(cold_item.sum()),
                'cold_users': len(np.unique(user[cold_user])),
                'cold_items': len(np.unique(item[cold_item])),
                'removed': 0})
  if policy == 'keep':
    return np.ones(len(user), bool)
  drop = cold_user if policy == 'drop_users' else cold_user | cold_item
  steps[-1]['removed'] = int(drop.sum())
  return ~drop


def options(kind: str, *, ratios=(0.8, 0.1, 0.1), rounding: str = 'mmrec',
            cutoffs=(), cold_share: float = 0.2) -> dict[str, Any]:
  """The options of `assign` that shape a split of `kind` (for summaries).

  A fixed or leave_last split uses none of them; a temporal one its cutoffs,
  or the ratios when it has none.
  """
  if kind in ('random', 'chrono'):
    return {'ratios': list(ratios), 'rounding': rounding}
  if kind == 'temporal':
    return {'cutoffs': list(cutoffs)} if cutoffs else {'ratios': list(ratios)}
  if kind == 'cold_item':
    return {'cold_share': cold_share}
  return {}
