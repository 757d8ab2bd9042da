r"""ItemKNN (closed form, no training) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/itemknn.py \
      --workdir runs/itemknn_synthetic --config.model.neighbors=80
  python -m mmjax.launch --config configs/itemknn.py:data=ml_lvlm \
      --workdir runs/itemknn_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm` (interactions only:
no features are read), `runlocal` (`defaults.tiny_data`: a smoke run),
`classic` (Elliot's 'standard' ItemKNN: scores normalised by the candidate's
neighbour similarities; the default is Elliot's 'aiolli'). Defaults are
Elliot's (40 neighbours, shrink 0, cosine); `get_sweep` is the neighbours x
shrink grid. See mmjax/models/itemknn.py.
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args

GRID = {'model.neighbors': (20, 40, 80, 100), 'model.shrink': (0.0, 10.0,
                                                               100.0)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False,
                               classic=False)
  c = defaults.base_config()
  c.model = options.section('itemknn')
  c.model.implementation = 'classic' if args.classic else 'aiolli'
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(GRID)
