r"""LightGCN on ml-lvlm (ID-only: no features).

  python -m mmjax.launch --config configs/lightgcn_ml_lvlm.py \
      --workdir runs/lightgcn_ml_lvlm

The model section and its variants are configs/lightgcn_synthetic.py's;
`defaults.use_ml_lvlm` picks the data and features.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults

_SYNTHETIC = 'lightgcn_synthetic'


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = defaults.sibling_config(__file__, _SYNTHETIC).get_config(arg)
  defaults.use_ml_lvlm(c, {})
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sibling_config(__file__, _SYNTHETIC).get_sweep()
