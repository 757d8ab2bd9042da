"""The feature store's torch-free reader and writer.

A representation lives at `<dataset_dir>/features/<name>.npy` (float32 or
float16 [I, D], row = internal item id) beside `<name>.json`, its manifest:
extractor, model id and revision or weights hash, layer, pooling, prompt and
its hash, input fields, image size and normalisation, dim, dtype, the dataset's
item-map hash, library versions, time, and `failed`: {internal item id: reason}
for items the extractor could not represent. Failed rows are NaN-free (zeros)
and excluded through `Feature.mask`; recommenders must respect the mask.

Each manifest also records the dataset it was written for, `dataset`: {name,
source, identity} (see `dataset.identity`), read from the dataset directory's
manifest when the representation is saved.

The JAX side reads features only through `load`, which refuses a manifest whose
item-map hash differs from the dataset's, or whose dataset identity does: two
datasets whose raw item ids are both 0..39 hash alike, and only the identity
tells the features of one from the other's. Manifests written before the
identity was recorded still load, with one warning per representation.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
from typing import Any

from absl import logging
import numpy as np

from mmjax.data import dataset as dataset_lib

FEATURES_DIR = 'features'


@dataclasses.dataclass
class Feature:
  """One stored representation.

  Attributes:
    name: the representation's name in the store.
    values: float32 [I, F] (float16 kept as stored when asked).
    mask: bool [I], False for items the extractor failed on.
    manifest: the JSON manifest.
  """

  name: str
  values: np.ndarray
  mask: np.ndarray
  manifest: dict[str, Any]


def feature_paths(dataset_dir: str, name: str) -> tuple[str, str]:
  base = os.path.join(dataset_dir, FEATURES_DIR, name)
  return base + '.npy', base + '.json'


def list_features(dataset_dir: str) -> list[str]:
  """Names of the complete representations stored for a dataset."""
  folder = os.path.join(dataset_dir, FEATURES_DIR)
  if not os.path.isdir(folder):
    return []
  names = {f[:-5] for f in os.listdir(folder) if f.endswith('.json')}
  return sorted(n for n in names if os.path.exists(feature_paths(
      dataset_dir, n)[0]))


def dataset_record(dataset_dir: str) -> dict[str, str] | None:
  """{name, source, identity} of the dataset in `dataset_dir`.

  None when the folder has no dataset manifest (a bare folder of features,
  as some tools and tests write): there is then nothing to compare against.
  """
  path = os.path.join(dataset_dir, dataset_lib.MANIFEST)
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    manifest = json.load(f)
  return {'name': str(manifest.get('name', '')),
          'source': str(manifest.get('source', '')),
          'identity': dataset_lib.identity(manifest)}


@functools.cache
def _warn_unrecorded(path: str) -> None:
  # Cached so that a store read every epoch or by every model warns once.
  logging.warning('%s records no dataset identity (written before '
                  'identities were recorded): only its item map is checked.',
                  path)


def identity_mismatch(dataset_dir: str, manifest: dict[str, Any]
                      ) -> str | None:
  """Why a feature manifest belongs to another dataset, or None.

  Args:
    dataset_dir: the dataset directory the representation is read for.
    manifest: the representation's manifest.

  Returns:
    None when the manifest's dataset identity equals the directory's (or
    either is not recorded); otherwise a message naming both datasets.
  """
  here = dataset_record(dataset_dir)
  theirs = manifest.get('dataset')
  if here is None or not isinstance(theirs, dict) or 'identity' not in theirs:
    return None
  if theirs['identity'] == here['identity']:
    return None
  return (f'extracted for dataset {theirs.get("name")!r} '
          f'({theirs.get("source")}), but {dataset_dir} holds dataset '
          f'{here["name"]!r} ({here["source"]}); their item maps may hash '
          'alike, but they are different datasets. Re-extract the '
          'representation for this dataset.')


def check_values(values: np.ndarray, where: str) -> None:
  """Raises DataError for a non-2-D, non-float or non-finite matrix."""
  if values.ndim != 2:
    raise dataset_lib.DataError(
        f'{where}: expected [I, D], got {values.shape}.')
  if values.dtype not in (np.float32, np.float16):
    raise dataset_lib.DataError(
        f'{where}: expected float32 or float16, got {values.dtype}.'
    )
  finite = np.isfinite(values).all(axis=1)
  if not finite.all():
    bad = np.flatnonzero(~finite)
    raise dataset_lib.DataError(
        f'{where}: {len(bad)} rows hold NaN or inf (first item {bad[0]}).'
    )


def save(
    dataset_dir: str,
    name: str,
    values: np.ndarray,
    manifest: dict[str, Any],
    item_ids: np.ndarray,
    failed: dict[int, str] | None = None,
) -> str:
  """Writes one representation and its manifest; returns the .npy path.

  Args:
    dataset_dir: the dataset directory.
    name: representation name, e.g. 'text_minilm'.
    values: float32 or float16 [I, D], row = internal item id.
    manifest: extractor description (model id, pooling, prompt, ...); name,
      dim, dtype, item-map hash, failed items and the dataset record
      (`dataset_record(dataset_dir)`, when the folder holds a dataset) are
      added.
    item_ids: str [I], the dataset's raw item ids (for the map hash).
    failed: internal item id -> reason; those rows must be zero.
  """
  values = np.asarray(values)
  npy, js = feature_paths(dataset_dir, name)
  check_values(values, npy)
  if values.shape[0] != len(item_ids):
    raise dataset_lib.DataError(
        f'{npy}: {values.shape[0]} rows, the dataset has {len(item_ids)} items.'
    )
  failed = {int(k): str(v) for k, v in (failed or {}).items()}
  for item in failed:
    if not 0 <= item < len(item_ids):
      raise dataset_lib.DataError(f'{npy}: failed item {item} out of range.')
  if failed:
    rows = np.fromiter(failed, np.int64)
    if np.any(values[rows] != 0):
      raise dataset_lib.DataError(f'{npy}: failed items must have zero rows.')
  os.makedirs(os.path.dirname(npy), exist_ok=True)
  full = dict(manifest)
  full.update(
      name=name,
      dim=int(values.shape[1]),
      dtype=str(values.dtype),
      num_items=int(values.shape[0]),
      item_map_hash=dataset_lib.item_map_hash(item_ids),
      failed={str(k): v for k, v in sorted(failed.items())},
  )
  record = dataset_record(dataset_dir)
  if record is not None:
    full['dataset'] = record
  full.setdefault(
      'time', datetime.datetime.now(datetime.timezone.utc).isoformat()
  )
  # Array first, manifest last: a manifest marks a complete representation.
  tmp = npy + '.tmp.npy'
  np.save(tmp, values)
  os.replace(tmp, npy)
  with open(js + '.tmp', 'w', encoding='utf-8') as f:
    json.dump(full, f, indent=2, ensure_ascii=False)
  os.replace(js + '.tmp', js)
  return npy


def load(
    dataset_dir: str,
    name: str,
    item_ids: np.ndarray | None = None,
    *,
    keep_dtype: bool = False,
) -> Feature:
  """Loads a representation and checks it belongs to the dataset.

  Args:
    dataset_dir: the dataset directory.
    name: representation name.
    item_ids: the dataset's raw item ids; read from `dataset_dir` when None.
    keep_dtype: keep float16 as stored instead of casting to float32.

  Raises:
    DataError: missing files, a manifest for another item map or another
      dataset (identity), a row count or dtype that does not match, NaN or
      inf values.
  """
  npy, js = feature_paths(dataset_dir, name)
  if not os.path.exists(js) or not os.path.exists(npy):
    have = ', '.join(list_features(dataset_dir)) or 'none'
    raise dataset_lib.DataError(
        f'{npy}: no representation {name!r} (stored: {have}). Extract it with '
        '`python -m mmjax.features.extract`.'
    )
  with open(js, encoding='utf-8') as f:
    manifest = json.load(f)
  if item_ids is None:
    item_ids = np.load(os.path.join(dataset_dir, 'item_ids.npy'))
  expected = dataset_lib.item_map_hash(item_ids)
  if manifest.get('item_map_hash') != expected:
    raise dataset_lib.DataError(
        f'{js}: item-map hash {manifest.get("item_map_hash")} does not match '
        f'the dataset ({expected}); the features were extracted for another '
        'item map. Re-extract them for this dataset.'
    )
  mismatch = identity_mismatch(dataset_dir, manifest)
  if mismatch:
    raise dataset_lib.DataError(f'{js}: {mismatch}')
  if 'identity' not in (manifest.get('dataset') or {}) and (
      dataset_record(dataset_dir) is not None):
    _warn_unrecorded(js)
  values = np.load(npy)
  check_values(values, npy)
  if values.shape[0] != len(item_ids):
    raise dataset_lib.DataError(
        f'{npy}: {values.shape[0]} rows, the dataset has {len(item_ids)} items.'
    )
  if str(values.dtype) != manifest.get('dtype'):
    raise dataset_lib.DataError(
        f'{npy}: dtype {values.dtype}, manifest says {manifest.get("dtype")}.'
    )
  if values.shape[1] != manifest.get('dim'):
    raise dataset_lib.DataError(
        f'{npy}: dim {values.shape[1]}, manifest says {manifest.get("dim")}.'
    )
  mask = np.ones(len(item_ids), bool)
  for item in manifest.get('failed', {}):
    try:
      k = int(item)
    except ValueError:
      k = -1
    if not 0 <= k < len(item_ids):
      raise dataset_lib.DataError(
          f'{js}: failed item {item!r} is not an internal item id in '
          f'[0, {len(item_ids)}).')
    mask[k] = False
  if not keep_dtype:
    values = values.astype(np.float32)
  return Feature(name=name, values=values, mask=mask, manifest=manifest)
