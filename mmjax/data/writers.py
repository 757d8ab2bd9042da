"""Writers: a prepared `Dataset` out as folders MMRec and Elliot read unchanged.

Both write internal ids, so a model trained by those tools on the written
folder sees exactly our users, items and splits, and results can be compared
on identical data. Reading a written folder back with `mmjax.data.readers`
gives the same interactions, splits and features (tested).
"""

from __future__ import annotations

import os

import numpy as np

from mmjax.data import dataset as dataset_lib

# MMRec's dataset yamls name the visual and textual feature files so.
_MMREC_FEATURE_FILES = {'image': 'image_feat.npy', 'text': 'text_feat.npy'}


def _check_features(ds: dataset_lib.Dataset,
                    features: dict[str, np.ndarray] | None
                    ) -> dict[str, np.ndarray]:
  out = {}
  for name, values in (features or {}).items():
    values = np.asarray(values, np.float32)
    if values.ndim != 2 or values.shape[0] != ds.num_items:
      raise dataset_lib.DataError(
          f'feature {name!r}: shape {values.shape}, expected '
          f'[{ds.num_items}, D].')
    if not np.isfinite(values).all():
      raise dataset_lib.DataError(f'feature {name!r} holds NaN or inf.')
    out[name] = values
  return out


def _rating_timestamp(ds: dataset_lib.Dataset
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Ratings (1 where unknown or NaN) and timestamps (0 where unknown)."""
  rating = np.ones(len(ds), np.float32)
  if ds.rating is not None:
    known = np.isfinite(ds.rating)
    rating[known] = ds.rating[known]
  timestamp = (np.asarray(ds.timestamp, np.int64) if ds.timestamp is not None
               else np.zeros(len(ds), np.int64))
  return rating, timestamp


def _write_tsv(path: str, columns: list[np.ndarray],
               header: str | None = None) -> None:
  """Writes columns tab-separated, one row per line.

  numpy's str() of a float32 is its shortest round-trip form, so a rating
  reads back as exactly the same float32.
  """
  text = [c.astype(str) for c in columns]
  with open(path, 'w', encoding='utf-8') as f:
    if header is not None:
      f.write(header + '\n')
    for start in range(0, len(columns[0]), 1 << 16):
      rows = zip(*(t[start:start + (1 << 16)] for t in text))
      f.write(''.join('\t'.join(row) + '\n' for row in rows))


def write_mmrec(ds: dataset_lib.Dataset, out_dir: str, name: str,
                features: dict[str, np.ndarray] | None = None) -> None:
  """Writes `<out_dir>/<name>.inter` and the feature files MMRec loads.

  The .inter file is tab-separated with the header
  `userID itemID rating timestamp x_label` (MMRec's dataset yamls: USER_ID_FIELD
  userID, ITEM_ID_FIELD itemID, inter_splitting_label x_label = 0/1/2 for
  train/valid/test). MMRec reads only userID, itemID and x_label; rating and
  timestamp are written for completeness: rating 1 where unknown (implicit
  feedback) and timestamp 0 where unknown. Features named 'image' and 'text'
  go to image_feat.npy and text_feat.npy, any other name to
  `<name>_feat.npy`; row = internal item id. MMRec needs no id-map files.

  Raises:
    DataError: a feature has the wrong shape or non-finite values, or the
      largest user / item id has no interaction: MMRec sizes its embedding
      tables as max id + 1 over the .inter file, so such a dataset would
      silently disagree with the feature rows.
  """
  ds.validate()
  feats = _check_features(ds, features)
  for what, ids, count in (('user', ds.user, ds.num_users),
                           ('item', ds.item, ds.num_items)):
    top = int(ids.max()) + 1 if len(ids) else 0
    if top != count:
      raise dataset_lib.DataError(
          f'{what} ids: the largest with an interaction is {top - 1} but the '
          f'dataset has {count}; MMRec counts {what}s as max id + 1, so '
          f'remove {what}s without interactions first.')
  os.makedirs(out_dir, exist_ok=True)
  rating, timestamp = _rating_timestamp(ds)
  _write_tsv(os.path.join(out_dir, f'{name}.inter'),
             [ds.user, ds.item, rating, timestamp, ds.split],
             header='userID\titemID\trating\ttimestamp\tx_label')
  for key, values in feats.items():
    file = _MMREC_FEATURE_FILES.get(key, f'{key}_feat.npy')
    np.save(os.path.join(out_dir, file), values)


def write_elliot(ds: dataset_lib.Dataset, out_dir: str,
                 features: dict[str, np.ndarray] | None = None) -> None:
  """Writes Elliot's fixed-split TSVs and Ducho-style per-item feature folders.

  `train.tsv`, `val.tsv`, `test.tsv`: tab-separated `user item rating
  timestamp` without header, internal ids (Elliot's `fixed` strategy reads
  them with `user item rating timestamp` columns; rating 1 and timestamp 0
  where unknown). Without validation interactions no val.tsv is written
  (Elliot's config then leaves validation_path out). Each feature goes to `<out_dir>/<name>/<item>.npy`, one
  vector per item, as Ducho writes them and Elliot's multimodal loaders read.
  """
  ds.validate()
  feats = _check_features(ds, features)
  os.makedirs(out_dir, exist_ok=True)
  rating, timestamp = _rating_timestamp(ds)
  for file, label in (('train.tsv', dataset_lib.TRAIN),
                      ('val.tsv', dataset_lib.VALID),
                      ('test.tsv', dataset_lib.TEST)):
    idx = np.flatnonzero(ds.split == label)
    if label == dataset_lib.VALID and not len(idx):
      # Elliot's pandas read of an empty file fails; leave validation_path
      # unset instead.
      if os.path.exists(os.path.join(out_dir, file)):
        os.remove(os.path.join(out_dir, file))
      continue
    _write_tsv(os.path.join(out_dir, file),
               [ds.user[idx], ds.item[idx], rating[idx], timestamp[idx]])
  for key, values in feats.items():
    folder = os.path.join(out_dir, key)
    os.makedirs(folder, exist_ok=True)
    for item, row in enumerate(values):
      np.save(os.path.join(folder, f'{item}.npy'), row)
