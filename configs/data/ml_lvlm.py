r"""`ml-lvlm`: MovieLens-latest restricted to the movies of all 12 LVLM outputs.

  python -m mmjax.data.prepare --config configs/data/ml_lvlm.py

Ratings from ../shared/data/movielens-lvlm (set MMJAX_SHARED_DATA to move it),
restricted to the movies present in all twelve lvlm/*.csv files (2,490
movies; 2,397 of them rated), then an implicit threshold (rating >= 3.5 is a
positive, a common MovieLens convention), 5-core on users and items, and a
per-user chronological 8:1:1 split (MMRec's protocol). Every MovieLens
representation (MiniLM, LVLM embeddings, keywords) uses this item map.
"""

import glob
import os

from mmjax.data import prepare


def get_config(arg: str | None = None):
  del arg
  root = os.path.join(prepare.SHARED_DATA, 'movielens-lvlm')
  config = prepare.base_config()
  config.name = 'ml_lvlm'
  config.format = 'movielens_latest'
  config.path = root
  config.restrict_items_csv = tuple(
      sorted(glob.glob(os.path.join(root, 'lvlm', '*.csv'))))
  config.restrict_items_key = 'asin'
  config.implicit_threshold = 3.5
  config.min_user = 5
  config.min_item = 5
  config.split.kind = 'chrono'
  config.split.ratios = (0.8, 0.1, 0.1)
  return config
