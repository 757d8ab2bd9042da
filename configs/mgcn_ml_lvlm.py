r"""MGCN on ml-lvlm with MiniLM features (title+genres, LVLM poster text).

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/mgcn_ml_lvlm.py \
      --workdir runs/mgcn_ml_lvlm

The model section is configs/mgcn_synthetic.py's; `defaults.use_ml_lvlm`
picks the data and features. `get_sweep` is MMRec's MGCN grid (cl_weight).
"""

from typing import Any

import ml_collections

from mmjax.train import defaults

_SYNTHETIC = defaults.sibling_config(__file__, 'mgcn_synthetic')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = _SYNTHETIC.get_config(arg)
  defaults.use_ml_lvlm(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return _SYNTHETIC.get_sweep()
