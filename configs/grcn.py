r"""GRCN (visual and textual features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/grcn.py \
      --workdir runs/grcn_synthetic --config.model.reg_weight=1e-3
  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/grcn.py:data=ml_lvlm \
      --workdir runs/grcn_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm` (the features each
dataset gives: `defaults.FEATURES`), `runlocal` (`defaults.tiny_data`: a smoke
run), `paper` (the paper's routing, which updates user preferences from their
items, 3 routings; MMRec's routing sends nothing to users). Defaults from
MMRec's GRCN.yaml and grcn.py (see mmjax/models/grcn.py); `get_sweep` is
MMRec's GRCN grid (reg_weight x learning_rate).
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False,
                               paper=False)
  c = defaults.base_config()
  c.model = options.section('grcn')
  c.model.routing = 'paper' if args.paper else 'mmrec'
  c.optim.lr = 1e-3
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data)
  return c


# MMRec configs/model/GRCN.yaml.
MMREC_GRID = {
    'model.reg_weight': (0.1, 0.01, 1e-3, 1e-4, 1e-5),
    'optim.lr': (1.0, 0.1, 0.01, 1e-3, 1e-4),
}


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(MMREC_GRID)
