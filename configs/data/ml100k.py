r"""MovieLens 100K from RecBole's atomic files (../shared/data/ml-100k-recbole).

  python -m mmjax.data.prepare --config configs/data/ml100k.py

Ratings >= 4 are positives (ml-100k ratings are whole stars, so this equals
ml_lvlm's >= 3.5), 5-core on users and items, per-user chronological 8:1:1
split with MMRec's per-user rounding (see mmjax/data/splits.py). Fails with
a clear message when ../shared/data/ml-100k-recbole is absent.
"""

import os

from mmjax.data import prepare


def get_config(arg: str | None = None):
  del arg
  config = prepare.base_config()
  config.name = 'ml100k'
  config.format = 'recbole'
  config.path = os.path.join(prepare.SHARED_DATA, 'ml-100k-recbole')
  config.reader_name = 'ml-100k'
  config.implicit_threshold = 4.0
  config.min_user = 5
  config.min_item = 5
  config.split.kind = 'chrono'
  return config
