"""Preprocessing: `RawData` -> filtered interactions -> `Dataset`.

Every step is recorded as a manifest entry `{'step': name, 'removed': count,
...parameters}`, so nothing is dropped silently. Steps, in order:

  restrict_items      keep only a given set of raw item ids (e.g. ml-lvlm).
  implicit_threshold  keep interactions with rating >= t (None: keep all).
  require_modalities  drop items lacking a required item-table field or
                      feature row.
  deduplicate         keep one interaction per (user, item): the latest by
                      timestamp, else the last read.
  k_core              iterate user and item minimum counts to a fixed point.
  remap               contiguous int32 ids assigned by a seeded permutation,
                      never by popularity or first appearance.

Everything is vectorised numpy (np.unique / bincount), so 10M interactions
take seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import numpy as np

from mmjax.data import dataset as dataset_lib

DataError = dataset_lib.DataError


@dataclasses.dataclass
class Interactions:
  """Interactions with dense *provisional* ids, before the final remap.

  user/item index into user_raw/item_raw; rows are kept in source order.
  """

  user: np.ndarray
  item: np.ndarray
  user_raw: np.ndarray
  item_raw: np.ndarray
  rating: np.ndarray | None
  timestamp: np.ndarray | None
  split: np.ndarray | None

  def __len__(self) -> int:
    return len(self.user)

  def take(self, keep: np.ndarray) -> Interactions:
    pick = lambda a: None if a is None else a[keep]  # noqa: E731
    return dataclasses.replace(
        self, user=self.user[keep], item=self.item[keep],
        rating=pick(self.rating), timestamp=pick(self.timestamp),
        split=pick(self.split))


def from_raw(raw: dataset_lib.RawData) -> Interactions:
  """Indexes raw string ids (sorted unique order, provisional)."""
  user_raw, user = np.unique(raw.users, return_inverse=True)
  item_raw, item = np.unique(raw.items, return_inverse=True)
  return Interactions(
      user=user.astype(np.int64), item=item.astype(np.int64),
      user_raw=user_raw, item_raw=item_raw, rating=raw.rating,
      timestamp=raw.timestamp, split=raw.split)


def implicit_threshold(x: Interactions, threshold: float | None,
                       steps: list[dict[str, Any]]) -> Interactions:
  if threshold is None:
    return x
  if x.rating is None:
    raise DataError(f'implicit_threshold={threshold} needs ratings; the source '
                    'has none. Set it to None.')
  keep = x.rating >= threshold
  steps.append({'step': 'implicit_threshold', 'threshold': float(threshold),
                'removed': int((~keep).sum())})
  return x.take(keep)


def restrict_items(x: Interactions, allowed: Iterable[str],
                   steps: list[dict[str, Any]], reason: str = ''
                   ) -> Interactions:
  allowed = np.asarray(sorted(set(map(str, allowed))), dtype=str)
  keep_item = np.isin(x.item_raw, allowed)
  keep = keep_item[x.item]
  steps.append({'step': 'restrict_items', 'reason': reason,
                'allowed_items': int(len(allowed)),
                'items_kept': int(keep_item.sum()),
                'items_removed': int((~keep_item).sum()),
                'removed': int((~keep).sum())})
  return x.take(keep)


def require_modalities(x: Interactions, item_table: dict[str, dict[str, Any]],
                       fields: Iterable[str], steps: list[dict[str, Any]],
                       features: dict[str, tuple[np.ndarray, np.ndarray]]
                       | None = None) -> Interactions:
  """Drops items without a value for each required field or feature name."""
  for field in fields:
    if features and field in features:
      have = set(map(str, features[field][1]))
      ok = np.array([r in have for r in x.item_raw])
    else:
      ok = np.array([bool((item_table.get(str(r)) or {}).get(field))
                     for r in x.item_raw])
    keep = ok[x.item]
    steps.append({'step': 'require_modality', 'field': field,
                  'items_removed': int((~ok[np.unique(x.item)]).sum()),
                  'removed': int((~keep).sum())})
    x = x.take(keep)
  return x


def deduplicate(x: Interactions, steps: list[dict[str, Any]]) -> Interactions:
  """Keeps the latest (by timestamp, then read order) of each (user, item)."""
  n = len(x)
  order = np.arange(n)
  if x.timestamp is not None:
    order = np.lexsort((order, x.timestamp))  # Time, then read order.
  key = x.user[order] * len(x.item_raw) + x.item[order]
  # Last occurrence in (time, read) order of each key.
  rev = order[::-1]
  _, first_in_rev = np.unique(key[::-1], return_index=True)
  keep = np.zeros(n, bool)
  keep[rev[first_in_rev]] = True
  steps.append({'step': 'deduplicate', 'removed': int(n - keep.sum())})
  return x.take(keep)


def k_core(x: Interactions, min_user: int, min_item: int,
           steps: list[dict[str, Any]]) -> Interactions:
  """Iterative k-core: repeat user and item filters until nothing changes."""
  removed = rounds = 0
  while True:
    rounds += 1
    uc = np.bincount(x.user, minlength=len(x.user_raw))
    ic = np.bincount(x.item, minlength=len(x.item_raw))
    keep = (uc[x.user] >= min_user) & (ic[x.item] >= min_item)
    if keep.all():
      break
    removed += int((~keep).sum())
    x = x.take(keep)
  steps.append({'step': 'k_core', 'min_user': int(min_user),
                'min_item': int(min_item), 'rounds': rounds,
                'removed': removed})
  return x


def remap(x: Interactions, seed: int) -> tuple[np.ndarray, np.ndarray,
                                               np.ndarray, np.ndarray]:
  """Contiguous ids by a seeded permutation over the surviving raw ids.

  Returns:
    (user int32 [n], item int32 [n], user_ids str [U], item_ids str [I]).
  """
  users = np.unique(x.user)
  items = np.unique(x.item)
  rng = np.random.default_rng([seed, 0x5EED])
  user_perm = users[rng.permutation(len(users))]
  item_perm = items[rng.permutation(len(items))]
  user_new = np.empty(len(x.user_raw), np.int64)
  item_new = np.empty(len(x.item_raw), np.int64)
  user_new[user_perm] = np.arange(len(users))
  item_new[item_perm] = np.arange(len(items))
  return (user_new[x.user].astype(np.int32), item_new[x.item].astype(np.int32),
          x.user_raw[user_perm], x.item_raw[item_perm])


def check_nonempty(x: Interactions, steps: list[dict[str, Any]],
                   source: str) -> None:
  """Raises DataError naming the step that removed the last interaction."""
  if len(x) == 0:
    last = steps[-1]['step'] if steps else 'read'
    so_far = [(s['step'], s['removed']) for s in steps]
    raise DataError(f'{source}: no interactions left after step {last!r} '
                    f'(steps so far: {so_far}).')


def item_table_columns(item_table: dict[str, dict[str, Any]],
                       item_ids: np.ndarray) -> dict[str, list[Any]]:
  """Turns raw-id-keyed item rows into columns indexed by internal item id."""
  columns: dict[str, list[Any]] = {}
  for rec in item_table.values():
    for key in rec:
      columns.setdefault(key, [])
  for key in columns:
    columns[key] = [
        (item_table.get(str(r)) or {}).get(key) for r in item_ids]
  return columns
