"""Writes a synthetic dataset as an MMRec dataset folder and its yaml.

    .venv/bin/python bench/mmrec/export.py --out /tmp/mmrec_data/synth30k \
        --num_users 1600 --num_items 1000 --per_user 20 --seed 0

The dataset goes through our own preparation (`mmjax.data.prepare.build`:
dedup, MMRec's chronological 8:1:1 split, cold users dropped, seeded id
remap) and out through our MMRec writer (`mmjax.data.writers.write_mmrec`),
so MMRec and mmjax train on the same users, items, splits and features.
The folder holds `<name>.inter`, `image_feat.npy` (the synthetic visual
features) and `text_feat.npy` (textual), plus `<name>.yaml`, the dataset
config MMRec looks up under `configs/dataset/` (`run_mmrec.py` copies it
there).

For a prepared dataset directory, with representations from its feature
store, use `python -m mmjax.data.export --format mmrec` instead; both write
through `mmjax.data.export.write_folder`.
"""

from __future__ import annotations

import json
import os

from absl import app
from absl import flags
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import export as export_lib
from mmjax.data import prepare

# Synthetic feature names -> the modality names the MMRec writer maps to
# image_feat.npy / text_feat.npy.
_MODALITY = {'synthetic_visual': 'image', 'synthetic_text': 'text'}


# MMRec's dataset yaml, shared with `python -m mmjax.data.export`.
dataset_yaml = export_lib.dataset_yaml


def synthetic_config(num_users: int, num_items: int, per_user: int,
                     seed: int, feature_dim: int = 64, preset: str = 'both'):
  """A data config for the synthetic generator, features emitted directly."""
  cfg = prepare.base_config()
  cfg.name = 'synthetic'
  cfg.format = 'synthetic'
  cfg.seed = seed
  cfg.synthetic.num_users = num_users
  cfg.synthetic.num_items = num_items
  cfg.synthetic.interactions_per_user = per_user
  cfg.synthetic.preset = preset
  cfg.synthetic.feature_dim = feature_dim
  cfg.synthetic.emit_features = True
  return cfg


def internal_features(ds: dataset_lib.Dataset, raw_features
                      ) -> dict[str, np.ndarray]:
  """Raw (values, raw item ids) features as [num_items, D], internal rows.

  Raises:
    DataError: an item of the dataset has no row in a feature matrix
      (MMRec would silently read a wrong row).
  """
  index = {str(r): k for k, r in enumerate(ds.item_ids)}
  out = {}
  for name, (values, rows) in raw_features.items():
    full = np.zeros((ds.num_items, values.shape[1]), np.float32)
    present = np.zeros(ds.num_items, bool)
    for row, raw_id in enumerate(rows):
      k = index.get(str(raw_id))
      if k is not None:
        full[k], present[k] = values[row], True
    if not present.all():
      missing = np.flatnonzero(~present)
      raise dataset_lib.DataError(
          f'feature {name!r}: no row for {len(missing)} items, e.g. '
          f'{ds.item_ids[missing[0]]!r}.')
    out[_MODALITY.get(name, name)] = full
  return out


def export(ds: dataset_lib.Dataset, features: dict[str, np.ndarray],
           out_dir: str, name: str) -> dict[str, int]:
  """Writes `ds` as an MMRec folder with its dataset yaml; returns counts.

  MMRec caches item graphs in the dataset folder (FREEDOM's
  `mm_adj_freedomdsp_<k>_<w>.pt`, LATTICE's and others' `*.pt`) and reloads
  them without checking the data, so those caches are removed here: a
  stale one would silently pair new data with an old graph.
  """
  if os.path.isdir(out_dir):
    for file in os.listdir(out_dir):
      if file.endswith('.pt'):
        os.remove(os.path.join(out_dir, file))
  # The code path of `python -m mmjax.data.export --format mmrec`, which
  # exports a prepared dataset directory; this script builds its synthetic
  # dataset in memory and may rewrite an existing folder.
  export_lib.write_folder(ds, features, 'mmrec', out_dir, name)
  counts = np.bincount(ds.split, minlength=3)
  return {'users': ds.num_users, 'items': ds.num_items,
          'interactions': len(ds), 'train': int(counts[0]),
          'valid': int(counts[1]), 'test': int(counts[2])}


def export_synthetic(out_dir: str, name: str, num_users: int, num_items: int,
                     per_user: int, seed: int, feature_dim: int = 64,
                     preset: str = 'both') -> dict[str, int]:
  """Generates, prepares and writes a synthetic MMRec folder."""
  cfg = synthetic_config(num_users, num_items, per_user, seed, feature_dim,
                         preset)
  ds, raw_features = prepare.build(cfg)
  stats = export(ds, internal_features(ds, raw_features), out_dir, name)
  with open(os.path.join(out_dir, 'export.json'), 'w',
            encoding='utf-8') as f:
    json.dump({'config': cfg.to_dict(), 'stats': stats,
               'split_hash': dataset_lib.split_hash(ds)}, f, indent=1,
              default=str)
  return stats


def main(argv):
  del argv
  out = os.path.abspath(_OUT.value)
  name = _NAME.value or os.path.basename(out.rstrip('/'))
  stats = export_synthetic(out, name, _NUM_USERS.value, _NUM_ITEMS.value,
                           _PER_USER.value, _SEED.value, _DIM.value,
                           _PRESET.value)
  print(json.dumps({'out': out, 'name': name, **stats}))


if __name__ == '__main__':
  # Flags are defined only when run as a script, so that importing this
  # module (tests, other scripts) defines none.
  _OUT = flags.DEFINE_string('out', None, 'Output folder (its basename is the '
                             'dataset name unless --name is given).')
  _NAME = flags.DEFINE_string('name', None, 'Dataset name.')
  _NUM_USERS = flags.DEFINE_integer('num_users', 1600, 'Synthetic users.')
  _NUM_ITEMS = flags.DEFINE_integer('num_items', 1000, 'Synthetic items.')
  _PER_USER = flags.DEFINE_integer('per_user', 20,
                                   'Interactions drawn per user.')
  _SEED = flags.DEFINE_integer('seed', 0, 'Dataset seed.')
  _DIM = flags.DEFINE_integer('feature_dim', 64, 'Feature dimension.')
  _PRESET = flags.DEFINE_string('preset', 'both', 'Synthetic preset.')
  flags.mark_flags_as_required(['out'])
  app.run(main)
