"""The canonical dataset: what every later stage (features, training) reads.

A dataset directory holds:

  manifest.json              source, preprocessing steps with the count each
                             removed, seed, counts, checksums, and the
                             dataset's identity (`identity`), which every
                             feature manifest records.
  interactions/user.npy      int32 [n], internal user id in [0, U).
  interactions/item.npy      int32 [n], internal item id in [0, I).
  interactions/rating.npy    float32 [n] (NaN where unknown), optional.
  interactions/timestamp.npy int64 [n], optional.
  interactions/split.npy     int8 [n]: 0 train, 1 valid, 2 test.
  user_ids.npy / item_ids.npy  str [U] / [I]: raw id of each internal id.
  items.json                 the item table, column -> list of I values
                             (str or None), row = internal item id.
  features/<name>.npy|json   the feature store (see `mmjax/data/store.py`).

The arrays are plain `.npy` files, so loading 10M interactions is a memory map
and a copy, not a parse. Ids are contiguous int32; the raw-id maps record
where they came from. Internal ids are assigned by a seeded permutation (see
`mmjax/data/preprocess.py`), never in popularity order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

import numpy as np

TRAIN, VALID, TEST = 0, 1, 2
SPLIT_NAMES = ('train', 'valid', 'test')
MANIFEST = 'manifest.json'
FORMAT_VERSION = 1


class DataError(ValueError):
  """Bad input data: the message names the file, line or item at fault."""


@dataclasses.dataclass
class RawData:
  """What a reader returns: interactions keyed by raw ids, not yet remapped.

  Attributes:
    source: a short description of where the data came from (format + path).
    users: str [n], raw user id per interaction.
    items: str [n], raw item id per interaction.
    rating: float32 [n] or None.
    timestamp: int64 [n] or None.
    split: int8 [n] or None: a fixed split given by the source files.
    item_table: raw item id -> {field: value}, for every item the source
      describes (including items without interactions).
    features: name -> (float32 [R, F] matrix, str [R] raw item id per row),
      features that came with the source (MMRec `image_feat.npy`, ...).
    steps: what the reader itself skipped (counted skips), as manifest steps.
  """

  source: str
  users: np.ndarray
  items: np.ndarray
  rating: np.ndarray | None = None
  timestamp: np.ndarray | None = None
  split: np.ndarray | None = None
  item_table: dict[str, dict[str, Any]] = dataclasses.field(
      default_factory=dict
  )
  features: dict[str, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
      default_factory=dict
  )
  steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)

  def __post_init__(self):
    n = len(self.users)
    for name in ('items', 'rating', 'timestamp', 'split'):
      value = getattr(self, name)
      if value is not None and len(value) != n:
        raise DataError(
            f'{self.source}: {name} has {len(value)} entries, users has {n}.'
        )

  def __len__(self) -> int:
    return len(self.users)


@dataclasses.dataclass
class Dataset:
  """A prepared dataset: contiguous int32 ids, a split label per interaction.

  Attributes:
    user: int32 [n].
    item: int32 [n].
    split: int8 [n], TRAIN / VALID / TEST.
    user_ids: str [U], raw id of each internal user.
    item_ids: str [I], raw id of each internal item.
    rating: float32 [n] or None.
    timestamp: int64 [n] or None.
    item_table: column -> list of I values (row = internal item id).
    manifest: provenance (source, steps, seed, counts, checksums).
    root: the directory it was loaded from or saved to (None when built in
      memory); summaries name it.
  """

  user: np.ndarray
  item: np.ndarray
  split: np.ndarray
  user_ids: np.ndarray
  item_ids: np.ndarray
  rating: np.ndarray | None = None
  timestamp: np.ndarray | None = None
  item_table: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
  manifest: dict[str, Any] = dataclasses.field(default_factory=dict)
  root: str | None = None

  @property
  def num_users(self) -> int:
    return len(self.user_ids)

  @property
  def num_items(self) -> int:
    return len(self.item_ids)

  def __len__(self) -> int:
    return len(self.user)

  def select(self, split: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) int32 arrays of one split."""
    mask = self.split == split
    return self.user[mask], self.item[mask]

  def validate(self) -> None:
    """Checks shapes, dtypes and id ranges; raises DataError naming the field."""
    n = len(self.user)
    for name in ('item', 'split', 'rating', 'timestamp'):
      value = getattr(self, name)
      if value is not None and len(value) != n:
        raise DataError(f'{name} has {len(value)} entries, user has {n}.')
    for name, ids, bound in (
        ('user', self.user, self.num_users),
        ('item', self.item, self.num_items),
    ):
      if ids.dtype != np.int32:
        raise DataError(f'{name} ids must be int32, got {ids.dtype}.')
      if n and (ids.min() < 0 or ids.max() >= bound):
        bad = int(np.flatnonzero((ids < 0) | (ids >= bound))[0])
        raise DataError(
            f'{name} id {int(ids[bad])} at interaction {bad} is outside '
            f'[0, {bound}).'
        )
    if n and not np.isin(self.split, (TRAIN, VALID, TEST)).all():
      bad = int(np.flatnonzero(~np.isin(self.split, (TRAIN, VALID, TEST)))[0])
      raise DataError(f'split label {self.split[bad]} at interaction {bad}.')
    for column, values in self.item_table.items():
      if len(values) != self.num_items:
        raise DataError(
            f'item table column {column!r} has {len(values)} rows, expected '
            f'{self.num_items}.'
        )

  def summary(self) -> dict[str, Any]:
    """Counts for the summary table and the manifest."""
    counts = np.bincount(self.split, minlength=3)
    u, i, n = self.num_users, self.num_items, len(self)
    return {
        'users': u,
        'items': i,
        'interactions': n,
        'density': n / max(u * i, 1),
        **{f'{name}': int(c) for name, c in zip(SPLIT_NAMES, counts)},
    }


def item_map_hash(item_ids: np.ndarray) -> str:
  """sha256 of the internal-id -> raw-id item map; features must match it."""
  h = hashlib.sha256()
  for raw in item_ids:
    h.update(str(raw).encode('utf-8'))
    h.update(b'\n')
  return h.hexdigest()


def identity(manifest: dict[str, Any]) -> str:
  """sha256 naming which dataset a manifest describes: source and item map.

  The item map alone does not identify a dataset: two sources whose raw item
  ids are both 0..39 hash alike, and features of one would be read as the
  other's. The source string (format and path, or the generator's preset
  and seed) tells them apart. Preprocessing choices that leave the item map
  unchanged (a k-core on users, another split) keep the identity, since item
  features do not depend on them. Computed from fields every manifest has
  had since format version 1, so old dataset directories get one too.

  Args:
    manifest: a dataset manifest with `source` and `item_map_hash`.
  """
  text = json.dumps({'source': str(manifest.get('source', '')),
                     'item_map_hash': manifest.get('item_map_hash')},
                    sort_keys=True)
  return hashlib.sha256(text.encode('utf-8')).hexdigest()


def split_hash(ds: Dataset) -> str:
  """sha256 over (user, item, split): two runs compare only when equal."""
  h = hashlib.sha256()
  for a in (ds.user, ds.item, ds.split):
    h.update(np.ascontiguousarray(a).tobytes())
  h.update(item_map_hash(ds.item_ids).encode())
  return h.hexdigest()


def _file_sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


_ARRAYS = ('user', 'item', 'split', 'rating', 'timestamp')


def save(ds: Dataset, root: str) -> str:
  """Writes `ds` to the directory `root`; returns the manifest path."""
  ds.validate()
  os.makedirs(os.path.join(root, 'interactions'), exist_ok=True)
  checksums = {}
  for name in _ARRAYS:
    value = getattr(ds, name)
    path = os.path.join(root, 'interactions', f'{name}.npy')
    if value is None:
      if os.path.exists(path):
        os.remove(path)
      continue
    np.save(path, value)
    checksums[f'interactions/{name}.npy'] = _file_sha256(path)
  for name in ('user_ids', 'item_ids'):
    path = os.path.join(root, f'{name}.npy')
    np.save(path, np.asarray(ds.item_ids if name == 'item_ids' else ds.user_ids,
                             dtype=str))
    checksums[f'{name}.npy'] = _file_sha256(path)
  path = os.path.join(root, 'items.json')
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(ds.item_table, f, ensure_ascii=False)
  checksums['items.json'] = _file_sha256(path)
  manifest = dict(ds.manifest)
  manifest.update(
      format_version=FORMAT_VERSION,
      counts=ds.summary(),
      item_map_hash=item_map_hash(ds.item_ids),
      split_hash=split_hash(ds),
      checksums=checksums,
  )
  manifest['identity'] = identity(manifest)
  ds.manifest = manifest
  ds.root = root
  path = os.path.join(root, MANIFEST)
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(manifest, f, indent=2, ensure_ascii=False)
  return path


def load(root: str, *, verify: bool = False) -> Dataset:
  """Loads a dataset directory written by `save`.

  Args:
    root: the dataset directory.
    verify: also recompute the file checksums against the manifest.

  Raises:
    DataError: a file is missing, fails its checksum or is inconsistent.
  """
  manifest_path = os.path.join(root, MANIFEST)
  if not os.path.exists(manifest_path):
    raise DataError(
        f'{manifest_path}: no dataset manifest here; prepare one with '
        '`python -m mmjax.data.prepare --config <dataset name | file.py>`.'
    )
  with open(manifest_path, encoding='utf-8') as f:
    manifest = json.load(f)
  if verify:
    for rel, expected in manifest.get('checksums', {}).items():
      if _file_sha256(os.path.join(root, rel)) != expected:
        raise DataError(f'{os.path.join(root, rel)}: checksum mismatch.')
  arrays = {}
  for name in _ARRAYS:
    path = os.path.join(root, 'interactions', f'{name}.npy')
    arrays[name] = np.load(path) if os.path.exists(path) else None
  for name in ('user', 'item', 'split'):
    if arrays[name] is None:
      raise DataError(f'{root}/interactions/{name}.npy is missing.')
  with open(os.path.join(root, 'items.json'), encoding='utf-8') as f:
    item_table = json.load(f)
  ds = Dataset(
      user_ids=np.load(os.path.join(root, 'user_ids.npy')),
      item_ids=np.load(os.path.join(root, 'item_ids.npy')),
      item_table=item_table,
      manifest=manifest,
      root=root,
      **arrays,
  )
  ds.validate()
  return ds


def manifest_hash(root: str) -> str:
  """sha256 of a dataset's manifest file (recorded by every run)."""
  return _file_sha256(os.path.join(root, MANIFEST))


def run_record(ds: Dataset, dataset_dir: str | None) -> dict[str, Any]:
  """What a run records about its dataset (runinfo.json's 'dataset').

  Args:
    ds: the dataset trained on.
    dataset_dir: its directory, or None for a dataset built in memory.

  Returns:
    {'dir' (absolute), 'name', 'manifest_sha256', 'split_hash',
    'item_map_hash', 'counts' (`Dataset.summary`)}; the directory and the
    manifest hash are None without a directory.
  """
  return {
      'dir': os.path.abspath(dataset_dir) if dataset_dir else None,
      'name': ds.manifest.get('name'),
      'manifest_sha256': manifest_hash(dataset_dir) if dataset_dir else None,
      'split_hash': split_hash(ds),
      'item_map_hash': item_map_hash(ds.item_ids),
      'counts': ds.summary(),
  }
