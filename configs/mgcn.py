r"""MGCN (visual and textual features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/mgcn.py \
      --workdir runs/mgcn_synthetic --config.model.cl_weight=0.1
  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/mgcn.py:data=ml_lvlm \
      --workdir runs/mgcn_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm` (the features each
dataset gives: `defaults.FEATURES`), `runlocal` (`defaults.tiny_data`: a smoke
run). Defaults from MMRec's MGCN.yaml (cl_weight at the middle of its grid, lr
decay 0.96 per 50 epochs); `get_sweep` is that yaml's grid (`cl_loss` in
{0.001, 0.01, 0.1}), the only hyper-parameter MMRec searches for MGCN.
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args

# MMRec configs/model/MGCN.yaml: hyper_parameters ["cl_loss"].
MMREC_GRID = {'model.cl_weight': (0.001, 0.01, 0.1)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False)
  c = defaults.base_config()
  c.model = options.section('mgcn')
  c.optim.lr = 1e-3
  c.optim.schedule = 'mmrec'
  c.optim.lr_decay = (0.96, 50.0)
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(MMREC_GRID)
