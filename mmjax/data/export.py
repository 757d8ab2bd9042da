r"""Export a prepared dataset, with chosen representations, for MMRec or Elliot.

  python -m mmjax.data.export --dataset_dir data/ml_lvlm-1a2b3c4d \
      --format mmrec --out /tmp/ml_lvlm \
      --features textual=text_minilm,visual=lvlm_qwen2vl_minilm

writes `/tmp/ml_lvlm/ml_lvlm.inter` (userID itemID rating timestamp x_label,
internal ids), `text_feat.npy` and `image_feat.npy` (row = item id), and
`ml_lvlm.yaml`, the dataset config MMRec looks up under configs/dataset/.
`--format elliot` writes train.tsv, val.tsv and test.tsv with one folder of
per-item vectors per modality (`<out>/textual/<item>.npy`, Ducho's layout).
Both tools then train on exactly this dataset's users, items, splits and
features (`mmjax/data/writers.py`); `export.json` records which dataset and
which representations the folder came from.

Modalities `visual` (or `image`) and `textual` (or `text`) go to MMRec's
image_feat.npy and text_feat.npy; any other modality m to `<m>_feat.npy`.
Items an extractor failed on (`Feature.mask` False) are exported as the
zero rows the store holds, since neither format has a mask; their count is
printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from typing import Any

from absl import app
from absl import flags
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.data import writers

FORMATS = ('mmrec', 'elliot')
# Modality names of the training configs (features.sources) -> the keys the
# MMRec writer maps to image_feat.npy / text_feat.npy.
_MMREC_KEYS = {'visual': 'image', 'image': 'image', 'textual': 'text',
               'text': 'text'}


def dataset_yaml(name: str) -> str:
  """MMRec's dataset config for a folder written by `write_mmrec`.

  The same keys as MMRec's own configs/dataset/baby.yaml: the id columns,
  the .inter file name, the feature file names and the separator.
  """
  return '\n'.join([
      'USER_ID_FIELD: userID',
      'ITEM_ID_FIELD: itemID',
      'TIME_FIELD: timestamp',
      'filter_out_cod_start_users: True',
      f"inter_file_name: '{name}.inter'",
      "vision_feature_file: 'image_feat.npy'",
      "text_feature_file: 'text_feat.npy'",
      "user_graph_dict_file: 'user_graph_dict.npy'",
      'field_separator: "\\t"',
      '',
  ])


def parse_features(spec: str | None) -> dict[str, str]:
  """'textual=a,visual=b' -> {'textual': 'a', 'visual': 'b'}.

  Raises:
    ValueError: a pair without '=', an empty side, or a repeated modality.
  """
  out = {}
  for pair in (spec or '').split(','):
    if not pair.strip():
      continue
    modality, sep, name = (p.strip() for p in pair.partition('='))
    if not sep or not modality or not name:
      raise ValueError(f'--features: expected modality=representation pairs '
                       f'separated by commas, got {pair!r}.')
    if modality in out:
      raise ValueError(f'--features: modality {modality!r} given twice.')
    out[modality] = name
  return out


def write_folder(ds: dataset_lib.Dataset, features: dict[str, np.ndarray],
                 fmt: str, out_dir: str, name: str) -> None:
  """Writes `ds` and `features` (modality -> [I, D]) in format `fmt`.

  The one code path of this command and of bench/mmrec/export.py.
  """
  if fmt == 'mmrec':
    keys = {_MMREC_KEYS.get(m, m): m for m in features}
    if len(keys) != len(features):
      raise ValueError(f'modalities {sorted(features)} map to the same MMRec '
                       'feature file.')
    writers.write_mmrec(ds, out_dir, name,
                        {k: features[m] for k, m in keys.items()})
    with open(os.path.join(out_dir, f'{name}.yaml'), 'w',
              encoding='utf-8') as f:
      f.write(dataset_yaml(name))
  elif fmt == 'elliot':
    writers.write_elliot(ds, out_dir, features)
  else:
    raise ValueError(f'--format must be one of {", ".join(FORMATS)}, got '
                     f'{fmt!r}.')


def _sha256(path: str) -> str:
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def export(dataset_dir: str, fmt: str, out_dir: str,
           sources: dict[str, str] | None = None,
           name: str | None = None) -> dict[str, Any]:
  """Exports a prepared dataset directory; returns what `export.json` holds.

  Everything is checked and loaded before the first file is written, and the
  folder is written under `<out_dir>.partial` and renamed when complete, so
  a refused or failed export leaves nothing behind.

  Args:
    dataset_dir: a directory written by `python -m mmjax.data.prepare`.
    fmt: 'mmrec' or 'elliot'.
    out_dir: a new or empty folder.
    sources: modality -> representation name in the dataset's store.
    name: MMRec dataset name; default the basename of `out_dir`.

  Raises:
    DataError: no dataset at `dataset_dir`, a representation that is not
      stored (the message lists those that are) or belongs to another
      dataset.
    ValueError: an unknown format, or an `out_dir` that is not empty.
  """
  if fmt not in FORMATS:
    raise ValueError(f'--format must be one of {", ".join(FORMATS)}, got '
                     f'{fmt!r}.')
  out_dir = os.path.normpath(out_dir)
  name = name or os.path.basename(out_dir)
  if not os.path.isdir(dataset_dir):
    raise dataset_lib.DataError(f'{dataset_dir}: no such dataset directory.')
  if os.path.exists(out_dir) and (not os.path.isdir(out_dir)
                                  or os.listdir(out_dir)):
    raise ValueError(f'{out_dir}: exists and is not empty; export into a new '
                     'or empty folder.')
  ds = dataset_lib.load(dataset_dir)
  loaded = {m: store.load(dataset_dir, r, ds.item_ids)
            for m, r in sorted((sources or {}).items())}
  record = {
      'dataset_dir': os.path.abspath(dataset_dir),
      'dataset': ds.manifest.get('name'),
      'source': ds.manifest.get('source'),
      'identity': dataset_lib.identity(ds.manifest),
      'split_hash': dataset_lib.split_hash(ds),
      'manifest_sha256': dataset_lib.manifest_hash(dataset_dir),
      'format': fmt,
      'counts': ds.summary(),
      'features': {
          m: {'representation': f.name, 'dim': int(f.values.shape[1]),
              'failed_items': int((~f.mask).sum()),
              'manifest_sha256': _sha256(store.feature_paths(
                  dataset_dir, f.name)[1])}
          for m, f in loaded.items()},
  }
  tmp = out_dir + '.partial'
  if os.path.exists(tmp):
    shutil.rmtree(tmp)
  os.makedirs(tmp)
  try:
    write_folder(ds, {m: f.values for m, f in loaded.items()}, fmt, tmp, name)
    with open(os.path.join(tmp, 'export.json'), 'w', encoding='utf-8') as f:
      json.dump(record, f, indent=2, default=str)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  if os.path.isdir(out_dir):
    os.rmdir(out_dir)  # Empty, checked above.
  os.replace(tmp, out_dir)
  return record


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  try:
    record = export(_DATASET_DIR.value, _FORMAT.value, _OUT.value,
                    parse_features(_FEATURES.value), _NAME.value)
  except (dataset_lib.DataError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  c = record['counts']
  print(f'exported {record["dataset"]} ({c["users"]:,} users, '
        f'{c["items"]:,} items, {c["train"]:,}/{c["valid"]:,}/{c["test"]:,} '
        f'train/valid/test interactions) as {_FORMAT.value} to '
        f'{os.path.normpath(_OUT.value)}')
  for modality, f in record['features'].items():
    failed = (f', {f["failed_items"]} items without a feature (zero rows)'
              if f['failed_items'] else '')
    print(f'  {modality}: {f["representation"]} (dim {f["dim"]}{failed})')


if __name__ == '__main__':
  # Defined here, not at import: bench/mmrec/export.py imports this module
  # and defines flags of its own.
  _DATASET_DIR = flags.DEFINE_string(
      'dataset_dir', None, 'A prepared dataset directory.')
  _FORMAT = flags.DEFINE_string('format', None, 'mmrec or elliot.')
  _OUT = flags.DEFINE_string('out', None, 'A new or empty output folder.')
  _FEATURES = flags.DEFINE_string(
      'features', None, 'modality=representation pairs, comma-separated, '
      'e.g. textual=text_minilm,visual=clip_vit_b32.')
  _NAME = flags.DEFINE_string(
      'name', None, 'MMRec dataset name (default: the basename of --out).')
  flags.mark_flags_as_required(['dataset_dir', 'format', 'out'])
  app.run(main)
