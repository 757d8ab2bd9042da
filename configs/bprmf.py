r"""BPR-MF (ID-only: no features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/bprmf.py \
      --workdir runs/bprmf_synthetic --config.optim.lr=1e-3
  python -m mmjax.launch --config configs/bprmf.py:data=ml_lvlm \
      --workdir runs/bprmf_ml_lvlm

Variants: `data=synthetic` (the default, the quick start's data) or
`data=ml_lvlm`, `runlocal` (3 epochs, a smoke run). `get_sweep` is MMRec's
BPR.yaml grid.
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False)
  c = defaults.base_config()
  c.model = options.section('bprmf')
  c.optim.lr = 5e-3
  if args.runlocal:
    c.train.num_epochs = 3
  defaults.use_data(c, args.data, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  """MMRec's BPR.yaml grid."""
  return defaults.sweep({
      'model.reg_weight': (2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5)})
