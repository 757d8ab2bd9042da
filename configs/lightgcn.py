r"""LightGCN (ID-only: no features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/lightgcn.py \
      --workdir runs/lightgcn_synthetic --config.model.num_layers=3
  python -m mmjax.launch --config configs/lightgcn.py:data=ml_lvlm \
      --workdir runs/lightgcn_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm`, `runlocal` (3
epochs, a smoke run). `get_sweep` is MMRec's LightGCN.yaml grid.
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False)
  c = defaults.base_config()
  c.model = options.section('lightgcn')
  c.optim.lr = 5e-3
  if args.runlocal:
    c.train.num_epochs = 3
  defaults.use_data(c, args.data, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  """MMRec's LightGCN.yaml grid."""
  return defaults.sweep({
      'model.num_layers': (1, 2, 3, 4),
      'model.reg_weight': (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)})
