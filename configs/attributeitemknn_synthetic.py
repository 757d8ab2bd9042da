r"""AttributeItemKNN on the synthetic default data (content kNN, no training).

  python -m mmjax.launch --config configs/attributeitemknn_synthetic.py \
      --workdir runs/attributeitemknn_synthetic --config.model.neighbors=80

The item representation is the visual and textual features concatenated,
each L2-normalised first (`features.transform='l2'`) so that both weigh the
same in the cosine; `--config.model.modality=visual` uses one.

Variants: `runlocal` (tiny data), `mmrec` (MMRec's ItemKNNCBF.yaml: knn_k 10,
shrink 10, the neighbours of the user's items, raw features concatenated).
Defaults are Elliot's AttributeItemKNN (40 neighbours, cosine, the item
itself among its neighbours). `get_sweep` is the neighbours x shrink grid.
See mmjax/models/attributeitemknn.py.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults
from mmjax.utils import config_args

GRID = {'model.neighbors': (10, 20, 40, 80, 100),
        'model.shrink': (0.0, 10.0, 100.0)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, runlocal=False, mmrec=False)
  c = defaults.base_config()
  c.features.sources = ml_collections.ConfigDict(
      {'textual': 'synthetic_text', 'visual': 'synthetic_visual'})
  c.features.transform = 'l2'
  c.model.name = 'attributeitemknn'
  c.model.modality = ''            # '': every configured modality, joined
  c.model.neighbors = 40
  c.model.shrink = 0.0
  c.model.direction = 'candidate'  # Elliot; MMRec: 'history'
  c.model.exclude_self = False     # both references keep the item itself
  c.model.block_size = 256         # items per similarity block
  if args.mmrec:
    c.model.neighbors = 10
    c.model.shrink = 10.0
    c.model.direction = 'history'
    c.features.transform = 'none'
  if args.runlocal:
    defaults.tiny_data(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(GRID)
