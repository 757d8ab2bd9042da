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


def write_mmrec(ds: dataset_lib.Dataset, out_dir: str, name: str,
                features: dict[str, np.ndarray] | None = None) -> None:
  """Writes `<out_dir>/<name>.inter` and the feature files MMRec loads.

  The .inter file is tab-separated with the header
  `userID itemID rating timestamp x_label` (MMRec's dataset yamls: USER_ID_FIELD
  userID, ITEM_ID_FIELD itemID, inter_splitting_label x_label = 0/1/2 for
  train/valid/test). MMRec reads only userID, itemID and x_label; rating and
  timestamp are written for completeness (0 where unknown). Features named
  'image' and 'text' go to image_feat.npy and text_feat.npy, any other name to
  `<name>_feat.npy`; row = internal item id.
  """
  ds.validate()
  feats = _check_features(ds, features)
  os.makedirs(out_dir, exist_ok=True)
  rating = ds.rating if ds.rating is not None else np.zeros(len(ds), np.float32)
  timestamp = (ds.timestamp if ds.timestamp is not None
               else np.zeros(len(ds), np.int64))
  with open(os.path.join(out_dir, f'{name}.inter'), 'w', encoding='utf-8') as f:
    f.write('userID\titemID\trating\ttimestamp\tx_label\n')
    for u, i, r, t, s in zip(ds.user.tolist(), ds.item.tolist(),
                             rating.tolist(), timestamp.tolist(),
                             ds.split.tolist()):
      f.write(f'{u}\t{i}\t{r:g}\t{t}\t{s}\n')
  for key, values in feats.items():
    file = _MMREC_FEATURE_FILES.get(key, f'{key}_feat.npy')
    np.save(os.path.join(out_dir, file), values)


def write_elliot(ds: dataset_lib.Dataset, out_dir: str,
                 features: dict[str, np.ndarray] | None = None) -> None:
  """Writes Elliot's fixed-split TSVs and Ducho-style per-item feature folders.

  `train.tsv`, `val.tsv`, `test.tsv`: tab-separated `user item rating
  timestamp` without header, internal ids (Elliot's `fixed` strategy reads
  them with `user item rating timestamp` columns; rating 1 and timestamp 0
  where unknown). Each feature goes to `<out_dir>/<name>/<item>.npy`, one
  vector per item, as Ducho writes them and Elliot's multimodal loaders read.
  """
  ds.validate()
  feats = _check_features(ds, features)
  os.makedirs(out_dir, exist_ok=True)
  rating = ds.rating if ds.rating is not None else np.ones(len(ds), np.float32)
  timestamp = (ds.timestamp if ds.timestamp is not None
               else np.zeros(len(ds), np.int64))
  for file, label in (('train.tsv', dataset_lib.TRAIN),
                      ('val.tsv', dataset_lib.VALID),
                      ('test.tsv', dataset_lib.TEST)):
    idx = np.flatnonzero(ds.split == label)
    with open(os.path.join(out_dir, file), 'w', encoding='utf-8') as f:
      for u, i, r, t in zip(ds.user[idx].tolist(), ds.item[idx].tolist(),
                            rating[idx].tolist(), timestamp[idx].tolist()):
        f.write(f'{u}\t{i}\t{r:g}\t{t}\n')
  for key, values in feats.items():
    folder = os.path.join(out_dir, key)
    os.makedirs(folder, exist_ok=True)
    for item, row in enumerate(values):
      np.save(os.path.join(folder, f'{item}.npy'), row)
