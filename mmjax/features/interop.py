r"""Import and export features in Ducho's and MMRec's layouts.

Ducho writes one `.npy` per item, named by the raw item id, under
`<out>/<modality>_embeddings.../<backend>/<model>/<layer>/<item_id>.npy`;
a vector is stored as [D] or [1, D]. MMRec reads `image_feat.npy` /
`text_feat.npy`, one float32 [I, D] matrix whose row r is MMRec's item id r.

Both import into the store (`mmjax/data/store.py`) on the dataset's item map:
rows are matched by raw item id, items the source lacks are recorded as
failed (masked) with the reason, and source rows for items the dataset does
not have are counted in the manifest (`source_rows_not_in_dataset`), never
dropped silently. Exports write the stored rows; MMRec has no mask, so failed
items are exported as the zero rows the store holds (the count is returned
and logged), while Ducho simply gets no file for them.

  python -m mmjax.features.interop import-mmrec --dataset_dir D \
      --name image_mmrec --path data/baby/image_feat.npy
  python -m mmjax.features.interop import-ducho --dataset_dir D \
      --name text_ducho --path out/textual_embeddings/.../1
  python -m mmjax.features.interop export-mmrec --dataset_dir D \
      --name image_resnet50 --path out/mmrec/image_feat.npy
  python -m mmjax.features.interop export-ducho --dataset_dir D \
      --name image_resnet50 --path out/ducho/resnet50/avgpool
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store


def _item_ids(dataset_dir: str) -> np.ndarray:
  path = os.path.join(dataset_dir, 'item_ids.npy')
  if not os.path.exists(path):
    raise dataset_lib.DataError(f'{path}: not a prepared dataset directory.')
  return np.load(path).astype(str)


def _as_float32(values: np.ndarray, where: str) -> np.ndarray:
  if values.dtype.kind not in 'fiu':
    raise dataset_lib.DataError(
        f'{where}: expected a numeric array, got {values.dtype}.')
  return np.asarray(values, np.float32)


def _store(dataset_dir, name, table, found, source, item_ids, extra):
  """Saves rows `table` [I, D]; items with found == False are failed."""
  failed = {int(i): f'not in {source}' for i in np.flatnonzero(~found)}
  table[~found] = 0.0
  manifest = {'extractor': 'interop', 'source': source}
  manifest.update(extra)
  return store.save(dataset_dir, name, table, manifest, item_ids, failed)


def import_mmrec(
    dataset_dir: str,
    name: str,
    path: str,
    *,
    row_ids: np.ndarray | None = None,
    manifest: dict[str, Any] | None = None,
) -> str:
  """Stores an MMRec feature matrix on the dataset's item map.

  Args:
    dataset_dir: the prepared dataset.
    name: representation name in the store.
    path: `image_feat.npy`, `text_feat.npy` or any float [R, D] matrix.
    row_ids: str [R], the raw item id of each row; default `str(r)` (MMRec's
      convention: row r is the item whose id in the `.inter` file is r).
    manifest: extra manifest entries (model, layer, ...), when known.

  Returns:
    The stored .npy path.

  Raises:
    DataError: not a 2-D numeric matrix, row_ids of the wrong length or with
      duplicates, non-finite values.
  """
  item_ids = _item_ids(dataset_dir)
  if not os.path.exists(path):
    raise dataset_lib.DataError(f'{path}: no such file.')
  values = np.load(path)
  if values.ndim != 2:
    raise dataset_lib.DataError(f'{path}: expected [R, D], got {values.shape}.')
  values = _as_float32(values, path)
  if row_ids is None:
    row_ids = np.arange(len(values)).astype(str)
  row_ids = np.asarray(row_ids).astype(str)
  if len(row_ids) != len(values):
    raise dataset_lib.DataError(
        f'{path}: {len(values)} rows but {len(row_ids)} row ids.')
  if len(np.unique(row_ids)) != len(row_ids):
    raise dataset_lib.DataError(f'{path}: row ids repeat.')
  row_of = {r: k for k, r in enumerate(row_ids)}
  table = np.zeros((len(item_ids), values.shape[1]), np.float32)
  found = np.zeros(len(item_ids), bool)
  for i, rid in enumerate(item_ids):
    k = row_of.get(rid)
    if k is not None:
      table[i] = values[k]
      found[i] = True
  extra = dict(manifest or {})
  extra.update(format='mmrec', source_rows=len(values),
               source_rows_not_in_dataset=int(len(values) - found.sum()))
  return _store(dataset_dir, name, table, found, os.path.basename(path),
                item_ids, extra)


def import_ducho(
    dataset_dir: str,
    name: str,
    folder: str,
    *,
    manifest: dict[str, Any] | None = None,
) -> str:
  """Stores a Ducho per-item folder (`<raw item id>.npy` files).

  Raises:
    DataError: no .npy files, a file that is not [D] or [1, D], files of
      different dims, non-finite values.
  """
  item_ids = _item_ids(dataset_dir)
  if not os.path.isdir(folder):
    raise dataset_lib.DataError(f'{folder}: no such folder.')
  files = {f[:-4]: f for f in os.listdir(folder) if f.endswith('.npy')}
  if not files:
    raise dataset_lib.DataError(f'{folder}: no .npy files.')
  table = None
  found = np.zeros(len(item_ids), bool)
  for i, rid in enumerate(item_ids):
    fname = files.get(rid)
    if fname is None:
      continue
    path = os.path.join(folder, fname)
    v = np.load(path)
    if v.ndim == 2 and v.shape[0] == 1:
      v = v[0]
    if v.ndim != 1:
      raise dataset_lib.DataError(f'{path}: expected [D] or [1, D], got '
                                  f'{v.shape}.')
    v = _as_float32(v, path)
    if table is None:
      table = np.zeros((len(item_ids), v.shape[0]), np.float32)
    if v.shape[0] != table.shape[1]:
      raise dataset_lib.DataError(
          f'{path}: dim {v.shape[0]}, earlier files {table.shape[1]}.')
    table[i] = v
    found[i] = True
  if table is None:
    raise dataset_lib.DataError(
        f'{folder}: none of its {len(files)} files is named after an item of '
        f'the dataset (e.g. {sorted(files)[:3]} vs {item_ids[:3].tolist()}).')
  extra = dict(manifest or {})
  extra.update(format='ducho', source_files=len(files),
               source_rows_not_in_dataset=int(len(files) - found.sum()))
  return _store(dataset_dir, name, table, found,
                f'Ducho folder {os.path.basename(os.path.normpath(folder))}',
                item_ids, extra)


def export_mmrec(dataset_dir: str, name: str, path: str) -> int:
  """Writes a stored representation as an MMRec matrix (row = internal id).

  The dataset's MMRec export writes internal ids as MMRec item ids, so row r
  is internal item r. Returns the number of failed items written as zeros.
  """
  f = store.load(dataset_dir, name)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.save(path, f.values.astype(np.float32))
  masked = int((~f.mask).sum())
  if masked:
    logging.warning('%s: %d failed items exported as zero rows (MMRec has no '
                    'mask).', path, masked)
  return masked


def export_ducho(dataset_dir: str, name: str, folder: str) -> int:
  """Writes one `<raw item id>.npy` ([D] float32) per represented item.

  Failed items get no file, as Ducho leaves out items it could not read.
  Returns the number of files written.
  """
  f = store.load(dataset_dir, name)
  item_ids = _item_ids(dataset_dir)
  os.makedirs(folder, exist_ok=True)
  n = 0
  for i in np.flatnonzero(f.mask):
    rid = item_ids[i]
    if os.sep in rid or rid in ('', '.', '..'):
      raise dataset_lib.DataError(
          f'item {i}: raw id {rid!r} cannot be a file name.')
    np.save(os.path.join(folder, f'{rid}.npy'), f.values[i])
    n += 1
  return n


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(
      prog='python -m mmjax.features.interop', description=__doc__.split(
          '\n\n')[0])
  parser.add_argument('command', choices=('import-mmrec', 'import-ducho',
                                          'export-mmrec', 'export-ducho'))
  parser.add_argument('--dataset_dir', required=True)
  parser.add_argument('--name', required=True)
  parser.add_argument('--path', required=True,
                      help='the .npy matrix (MMRec) or the folder (Ducho).')
  parser.add_argument('--row_ids', default=None,
                      help='import-mmrec: .npy or text file of raw ids per '
                      'row.')
  args = parser.parse_args(argv)
  if args.command == 'import-mmrec':
    row_ids = None
    if args.row_ids:
      row_ids = (np.load(args.row_ids) if args.row_ids.endswith('.npy') else
                 np.loadtxt(args.row_ids, dtype=str, ndmin=1))
    print(import_mmrec(args.dataset_dir, args.name, args.path,
                       row_ids=row_ids))
  elif args.command == 'import-ducho':
    print(import_ducho(args.dataset_dir, args.name, args.path))
  elif args.command == 'export-mmrec':
    print(f'{args.path}: {export_mmrec(args.dataset_dir, args.name, args.path)}'
          ' failed items written as zeros')
  else:
    print(f'{args.path}: {export_ducho(args.dataset_dir, args.name, args.path)}'
          ' files')


if __name__ == '__main__':
  main()
