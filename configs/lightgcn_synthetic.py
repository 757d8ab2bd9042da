r"""LightGCN on the synthetic default data.

  python -m mmjax.launch --config configs/lightgcn_synthetic.py \
      --workdir runs/lightgcn_synthetic --config.model.num_layers=3

Variants: `runlocal` (3 epochs, a smoke run).
"""

from typing import Any

import ml_collections

from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, runlocal=False)
  c = defaults.base_config()
  c.model.name = 'lightgcn'
  c.model.num_layers = 2
  c.optim.lr = 5e-3
  if args.runlocal:
    c.train.num_epochs = 3
  return c


def get_sweep() -> list[dict[str, Any]]:
  """MMRec's LightGCN.yaml grid."""
  return defaults.sweep({
      'model.num_layers': (1, 2, 3, 4),
      'model.reg_weight': (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)})
